#include "plugins/loader/host_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace memos::plugins::host_protocol {
namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

memos_status call_status(std::uint8_t status) {
  return status <= MEMOS_ERR_BUSY ? static_cast<memos_status>(status) : MEMOS_ERR_INTERNAL;
}

bool write_frame(int fd, const Frame& frame) {
  char header[kHeaderBytes] = {};
  header[0] = static_cast<char>(frame.kind);
  header[1] = static_cast<char>(frame.status);
  header[2] = static_cast<char>(frame.flags);
  auto size = static_cast<std::uint32_t>(frame.payload.size());
  for (int i = 0; i < 4; ++i) header[4 + i] = static_cast<char>((size >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<char>((frame.id >> (8 * i)) & 0xff);
  return write_all(fd, header, sizeof(header)) &&
         write_all(fd, frame.payload.data(), frame.payload.size());
}

bool read_frame(int fd, Frame* frame) {
  unsigned char header[kHeaderBytes];
  if (!read_all(fd, reinterpret_cast<char*>(header), sizeof(header))) return false;
  if (header[0] < kReady || header[0] > kPartial) return false;
  frame->kind = static_cast<Kind>(header[0]);
  frame->status = header[1];
  frame->flags = header[2];
  std::uint32_t size = 0;
  for (int i = 3; i >= 0; --i) size = (size << 8) | header[4 + i];
  frame->id = 0;
  for (int i = 7; i >= 0; --i) frame->id = (frame->id << 8) | header[8 + i];
  if (size > kMaxPayload) return false;
  // Grown as the bytes arrive, never to the announced size at once: a peer
  // that announces 256 MiB and sends 16 bytes costs one step of 1 MiB, not
  // 256 MiB (found by fuzz_host_protocol).
  constexpr std::size_t kStep = 1u << 20;
  frame->payload.clear();
  while (frame->payload.size() < size) {
    std::size_t have = frame->payload.size();
    std::size_t n = std::min<std::size_t>(kStep, size - have);
    frame->payload.resize(have + n);
    if (!read_all(fd, frame->payload.data() + have, n)) return false;
  }
  return true;
}

}  // namespace memos::plugins::host_protocol
