// nats_servers.h — real nats-server processes with JetStream for tests: one,
// or a cluster of several (routes between them, JetStream replicated with
// Raft), each on free ports of 127.0.0.1 with its store under a temporary
// folder. Killed (SIGKILL) on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/memosd_process.h"

namespace memos::testing {

inline constexpr const char* kNatsServer = "/usr/sbin/nats-server";

class NatsServers {
 public:
  explicit NatsServers(int count);
  ~NatsServers();
  NatsServers(const NatsServers&) = delete;
  NatsServers& operator=(const NatsServers&) = delete;

  // Starts every server and waits until each accepts connections. Returns
  // false (the logs say why) if one does not within `timeout`.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // kill -9 of server `i`; restart(i) brings it back on the same ports and
  // store (it catches up from the others).
  void kill(int i);
  bool restart(int i, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  int size() const { return static_cast<int>(ports_.size()); }
  // "nats://127.0.0.1:PORT" of server `i`.
  std::string url(int i) const;
  std::vector<std::string> urls() const;
  std::string log(int i) const;

 private:
  bool launch(int i);
  bool wait_listening(int i, std::chrono::milliseconds timeout);

  TempDir dir_;
  std::vector<int> ports_, cluster_ports_;
  std::vector<pid_t> pids_;
};

}  // namespace memos::testing
