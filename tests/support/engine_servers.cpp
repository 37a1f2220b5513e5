#include "tests/support/engine_servers.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace memos::testing {
namespace {

// 127.0.0.1:`port` (0: the kernel's choice, for bind).
sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
}

// Whether `port` on 127.0.0.1 can be bound now.
bool bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// The first port of the kernel's ephemeral range (32768 unless set).
int ephemeral_low() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low && low > 0 ? low : 32768;
}

// A port that was free a moment ago, below the kernel's ephemeral range: a
// port the kernel picks for port 0 may be picked again, before this test's
// server binds it, for another test's server or for any outgoing
// connection (CI once found another test's nats-server on an etcd's client
// port). Random, so that tests running side by side rarely meet either.
int free_port() {
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  const int low = 10000, high = ephemeral_low() - 1;
  for (int tries = 0; high - low >= 1000 && tries < 100; ++tries) {
    const int port = low + static_cast<int>(rng() % static_cast<unsigned>(high - low));
    if (bindable(port)) return port;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // the kernel's choice, then
  sockaddr_in a = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

EngineServers::EngineServers(int count) {
  for (int i = 0; i < count; ++i) {
    client_ports_.push_back(free_port());
    peer_ports_.push_back(free_port());
    pids_.push_back(-1);
  }
}

EngineServers::~EngineServers() {
  for (int i = 0; i < size(); ++i) kill(i);
}

std::vector<std::string> EngineServers::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

std::string EngineServers::log(int i) const {
  std::ifstream in(folder() + "/m" + std::to_string(i) + ".log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool EngineServers::launch(int i) {
  const std::vector<std::string> args = command(i);
  const std::string log = folder() + "/m" + std::to_string(i) + ".log";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "a", stderr)) ::_exit(126);
    ::dup2(2, 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pids_[static_cast<std::size_t>(i)] = pid;
  return pid > 0;
}

bool EngineServers::wait_listening(int i, std::chrono::milliseconds timeout) {
  pid_t& pid = pids_[static_cast<std::size_t>(i)];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (accepts(client_port(i))) return true;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool EngineServers::start(std::chrono::milliseconds timeout) {
  for (int i = 0; i < size(); ++i) {
    if (!launch(i)) return false;
  }
  for (int i = 0; i < size(); ++i) {
    if (!wait_listening(i, timeout)) return false;
  }
  return true;
}

void EngineServers::signal(int i, int sig) {
  const pid_t pid = pids_[static_cast<std::size_t>(i)];
  if (pid > 0) ::kill(pid, sig);
}

void EngineServers::kill(int i) {
  pid_t& pid = pids_[static_cast<std::size_t>(i)];
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  pid = -1;
}

bool EngineServers::restart(int i, std::chrono::milliseconds timeout) {
  kill(i);
  return launch(i) && wait_listening(i, timeout);
}

std::string NatsServers::url(int i) const {
  return (tls_.cert.empty() ? "nats://127.0.0.1:" : "tls://127.0.0.1:") +
         std::to_string(client_port(i));
}

std::vector<std::string> NatsServers::command(int i) const {
  const std::string name = "n" + std::to_string(i);
  const std::string conf = folder() + "/" + name + ".conf";
  std::ofstream out(conf);
  out << "server_name: " << name << "\n"
      << "listen: 127.0.0.1:" << client_port(i) << "\n"
      << "max_payload: 8MB\n"
      << "jetstream { store_dir: \"" << folder() << "/" << name << "\" }\n";
  if (!tls_.cert.empty()) {
    out << "tls {\n  cert_file: \"" << tls_.cert << "\"\n  key_file: \"" << tls_.key
        << "\"\n  ca_file: \"" << tls_.ca << "\"\n  verify: true\n  timeout: 2\n}\n";
  }
  if (size() > 1) {
    out << "cluster {\n  name: memos\n  listen: 127.0.0.1:" << peer_port(i) << "\n  routes: [\n";
    for (int j = 0; j < size(); ++j) {
      if (j != i) out << "    nats-route://127.0.0.1:" << peer_port(j) << "\n";
    }
    out << "  ]\n}\n";
  }
  return {kNatsServer, "-c", conf};
}

std::string EtcdServers::url(int i) const {
  return (tls_.cert.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") +
         std::to_string(client_port(i));
}

std::vector<std::string> EtcdServers::command(int i) const {
  const std::string name = "e" + std::to_string(i);
  auto peer = [&](int j) { return "http://127.0.0.1:" + std::to_string(peer_port(j)); };
  std::string cluster;
  for (int j = 0; j < size(); ++j) {
    cluster += (j ? "," : "") + std::string("e") + std::to_string(j) + "=" + peer(j);
  }
  std::vector<std::string> argv = {
      kEtcd, "--name=" + name, "--data-dir=" + folder() + "/" + name,
      "--listen-client-urls=" + url(i), "--advertise-client-urls=" + url(i),
      "--listen-peer-urls=" + peer(i), "--initial-advertise-peer-urls=" + peer(i),
      "--initial-cluster=" + cluster, "--initial-cluster-state=new",
      "--initial-cluster-token=memos-test",
      // Elections in a fraction of a second: tests wait on failovers.
      // Pre-vote: a member cut off does not raise its term on every
      // timeout, so its return does not depose the leader the others
      // kept (memos-cluster(7)).
      "--heartbeat-interval=50", "--election-timeout=500", "--pre-vote=true", "--log-level=warn"};
  if (!tls_.cert.empty()) {
    argv.insert(argv.end(), {"--cert-file=" + tls_.cert, "--key-file=" + tls_.key,
                             "--trusted-ca-file=" + tls_.ca, "--client-cert-auth=true"});
  }
  return argv;
}

}  // namespace memos::testing
