// serial_lane.h — one thread that runs jobs in order: long model calls
// (prefill, generation) run here rather than on the worker pool, so that
// they never hold the workers searches and reads need.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace memos::kernel {

class SerialLane {
 public:
  // A job learns whether the lane is stopping (then it should fail fast).
  using Job = std::function<void(bool stopping)>;

  SerialLane() : thread_([this] { run(); }) {}
  ~SerialLane() { stop(); }
  SerialLane(const SerialLane&) = delete;
  SerialLane& operator=(const SerialLane&) = delete;

  // Runs the jobs still queued (with stopping set) and joins the thread.
  // Idempotent; not from a job on this lane. Whoever owns the lane calls it
  // while everything the jobs reply through still exists (the daemon: before
  // its loop mailbox goes), so shutdown never depends on member order.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Thread-safe. Jobs queued when the lane stops still run, with stopping
  // set; a job posted after stop() runs at once on the caller's thread, with
  // stopping set, so that it still answers (it should fail fast).
  void post(Job job) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        jobs_.push_back(std::move(job));
        wake_.notify_one();
        return;
      }
    }
    job(true);
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      bool stopping = stopping_;
      lock.unlock();
      job(stopping);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace memos::kernel
