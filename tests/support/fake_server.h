// fake_server.h — a TCP server on 127.0.0.1 that answers one connection
// with fixed bytes: how tests play a broken or hostile engine (a NATS server
// or etcd that breaks its protocol) to the cluster clients.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace memos::testing {

class FakeServer {
 public:
  // Accepts one connection; reads one request first when `read_first`
  // (an HTTP server), sends `reply`, keeps the connection open for
  // `linger`, then closes it.
  explicit FakeServer(std::string reply, bool read_first = false,
                      std::chrono::milliseconds linger = std::chrono::milliseconds(0))
      : reply_(std::move(reply)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
        ::listen(listener_, 1) == 0) {
      port_ = ntohs(a.sin_port);
    }
    thread_ = std::thread([this, read_first, linger] {
      int c = ::accept(listener_, nullptr, nullptr);
      if (c < 0) return;
      if (read_first) {
        char request[4096];
        (void)::recv(c, request, sizeof(request), 0);
      }
      (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(linger);
      ::close(c);
    });
  }
  ~FakeServer() {
    ::shutdown(listener_, SHUT_RDWR);  // an accept still waiting returns
    thread_.join();
    ::close(listener_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // "127.0.0.1:PORT"
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string reply_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace memos::testing
