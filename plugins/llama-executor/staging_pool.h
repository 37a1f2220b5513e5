// staging_pool.h — the memory a state blob's bytes live in inside the
// executor, from the file read to the restore and while the blob stays
// resident (resident_cache.h).
//
// On a GPU, llama_state_seq_set_data() copies each layer's K and V from
// these bytes to the device. From ordinary (pageable) memory the driver
// first copies them into a pinned bounce buffer of its own, chunk by
// chunk; from page-locked memory the copy engine reads them directly, one
// DMA per tensor. So with a GPU the pool hands out page-locked blocks from
// the CUDA runtime, within a byte budget, and keeps released blocks for
// the next blob (pinning costs far more than a malloc). Without a GPU, or
// past the budget, or when the driver refuses, a block is ordinary memory:
// the restore still works, only the copy is staged (stats() counts these).
//
// Thread-safe. A block may outlive the pool that gave it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace memos::llama_exec {

struct StagingStats {
  bool pinned = false;                // whether the pool pins at all (a GPU answered)
  std::uint64_t budget = 0;           // page-locked bytes it may hold
  std::uint64_t pinned_bytes = 0;     // page-locked bytes held: in use and kept free
  std::uint64_t in_use_bytes = 0;     // of those, in blocks handed out
  std::uint64_t pinned_blocks = 0;    // blocks handed out page-locked, since the start
  std::uint64_t ordinary_blocks = 0;  // blocks handed out as ordinary memory
  std::string why_ordinary;           // the last reason one was (budget, driver, no GPU)
};

class StagingPool;

// Where page-locked blocks come from: the CUDA runtime (gpu_runtime.h) in
// the executor; a unit test's own functions to check the pool's bookkeeping
// on a machine without a GPU.
struct PinnedAllocator {
  void* (*allocate)(std::size_t bytes, std::string* error);
  void (*free)(void* pointer);
};
PinnedAllocator cuda_pinned_allocator();

// One blob's bytes: page-locked or not, returned to its pool when dropped.
class StagedBytes {
 public:
  ~StagedBytes();
  StagedBytes(const StagedBytes&) = delete;
  StagedBytes& operator=(const StagedBytes&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::string_view view() const { return {data_, size_}; }
  bool pinned() const { return pinned_; }

 private:
  friend class StagingPool;
  struct Shared;
  StagedBytes(std::shared_ptr<Shared> pool, char* data, std::size_t size, std::size_t capacity,
              bool pinned);
  std::shared_ptr<Shared> pool_;  // null: ordinary memory, freed with delete[]
  char* data_;
  std::size_t size_, capacity_;
  bool pinned_;
};

class StagingPool {
 public:
  // `pin`: hand out page-locked memory (the executor runs on a GPU), within
  // `budget` bytes; false or 0: ordinary memory only.
  StagingPool(bool pin, std::uint64_t budget, PinnedAllocator allocator = cuda_pinned_allocator());
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // A block of `size` bytes (contents undefined). Never null: when no
  // page-locked block can be had, an ordinary one. Throws std::bad_alloc
  // only when ordinary memory runs out too.
  std::shared_ptr<StagedBytes> allocate(std::size_t size);
  // Copies `bytes` into a new block (tests; states made in the executor).
  std::shared_ptr<StagedBytes> copy_of(std::string_view bytes);
  StagingStats stats() const;

 private:
  std::shared_ptr<StagedBytes::Shared> shared_;
};

}  // namespace memos::llama_exec
