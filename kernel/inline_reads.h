// inline_reads.h — whether a cheap read (one item's get, the daemon's status)
// runs on the loop thread itself instead of hopping to a worker and back.
//
// Why: a get is one LMDB lookup of a few microseconds; the hop through
// libuv's worker pool and the mailbox back costs two thread wake-ups, more
// than the read. Why not always: LMDB reads the memory map, so a read that
// touches a page not in memory waits for the disk (a page fault), and a large
// item is copied twice (into the store's Item, into the reply) — either could
// hold the loop for long. The trade-off taken: cheap reads run on the loop
// until one takes longer than kSlowRead; then every read goes to the workers
// for kPause before the loop tries again. So the loop stalls on a read at most
// once per kPause (the stall being one cold read), while a warm working set
// is served with no hop at all. Item texts are bounded (store.max_text_bytes,
// 1 MiB by default), so even that one read is bounded.
//
// Loop thread only (asserted in debug builds).
#pragma once

#include <chrono>

#include "memcube/thread_affinity.h"

namespace memos::kernel {

class InlineReads {
 public:
  using Clock = std::chrono::steady_clock;
  // A read slower than this sends reads to the workers for kPause.
  static constexpr std::chrono::microseconds kSlowRead{200};
  static constexpr std::chrono::milliseconds kPause{100};

  InlineReads() = default;
  // Binds to the calling thread, the loop's (Daemon::run()).
  void bind() { loop_thread_.bind(); }
  InlineReads(const InlineReads&) = delete;
  InlineReads& operator=(const InlineReads&) = delete;

  // Calls `read()` now, on the loop, unless reads on the loop are paused;
  // then calls `defer()`, which hands the read to a worker. Either answers
  // the request (the read itself, from whichever thread runs it).
  template <class Read, class Defer>
  void run(Read&& read, Defer&& defer) {
    MEMOS_ASSERT_ON_THREAD(loop_thread_);
    Clock::time_point start = Clock::now();
    if (start < paused_until_) return defer();
    read();
    if (Clock::now() - start > kSlowRead) paused_until_ = Clock::now() + kPause;
  }

 private:
  ThreadAffinity loop_thread_;
  Clock::time_point paused_until_{};
};

}  // namespace memos::kernel
