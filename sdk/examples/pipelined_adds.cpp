// pipelined_adds: many adds in flight on one connection.
//
//   pipelined_adds CUBE [N]
//
// Every call has an _async form returning a std::future: send them all,
// then collect the replies. memosd commits concurrent writes in groups
// (one fsync for many), so this is far faster than N blocking adds. The
// socket is $MEMOS_SOCKET, else memosd's default.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memos/client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pipelined_adds CUBE [N]\n");
    return 2;
  }
  std::string cube = argv[1];
  int count = argc > 2 ? std::atoi(argv[2]) : 1000;
  auto connected = memos::Client::connect();
  if (!connected) {
    std::fprintf(stderr, "pipelined_adds: %s\n", connected.error().message.c_str());
    return 1;
  }
  std::unique_ptr<memos::Client> client = std::move(*connected);
  auto created = client->cube_create(cube);
  if (!created && created.error().code != memos::ErrorCode::already_exists) {
    std::fprintf(stderr, "pipelined_adds: %s\n", created.error().message.c_str());
    return 1;
  }

  auto start = std::chrono::steady_clock::now();
  std::vector<std::future<memos::Result<memos::Item>>> pending;
  pending.reserve(count);
  for (int i = 0; i < count; ++i) {
    memos::NewItem item;
    item.text = "pipelined note " + std::to_string(i);
    item.tags = {"pipelined"};
    pending.push_back(client->add_async(cube, std::move(item)));  // sent now, not waited for
  }
  // Replies may arrive in any order; each future gets its own.
  int stored = 0, failed = 0;
  for (auto& reply : pending) {
    memos::Result<memos::Item> added = reply.get();
    if (added) {
      ++stored;
    } else {
      // A retryable error (storage_full, unavailable, connection_lost) may
      // be retried; with NewItem::idempotency_key a retry is safe.
      if (failed++ == 0) std::fprintf(stderr, "add: %s\n", added.error().message.c_str());
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%d adds acknowledged, %d failed, %.0f adds/s\n", stored, failed,
              seconds > 0 ? stored / seconds : 0.0);
  return failed == 0 ? 0 : 1;
}
