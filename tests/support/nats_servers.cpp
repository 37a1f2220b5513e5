#include "tests/support/nats_servers.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace memos::testing {
namespace {

// A port that was free a moment ago (the kernel's choice for port 0).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

NatsServers::NatsServers(int count) {
  for (int i = 0; i < count; ++i) {
    ports_.push_back(free_port());
    cluster_ports_.push_back(free_port());
    pids_.push_back(-1);
  }
}

NatsServers::~NatsServers() {
  for (int i = 0; i < size(); ++i) kill(i);
}

std::string NatsServers::url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(i)]);
}

std::vector<std::string> NatsServers::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

std::string NatsServers::log(int i) const {
  std::ifstream in(dir_.path() + "/n" + std::to_string(i) + ".log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool NatsServers::launch(int i) {
  const std::string name = "n" + std::to_string(i);
  const std::string conf = dir_.path() + "/" + name + ".conf";
  {
    std::ofstream out(conf);
    out << "server_name: " << name << "\n"
        << "listen: 127.0.0.1:" << ports_[static_cast<std::size_t>(i)] << "\n"
        << "max_payload: 8MB\n"
        << "jetstream { store_dir: \"" << dir_.path() << "/" << name << "\" }\n";
    if (size() > 1) {
      out << "cluster {\n  name: memos\n  listen: 127.0.0.1:"
          << cluster_ports_[static_cast<std::size_t>(i)] << "\n  routes: [\n";
      for (int j = 0; j < size(); ++j) {
        if (j != i)
          out << "    nats-route://127.0.0.1:" << cluster_ports_[static_cast<std::size_t>(j)]
              << "\n";
      }
      out << "  ]\n}\n";
    }
  }
  const std::string log = dir_.path() + "/" + name + ".log";
  pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    ::dup2(2, 1);
    ::execl(kNatsServer, kNatsServer, "-c", conf.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pids_[static_cast<std::size_t>(i)] = pid;
  return pid > 0;
}

bool NatsServers::wait_listening(int i, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (accepts(ports_[static_cast<std::size_t>(i)])) return true;
    int status;
    if (::waitpid(pids_[static_cast<std::size_t>(i)], &status, WNOHANG) ==
        pids_[static_cast<std::size_t>(i)]) {
      pids_[static_cast<std::size_t>(i)] = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool NatsServers::start(std::chrono::milliseconds timeout) {
  for (int i = 0; i < size(); ++i) {
    if (!launch(i)) return false;
  }
  for (int i = 0; i < size(); ++i) {
    if (!wait_listening(i, timeout)) return false;
  }
  return true;
}

void NatsServers::kill(int i) {
  pid_t& pid = pids_[static_cast<std::size_t>(i)];
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  pid = -1;
}

bool NatsServers::restart(int i, std::chrono::milliseconds timeout) {
  kill(i);
  return launch(i) && wait_listening(i, timeout);
}

}  // namespace memos::testing
