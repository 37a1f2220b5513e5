// sdk/c/arena.cpp — Arena's chunks, and memos_free.
#include "sdk/c/arena.h"

#include <algorithm>
#include <cassert>
#include <cstdint>

namespace memos::c_api {
namespace {

constexpr std::size_t kChunkBytes = 4096;
constexpr std::size_t kAlign = alignof(std::max_align_t);
constexpr std::uint64_t kMagic = 0x6d656d6f73617231;  // "memosar1"

// What lies just before a root.
struct alignas(std::max_align_t) Prefix {
  Arena* arena;
  std::uint64_t magic;
};

std::size_t round_up(std::size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

void* Arena::bytes(std::size_t size) {
  size = round_up(std::max<std::size_t>(size, 1));
  if (chunks_.empty() || capacity_ - used_ < size) {
    std::size_t capacity = std::max(kChunkBytes, size);
    chunks_.push_back(std::make_unique<std::max_align_t[]>(capacity / kAlign));
    capacity_ = capacity;
    used_ = 0;
  }
  auto* base = reinterpret_cast<char*>(chunks_.back().get());
  void* p = base + used_;
  used_ += size;
  std::memset(p, 0, size);
  return p;
}

void* Arena::root_bytes(std::size_t size) {
  assert(chunks_.empty());
  auto* prefix = static_cast<Prefix*>(bytes(sizeof(Prefix) + size));
  prefix->arena = this;
  prefix->magic = kMagic;
  return prefix + 1;
}

char* Arena::make_string(std::string_view text) {
  auto arena = std::make_unique<Arena>();
  char* root = static_cast<char*>(arena->root_bytes(text.size() + 1));
  if (!text.empty()) std::memcpy(root, text.data(), text.size());
  arena.release();  // owned through the root's prefix
  return root;
}

Arena* Arena::of_root(void* root) {
  auto* prefix = static_cast<Prefix*>(root) - 1;
  return prefix->magic == kMagic ? prefix->arena : nullptr;
}

memos_str Arena::str(std::string_view text) {
  char* p = static_cast<char*>(bytes(text.size() + 1));
  if (!text.empty()) std::memcpy(p, text.data(), text.size());
  return memos_str{p, text.size()};
}

}  // namespace memos::c_api

extern "C" void memos_free(void* p) {
  if (p == nullptr) return;
  memos::c_api::Arena* arena = memos::c_api::Arena::of_root(p);
  assert(arena != nullptr && "memos_free: not a pointer libmemos handed out");
  delete arena;
}
