// engine_servers.h — the engines of cluster mode as real processes for tests:
// nats-server with JetStream and etcd, one or a cluster of several (each
// member on free ports of 127.0.0.1, its data under a temporary folder).
// Members can be killed (SIGKILL) and restarted on the same ports and data,
// as a crash and a reboot; all are killed on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/memosd_process.h"

namespace memos::testing {

inline constexpr const char* kNatsServer = "/usr/sbin/nats-server";
inline constexpr const char* kEtcd = "/usr/bin/etcd";

class EngineServers {
 public:
  virtual ~EngineServers();
  EngineServers(const EngineServers&) = delete;
  EngineServers& operator=(const EngineServers&) = delete;

  // Starts every member and waits until each accepts connections. Returns
  // false (log(i) says why) if one does not within `timeout`.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void kill(int i);
  // Sends `sig` to member `i` (SIGSTOP and SIGCONT: a server that stops
  // answering for a while and then goes on with what it had received).
  void signal(int i, int sig);
  bool restart(int i, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  int size() const { return static_cast<int>(client_ports_.size()); }
  // Where clients connect to member `i`, as the engine's clients spell it.
  virtual std::string url(int i) const = 0;
  std::vector<std::string> urls() const;
  std::string log(int i) const;

 protected:
  explicit EngineServers(int count);
  // The program and its arguments for member `i` (it may write files
  // under folder()).
  virtual std::vector<std::string> command(int i) const = 0;
  const std::string& folder() const { return dir_.path(); }
  int client_port(int i) const { return client_ports_[static_cast<std::size_t>(i)]; }
  int peer_port(int i) const { return peer_ports_[static_cast<std::size_t>(i)]; }

 private:
  bool launch(int i);
  bool wait_listening(int i, std::chrono::milliseconds timeout);

  TempDir dir_;
  std::vector<int> client_ports_, peer_ports_;
  std::vector<pid_t> pids_;
};

// A server's TLS files (test_certificates.h): its certificate and key, and
// the CA that signs the clients it accepts. Empty: plain TCP.
struct EngineTls {
  std::string cert, key, ca;
};

// nats-server with JetStream (max_payload 8 MiB); with several, a cluster
// whose JetStream replicates with Raft. With `tls`, clients must speak TLS
// and show a certificate the CA signed (tls://127.0.0.1:port).
class NatsServers : public EngineServers {
 public:
  explicit NatsServers(int count, EngineTls tls = {})
      : EngineServers(count), tls_(std::move(tls)) {}
  std::string url(int i) const override;

 protected:
  std::vector<std::string> command(int i) const override;

 private:
  const EngineTls tls_;
};

// etcd; with several, one cluster. With `tls`, its clients' port speaks
// only HTTPS and asks for a client certificate the CA signed
// (https://127.0.0.1:port).
class EtcdServers : public EngineServers {
 public:
  explicit EtcdServers(int count, EngineTls tls = {})
      : EngineServers(count), tls_(std::move(tls)) {}
  std::string url(int i) const override;

 protected:
  std::vector<std::string> command(int i) const override;

 private:
  const EngineTls tls_;
};

}  // namespace memos::testing
