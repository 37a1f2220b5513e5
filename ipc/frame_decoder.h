// frame_decoder.h — splits a byte stream into Cap'n Proto messages, checking
// each frame's header before buffering its body.
//
// A frame is a standard Cap'n Proto message: a u32 (segment count - 1), one
// u32 word count per segment, padding to 8 bytes, then the segments. The
// decoder refuses, before allocating for the body:
//   - a segment count field of 0xFFFFFFFF (capnp 0.9.2 would accept it as an
//     empty message),
//   - more segments than FrameLimits::max_segments,
//   - a frame whose header announces more than max_message_bytes in total,
//   - a frame the owner's admission check refuses (over_budget): the owner
//     bounds what all its decoders buffer together.
// After an error the decoder is spent: the connection must be closed.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace memos::ipc {

struct FrameLimits {
  std::size_t max_message_bytes = 16u << 20;
  std::uint32_t max_segments = 512;
};

enum class FrameError {
  none,
  bad_segment_count,  // 0xFFFFFFFF in the segment count field
  too_many_segments,  // more than max_segments
  too_large,          // header announces more than max_message_bytes
  over_budget,        // the admission check refused the frame's size
};

const char* describe(FrameError error);

class FrameDecoder {
 public:
  // Called with a frame's total size once its header is read, before its
  // body is allocated; false refuses the frame (FrameError::over_budget).
  using Admit = std::function<bool(std::size_t frame_bytes)>;

  explicit FrameDecoder(FrameLimits limits, Admit admit = {})
      : limits_(limits), admit_(std::move(admit)) {}

  // Consumes `data`, appending each completed frame (header included, word
  // aligned, ready for capnp::FlatArrayMessageReader) to `frames`. Returns
  // FrameError::none or the first error; frames completed before the error
  // are still appended.
  FrameError feed(std::span<const std::byte> data, std::vector<kj::Array<capnp::word>>& frames);

  // True when part of a frame has been received (a stream that ends now was
  // truncated).
  bool mid_frame() const { return !header_.empty() || body_filled_ > 0; }

  // Total size in bytes of the frame being received, 0 if not known yet.
  std::size_t pending_frame_bytes() const { return body_.size() * sizeof(capnp::word); }

  // Frees the frame being received, for an owner that stops reading the
  // stream (what follows would not start at a frame boundary).
  void discard();

 private:
  FrameError take_header(std::vector<kj::Array<capnp::word>>& frames);

  FrameLimits limits_;
  Admit admit_;
  std::vector<std::byte> header_;  // header bytes so far (before the body is sized)
  std::size_t header_bytes_ = 0;   // full header size once the count is known
  kj::Array<capnp::word> body_;    // the whole frame once its size is known
  std::size_t body_filled_ = 0;    // bytes of body_ filled
  FrameError error_ = FrameError::none;
};

}  // namespace memos::ipc
