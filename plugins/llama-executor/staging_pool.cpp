#include "plugins/llama-executor/staging_pool.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "plugins/llama-executor/gpu_runtime.h"

namespace memos::llama_exec {

// The pool's state, shared with every page-locked block it handed out, so a
// block released after the pool is gone still frees its memory.
struct StagedBytes::Shared {
  mutable std::mutex mutex;
  PinnedAllocator allocator{};
  bool pin = false;
  bool closed = false;  // the pool is gone: released blocks are freed, not kept
  std::uint64_t budget = 0;
  std::uint64_t held = 0;    // page-locked bytes: in use + free_
  std::uint64_t in_use = 0;  // of those, handed out
  std::uint64_t pinned_blocks = 0, ordinary_blocks = 0;
  std::string why_ordinary;
  std::multimap<std::size_t, char*> free_;  // kept blocks by capacity

  void release(char* data, std::size_t capacity) {
    std::lock_guard lock(mutex);
    in_use -= capacity;
    if (closed) {
      held -= capacity;
      allocator.free(data);
      return;
    }
    free_.emplace(capacity, data);
  }

  // Frees kept blocks, the largest first, until `room` more bytes fit.
  void make_room(std::uint64_t room) {
    while (held + room > budget && !free_.empty()) {
      auto largest = std::prev(free_.end());
      held -= largest->first;
      allocator.free(largest->second);
      free_.erase(largest);
    }
  }

  void free_all() {
    for (auto& [capacity, data] : free_) {
      held -= capacity;
      allocator.free(data);
    }
    free_.clear();
  }
};

StagedBytes::StagedBytes(std::shared_ptr<Shared> pool, char* data, std::size_t size,
                         std::size_t capacity, bool pinned)
    : pool_(std::move(pool)), data_(data), size_(size), capacity_(capacity), pinned_(pinned) {}

StagedBytes::~StagedBytes() {
  if (pinned_) {
    pool_->release(data_, capacity_);
  } else {
    delete[] data_;
  }
}

PinnedAllocator cuda_pinned_allocator() {
  return {gpu::alloc_pinned, gpu::free_pinned};
}

StagingPool::StagingPool(bool pin, std::uint64_t budget, PinnedAllocator allocator)
    : shared_(std::make_shared<StagedBytes::Shared>()) {
  shared_->allocator = allocator;
  shared_->pin = pin && budget > 0;
  shared_->budget = budget;
  if (!pin) {
    shared_->why_ordinary = "the executor runs on the CPU";
  } else if (budget == 0) {
    shared_->why_ordinary = "a page-locked budget of 0";
  }
}

StagingPool::~StagingPool() {
  std::lock_guard lock(shared_->mutex);
  shared_->closed = true;
  shared_->free_all();
}

std::shared_ptr<StagedBytes> StagingPool::allocate(std::size_t size) {
  // A block of 0 bytes is still a block (an empty blob is refused later, by
  // its parser, like any other short one).
  const std::size_t capacity = std::max<std::size_t>(size, 1);
  {
    std::unique_lock lock(shared_->mutex);
    if (shared_->pin) {
      // A kept block that fits without wasting more than half of itself.
      auto it = shared_->free_.lower_bound(capacity);
      if (it != shared_->free_.end() && it->first / 2 <= capacity) {
        const std::size_t kept = it->first;
        char* data = it->second;
        shared_->free_.erase(it);
        shared_->in_use += kept;
        ++shared_->pinned_blocks;
        return std::shared_ptr<StagedBytes>(
            new StagedBytes(shared_, data, size, kept, /*pinned=*/true));
      }
      if (shared_->in_use + capacity <= shared_->budget) {
        shared_->make_room(capacity);
        // Reserved before the lock is let go: pinning takes milliseconds
        // for a large block, and another thread's allocate must see it.
        shared_->held += capacity;
        shared_->in_use += capacity;
        std::string error;
        lock.unlock();
        char* data = static_cast<char*>(shared_->allocator.allocate(capacity, &error));
        lock.lock();
        if (data) {
          ++shared_->pinned_blocks;
          return std::shared_ptr<StagedBytes>(
              new StagedBytes(shared_, data, size, capacity, /*pinned=*/true));
        }
        shared_->held -= capacity;
        shared_->in_use -= capacity;
        shared_->why_ordinary = "the CUDA runtime refused page-locked memory: " + error;
      } else {
        shared_->why_ordinary =
            "page-locked budget of " + std::to_string(shared_->budget) + " bytes in use";
      }
    }
    ++shared_->ordinary_blocks;
  }
  return std::shared_ptr<StagedBytes>(
      new StagedBytes(nullptr, new char[capacity], size, capacity, /*pinned=*/false));
}

std::shared_ptr<StagedBytes> StagingPool::copy_of(std::string_view bytes) {
  auto block = allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(block->data(), bytes.data(), bytes.size());
  return block;
}

StagingStats StagingPool::stats() const {
  std::lock_guard lock(shared_->mutex);
  StagingStats s;
  s.pinned = shared_->pin;
  s.budget = shared_->budget;
  s.pinned_bytes = shared_->held;
  s.in_use_bytes = shared_->in_use;
  s.pinned_blocks = shared_->pinned_blocks;
  s.ordinary_blocks = shared_->ordinary_blocks;
  s.why_ordinary = shared_->why_ordinary;
  return s;
}

}  // namespace memos::llama_exec
