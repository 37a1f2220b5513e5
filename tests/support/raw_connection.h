// raw_connection.h — a client connection to memosd below the SDK, for tests
// that misbehave on purpose (open and sit, send a byte at a time, never
// read). Needs memos_ipc. (ChildAs, which acts as another uid, is in
// child_as.h, included here for the tests and benches that use both.)
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
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
#include "tests/support/child_as.h"
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

// A memory figure of `pid` from /proc/PID/status, in KiB: VmRSS (resident,
// the default), RssAnon (its own), RssFile (mapped files), VmHWM (peak);
// 0 if unknown (or the process is gone).
inline std::uint64_t resident_kib(pid_t pid, const std::string& field = "VmRSS") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':')
      return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace memos::testing
