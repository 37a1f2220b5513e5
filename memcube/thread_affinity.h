// thread_affinity.h — checks the "loop thread only" and "writer thread only"
// preconditions that memosd's comments state: an object that must be used
// from one thread binds a ThreadAffinity to it, and its thread-bound methods
// assert MEMOS_ASSERT_ON_THREAD. Checked in debug builds (the sanitizer
// build is one, so the whole test suite runs with them); compiled out with
// NDEBUG, where the member costs one word.
//
// Lives in memcube/, the lowest layer the kernel builds on, so the store's
// writer and the kernel's loop use the same check.
#pragma once

#include <atomic>
#include <cassert>
#include <thread>

namespace memos {

class ThreadAffinity {
 public:
  // Unbound until bind(): every thread passes (an object built on one thread
  // and handed to its owner before use).
  ThreadAffinity() = default;
  // Binds to the calling thread; later calls move the binding (a writer
  // thread that is restarted).
  void bind() { owner_.store(std::this_thread::get_id(), std::memory_order_release); }
  void unbind() { owner_.store(std::thread::id(), std::memory_order_release); }
  // True when unbound or called on the owning thread.
  bool on_owner() const {
    std::thread::id owner = owner_.load(std::memory_order_acquire);
    return owner == std::thread::id() || owner == std::this_thread::get_id();
  }

 private:
  std::atomic<std::thread::id> owner_{};
};

}  // namespace memos

// Asserts that the caller runs on the thread `affinity` is bound to.
#define MEMOS_ASSERT_ON_THREAD(affinity) \
  assert((affinity).on_owner() && "called off the thread that owns this object")
