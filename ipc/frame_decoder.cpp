#include "ipc/frame_decoder.h"

#include <cstring>

namespace memos::ipc {
namespace {

std::uint32_t read_le32(const std::byte* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace

const char* describe(FrameError error) {
  switch (error) {
    case FrameError::none:
      return "no error";
    case FrameError::bad_segment_count:
      return "frame header has an invalid segment count";
    case FrameError::too_many_segments:
      return "frame has too many segments";
    case FrameError::too_large:
      return "frame is larger than max_message_bytes";
    case FrameError::over_budget:
      return "frame refused: too much input is buffered";
  }
  return "unknown frame error";
}

FrameError FrameDecoder::feed(std::span<const std::byte> data,
                              std::vector<kj::Array<capnp::word>>& frames) {
  if (error_ != FrameError::none) return error_;
  while (!data.empty()) {
    if (body_.size() == 0) {
      // Still reading the segment table. First learn its length from the
      // count, then collect it whole.
      std::size_t want = header_bytes_ == 0 ? 4 : header_bytes_;
      std::size_t take = std::min(want - header_.size(), data.size());
      header_.insert(header_.end(), data.begin(), data.begin() + take);
      data = data.subspan(take);
      if (header_.size() < want) break;
      if (header_bytes_ == 0) {
        std::uint32_t count_minus_one = read_le32(header_.data());
        if (count_minus_one == 0xFFFFFFFFu) return error_ = FrameError::bad_segment_count;
        std::uint64_t count = std::uint64_t{count_minus_one} + 1;
        if (count > limits_.max_segments) return error_ = FrameError::too_many_segments;
        header_bytes_ = static_cast<std::size_t>(((4 + 4 * count) + 7) & ~std::uint64_t{7});
        continue;
      }
      error_ = take_header(frames);
      if (error_ != FrameError::none) return error_;
      continue;
    }
    auto* dst = reinterpret_cast<std::byte*>(body_.begin());
    std::size_t total = body_.size() * sizeof(capnp::word);
    std::size_t take = std::min(total - body_filled_, data.size());
    std::memcpy(dst + body_filled_, data.data(), take);
    body_filled_ += take;
    data = data.subspan(take);
    if (body_filled_ == total) {
      frames.push_back(std::move(body_));
      body_ = nullptr;
      body_filled_ = 0;
    }
  }
  return FrameError::none;
}

void FrameDecoder::discard() {
  header_.clear();
  header_.shrink_to_fit();
  header_bytes_ = 0;
  body_ = nullptr;
  body_filled_ = 0;
}

FrameError FrameDecoder::take_header(std::vector<kj::Array<capnp::word>>& frames) {
  std::uint32_t count = read_le32(header_.data()) + 1;
  std::uint64_t words = 0;
  for (std::uint32_t i = 0; i < count; ++i) words += read_le32(header_.data() + 4 + 4 * i);
  std::uint64_t total = header_bytes_ + words * sizeof(capnp::word);
  if (total > limits_.max_message_bytes) return FrameError::too_large;
  if (admit_ && !admit_(static_cast<std::size_t>(total))) return FrameError::over_budget;

  auto frame = kj::heapArray<capnp::word>(total / sizeof(capnp::word));
  std::memcpy(frame.begin(), header_.data(), header_bytes_);
  header_.clear();
  header_bytes_ = 0;
  if (words == 0) {
    frames.push_back(std::move(frame));  // header-only message: complete already
  } else {
    body_ = std::move(frame);
    body_filled_ = static_cast<std::size_t>(total - words * sizeof(capnp::word));
  }
  return FrameError::none;
}

}  // namespace memos::ipc
