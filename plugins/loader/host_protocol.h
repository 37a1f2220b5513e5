// host_protocol.h — the frames between memosd and memos-plugin-host on
// their socketpair. Plugin requests and replies travel inside them as the
// very bytes an in-process plugin would see.
//
//   header (16 bytes, little-endian): u8 kind, u8 status, u8 flags, u8 0,
//                                     u32 payload length, u64 call id
//   payload
//
//   READY    host -> memosd  once, after create(); status, payload: why not
//   CALL     memosd -> host  payload: PluginRequest bytes
//   COMPLETE host -> memosd  status, payload: PluginResponse bytes
//   PARTIAL  host -> memosd  payload: PluginPartial bytes, ahead of the
//                            call's COMPLETE (memos_host_api.partial)
#pragma once

#include <cstdint>
#include <string>

#include "memos/plugin.h"

namespace memos::plugins::host_protocol {

enum Kind : std::uint8_t { kReady = 1, kCall = 2, kComplete = 3, kPartial = 4 };
constexpr std::size_t kHeaderBytes = 16;
// Larger payloads are refused by both sides before buffering them.
constexpr std::uint32_t kMaxPayload = 256u << 20;

// flags: the payload is a text message (why), not a PluginResponse.
constexpr std::uint8_t kTextPayload = 1;

struct Frame {
  Kind kind = kReady;
  std::uint8_t status = 0;
  std::uint8_t flags = 0;
  std::uint64_t id = 0;
  std::string payload;
};

// The call status a COMPLETE frame carries. A byte that is no status this
// memosd knows is MEMOS_ERR_INTERNAL (memos/plugin.h: "a host treats one it
// does not know as MEMOS_ERR_INTERNAL"), never an enum out of its range.
memos_status call_status(std::uint8_t status);

// Writes a whole frame; false if the peer is gone. Not thread-safe: callers
// serialize writes to one fd.
bool write_frame(int fd, const Frame& frame);
// Reads one frame; false at end of stream, on error, or on a frame that
// breaks the protocol (unknown kind, payload over kMaxPayload).
bool read_frame(int fd, Frame* frame);

}  // namespace memos::plugins::host_protocol
