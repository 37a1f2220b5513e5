// serial_lane.h — one thread that runs jobs in order: long model calls
// (prefill, generation) run here rather than on the worker pool, so that
// they never hold the workers searches and reads need.
//
// Two queues: foreground jobs (post: a client is waiting) and background
// jobs (post_background: the scheduler prefilling working-set states). A
// background job starts only when no foreground job is queued, so a
// client's chat never waits behind one that has not started; one already
// running is not interrupted (a model call cannot be cut short), which
// bounds a chat's wait by one background job. Each queue keeps its order.
#pragma once

#include <condition_variable>
#include <cstddef>
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

  // Runs the jobs still queued (both kinds, foreground first, with stopping
  // set) and joins the thread.
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

  // Queues a foreground job: it runs after the foreground jobs queued
  // before it, and before every background job still queued.
  // Thread-safe. Jobs queued when the lane stops still run, with stopping
  // set; a job posted after stop() runs at once on the caller's thread, with
  // stopping set, so that it still answers (it should fail fast).
  void post(Job job) { enqueue(&jobs_, std::move(job)); }

  // Queues a background job: it runs once no foreground job is queued,
  // after the background jobs queued before it. Thread-safe; at stop() and
  // after it, as post().
  void post_background(Job job) { enqueue(&background_, std::move(job)); }

  // Jobs queued and not yet started (for status output; stale as soon as
  // read). Thread-safe.
  std::size_t foreground_pending() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
  }
  std::size_t background_pending() const {
    std::lock_guard lock(mutex_);
    return background_.size();
  }

 private:
  void enqueue(std::deque<Job>* queue, Job job) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        queue->push_back(std::move(job));
        wake_.notify_one();
        return;
      }
    }
    job(true);
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty() || !background_.empty(); });
      // Foreground first, whenever one is queued.
      std::deque<Job>* queue = !jobs_.empty() ? &jobs_ : &background_;
      if (queue->empty()) return;  // stopping, nothing left
      Job job = std::move(queue->front());
      queue->pop_front();
      bool stopping = stopping_;
      lock.unlock();
      job(stopping);
      lock.lock();
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;        // foreground
  std::deque<Job> background_;  // run only when jobs_ is empty
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace memos::kernel
