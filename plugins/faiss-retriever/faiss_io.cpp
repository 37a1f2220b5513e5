#include "plugins/faiss-retriever/faiss_io.h"

#include <algorithm>
#include <cstring>

namespace memos::faiss_retriever {
namespace {

// Pages read are given back in steps of this: few system calls, and the
// mapping never holds more than this much of RSS.
constexpr std::size_t kReleaseStep = std::size_t{64} << 20;

}  // namespace

MappedIOReader::MappedIOReader(const MappedFile& file, std::size_t offset, std::size_t size)
    : file_(file), position_(offset), end_(offset + size), released_(offset) {
  name = "snapshot";
}

size_t MappedIOReader::operator()(void* ptr, size_t size, size_t nitems) {
  if (size == 0 || position_ >= end_) return 0;
  nitems = std::min(nitems, (end_ - position_) / size);
  auto* out = static_cast<std::uint8_t*>(ptr);
  std::size_t left = size * nitems;
  while (left > 0) {
    std::size_t piece = std::min(left, kReleaseStep);
    std::memcpy(out, file_.bytes().data() + position_, piece);
    out += piece;
    position_ += piece;
    left -= piece;
    if (position_ - released_ >= kReleaseStep) {
      file_.release(released_, position_);
      released_ = position_;
    }
  }
  return nitems;
}

}  // namespace memos::faiss_retriever
