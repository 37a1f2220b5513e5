// raw_connection.h — a client connection to memosd below the SDK, for tests
// that misbehave on purpose (open and sit, send a byte at a time, never
// read), and a child process that acts as another uid. Needs memos_ipc.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "tests/support/memosd_process.h"

namespace memos::testing {

// One request frame, as the SDK would send it.
inline std::vector<char> request_frame(std::uint64_t id,
                                       const std::function<void(wire::Request::Builder)>& build) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(id);
  build(request);
  auto frame = ipc::encode_frame(message);
  auto bytes = frame.asBytes();
  return std::vector<char>(bytes.begin(), bytes.end());
}

inline std::vector<char> cube_list_frame(std::uint64_t id) {
  return request_frame(id, [](wire::Request::Builder r) { r.setCubeList(); });
}

struct RawResponse {
  bool received = false;  // a frame arrived
  bool closed = false;    // the daemon closed the connection (EOF or reset)
  std::uint64_t id = 0;
  bool is_error = false;
  wire::ErrorCode code = wire::ErrorCode::UNKNOWN;
  std::string message;
  bool retryable = false;
};

class RawConnection {
 public:
  explicit RawConnection(const std::string& socket) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = unix_address(socket);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  RawConnection(RawConnection&& o) noexcept : fd_(o.fd_), decoder_(std::move(o.decoder_)) {
    o.fd_ = -1;
  }

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_all(const char* data, std::size_t size) {
    while (size > 0) {
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }
  bool send_all(const std::vector<char>& bytes) { return send_all(bytes.data(), bytes.size()); }
  // Sends without blocking: bytes sent, 0 when the socket is full, -1 on error.
  ssize_t send_some(const char* data, std::size_t size) {
    ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return n;
  }

  // The next response, or what happened instead within `timeout`.
  RawResponse read_response(std::chrono::milliseconds timeout) {
    RawResponse out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (frames_.empty() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        out.closed = true;
        break;
      }
      if (decoder_.feed(
              std::span(reinterpret_cast<const std::byte*>(buf), static_cast<std::size_t>(n)),
              frames_) != ipc::FrameError::none) {
        out.closed = true;
        break;
      }
    }
    if (frames_.empty()) return out;
    kj::Array<capnp::word> frame = std::move(frames_.front());
    frames_.erase(frames_.begin());
    capnp::FlatArrayMessageReader reader(frame);
    auto response = reader.getRoot<wire::Response>();
    out.received = true;
    out.id = response.getId();
    if (response.isError()) {
      out.is_error = true;
      out.code = response.getError().getCode();
      out.message = response.getError().getMessage();
      out.retryable = response.getError().getRetryable();
    }
    return out;
  }

  // Reads and drops everything until the daemon closes; false if it has not
  // within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  ipc::FrameDecoder decoder_{{64u << 20, 1u << 16}};
  std::vector<kj::Array<capnp::word>> frames_;
};

// A forked child that becomes `uid` (and gid), runs `body` and sends back
// what it returns (a report, "" for success), then waits for release() so
// that whatever it opened stays open meanwhile. Needs root.
class ChildAs {
 public:
  ChildAs(std::uint32_t uid, const std::function<std::string()>& body) {
    int report[2], hold[2];
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(hold, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only its own two pipe ends: a copy of another child's hold pipe
      // would keep that child from seeing its release.
      std::vector<int> others;
      for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        int fd = std::stoi(entry.path().filename().string());
        if (fd > 2 && fd != report[1] && fd != hold[0]) others.push_back(fd);
      }
      for (int fd : others) ::close(fd);
      std::string out;
      if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
          ::setresuid(uid, uid, uid) != 0) {
        out = "cannot become uid " + std::to_string(uid);
      } else {
        out = body();
      }
      out.push_back('\0');  // the end of the report
      (void)!::write(report[1], out.data(), out.size());
      char c;
      while (::read(hold[0], &c, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(report[1]);
    ::close(hold[0]);
    report_fd_ = report[0];
    hold_fd_ = hold[1];
  }
  ~ChildAs() { release(); }
  ChildAs(const ChildAs&) = delete;
  ChildAs& operator=(const ChildAs&) = delete;

  // What body() returned, once it has (the child then holds on).
  std::string report() {
    if (done_) return report_;
    done_ = true;
    if (pid_ <= 0) return report_ = "fork failed";
    char buf[4096];
    std::string got;
    for (;;) {
      ssize_t n = ::read(report_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      if (!got.empty() && got.back() == '\0') break;
    }
    if (got.empty() || got.back() != '\0') return report_ = "the child died: " + got;
    got.pop_back();
    return report_ = got;
  }
  // Lets the child exit (closing what it holds) and reaps it.
  void release() {
    if (pid_ <= 0) return;
    report();
    ::close(hold_fd_);
    ::close(report_fd_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int report_fd_ = -1, hold_fd_ = -1;
  bool done_ = false;
  std::string report_;
};

// Resident memory of `pid` in KiB (VmRSS), 0 if unknown.
inline std::uint64_t resident_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

}  // namespace memos::testing
