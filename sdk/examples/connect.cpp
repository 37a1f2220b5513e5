// connect: reach memosd and print what it says about itself.
//
//   connect                 the socket in $MEMOS_SOCKET, else memosd's default
//   connect /path/to/sock   that socket
//
// Client::connect() returns Result<std::unique_ptr<Client>>: check it, then
// move the client out (a unique_ptr is moved, never copied).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "memos/client.h"

int main(int argc, char** argv) {
  std::string socket = argc > 1 ? argv[1] : "";  // "": $MEMOS_SOCKET, else the default
  memos::Result<std::unique_ptr<memos::Client>> connected = memos::Client::connect(socket);
  if (!connected) {
    // connect_failed: no memosd there, a wrong path, or no permission.
    std::fprintf(stderr, "connect: %s (%s)\n", connected.error().message.c_str(),
                 memos::to_string(connected.error().code));
    return 1;
  }
  std::unique_ptr<memos::Client> client = std::move(connected.value());

  memos::Result<memos::Status> status = client->status();
  if (!status) {
    std::fprintf(stderr, "status: %s\n", status.error().message.c_str());
    return 1;
  }
  std::printf("memosd %s, pid %u, up %lld ms\n", status->version.c_str(), status->pid,
              static_cast<long long>(status->uptime_ms));
  // Each Unix user is its own tenant: memosd names the uid it sees.
  std::printf("tenant uid %u, %u cubes\n", status->tenant_uid, status->cubes);
  for (const memos::PluginInfo& plugin : status->plugins) {
    std::printf("plugin %s: %s\n", plugin.name.c_str(), memos::to_string(plugin.state));
  }
  return 0;
}
