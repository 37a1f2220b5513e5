// raw_request.h — one request sent to memosd as the SDK would never build it
// (a search mode or retriever name the vocabulary does not know), and what
// came back: memosd must refuse what a client of another make may send.
// Needs memos_ipc linked.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "tests/support/memosd_process.h"

namespace memos::testing {

struct RawReply {
  bool received = false;  // false: the connection failed or closed first, or timed out
  bool is_error = false;
  wire::ErrorCode code = wire::ErrorCode::UNKNOWN;
  std::string message;
};

// Sends the request `build` fills (id 1) over a new connection to `socket`
// and reads its reply.
inline RawReply raw_request(const std::string& socket,
                            const std::function<void(wire::Request::Builder)>& build,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  RawReply out;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  sockaddr_un addr = unix_address(socket);
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(1);
  build(request);
  auto frame = ipc::encode_frame(message);
  auto bytes = frame.asBytes();
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::send(fd, bytes.begin(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    ::close(fd);
    return out;
  }
  ipc::FrameDecoder decoder({64u << 20, 1u << 16});
  std::vector<kj::Array<capnp::word>> frames;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (frames.empty() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (decoder.feed(
            std::span(reinterpret_cast<const std::byte*>(buf), static_cast<std::size_t>(n)),
            frames) != ipc::FrameError::none) {
      break;
    }
  }
  ::close(fd);
  if (frames.empty()) return out;
  capnp::FlatArrayMessageReader reader(frames.front());
  auto response = reader.getRoot<wire::Response>();
  out.received = true;
  if (response.isError()) {
    out.is_error = true;
    out.code = response.getError().getCode();
    out.message = response.getError().getMessage();
  }
  return out;
}

}  // namespace memos::testing
