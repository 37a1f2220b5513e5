// periodic_job.h — work the daemon does every so often (retention, the
// access-statistics flush, blob garbage collection, index snapshots, the
// watchdog ping): a libuv timer, a step, and a busy flag.
//
// A run never overlaps the previous one: a tick that finds the last run
// still going is skipped (not queued), so a slow run — a retention batch
// behind a long commit, a snapshot of a big index — delays the work instead
// of piling it up. The run lasts while the step, or anything it handed its
// Running token to, holds that token: a step that finishes on the writer
// thread or a worker captures the token in its completion, and the run ends
// when the last copy is destroyed, on whichever thread that is.
//
// Loop thread only (construction, ticks, stop()). The busy flag is shared
// with the tokens, so a completion that outlives the job (the daemon stops
// while a run is in flight) still finds it.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "kernel/uv_handle.h"
#include "memcube/thread_affinity.h"

namespace memos::kernel {

class PeriodicJob {
 public:
  // Held for the duration of one run; copyable. The run ends when the last
  // copy is destroyed.
  class Running {
   public:
    explicit Running(std::shared_ptr<std::atomic<bool>> busy);

   private:
    // Clears the flag when the last token goes.
    class Release {
     public:
      explicit Release(std::shared_ptr<std::atomic<bool>> busy) : busy_(std::move(busy)) {}
      ~Release();
      Release(const Release&) = delete;
      Release& operator=(const Release&) = delete;

     private:
      std::shared_ptr<std::atomic<bool>> busy_;
    };
    std::shared_ptr<const Release> release_;
  };
  using Step = std::function<void(Running)>;

  // Starts the timer on `loop`: the step runs every `interval_ms` (the first
  // time one interval from now). An interval of 0 runs it once, on the next
  // turn (libuv's repeat of 0). Must be called on the loop thread.
  PeriodicJob(uv_loop_t* loop, std::uint64_t interval_ms, Step step);
  ~PeriodicJob();  // stop()
  PeriodicJob(const PeriodicJob&) = delete;
  PeriodicJob& operator=(const PeriodicJob&) = delete;

  // No more ticks: the timer is closed. A run in flight still completes.
  // Idempotent.
  void stop();

  // Whether a run is in flight (thread-safe; for tests and logs).
  bool busy() const { return busy_->load(std::memory_order_acquire); }

 private:
  static void on_tick(uv_timer_t* timer);

  Step step_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
  ThreadAffinity loop_thread_;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace memos::kernel
