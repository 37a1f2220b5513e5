// The executor lane (kernel/serial_lane.h): foreground jobs before queued
// background ones, each kind in order, stop() running what is queued with
// stopping set, jobs posted after stop() run at once, the pending counts.
//
// Nothing here depends on timing: the lane is held by a job that waits on
// a gate the test opens, and the test waits on gates the jobs open.
#define BOOST_TEST_MODULE serial_lane
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kernel/serial_lane.h"

using memos::kernel::SerialLane;

namespace {

// Closed until open(); wait() blocks until then.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// What the jobs ran, in order, with the stopping flag each one got.
class Journal {
 public:
  SerialLane::Job job(std::string name) {
    return [this, name = std::move(name)](bool stopping) {
      std::lock_guard lock(mutex_);
      names_.push_back(name);
      stopping_.push_back(stopping);
    };
  }
  std::vector<std::string> names() {
    std::lock_guard lock(mutex_);
    return names_;
  }
  std::vector<bool> stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> names_;
  std::vector<bool> stopping_;
};

// Posts a job that holds the lane until `release` opens, and returns once
// it runs (so it is no longer queued).
void hold(SerialLane& lane, Gate& release) {
  Gate started;
  lane.post([&](bool) {
    started.open();
    release.wait();
  });
  started.wait();
}

// Waits until every job queued before now has run: a last background job
// runs after all of them.
void drain(SerialLane& lane) {
  Gate done;
  lane.post_background([&](bool) { done.open(); });
  done.wait();
}

}  // namespace

BOOST_AUTO_TEST_CASE(foreground_jobs_run_before_a_queued_background_job) {
  SerialLane lane;
  Journal journal;
  Gate release;
  hold(lane, release);
  lane.post_background(journal.job("B"));
  lane.post(journal.job("F1"));
  lane.post(journal.job("F2"));
  BOOST_TEST(lane.foreground_pending() == 2u);
  BOOST_TEST(lane.background_pending() == 1u);
  release.open();
  drain(lane);
  BOOST_TEST((journal.names() == std::vector<std::string>{"F1", "F2", "B"}));
  BOOST_TEST((journal.stopping() == std::vector<bool>{false, false, false}));
  BOOST_TEST(lane.foreground_pending() == 0u);
  BOOST_TEST(lane.background_pending() == 0u);
}

BOOST_AUTO_TEST_CASE(background_jobs_run_in_order) {
  SerialLane lane;
  Journal journal;
  Gate release;
  hold(lane, release);
  lane.post_background(journal.job("B1"));
  lane.post_background(journal.job("B2"));
  lane.post_background(journal.job("B3"));
  BOOST_TEST(lane.foreground_pending() == 0u);
  BOOST_TEST(lane.background_pending() == 3u);
  release.open();
  drain(lane);
  BOOST_TEST((journal.names() == std::vector<std::string>{"B1", "B2", "B3"}));
}

BOOST_AUTO_TEST_CASE(a_background_job_running_is_not_interrupted) {
  // A foreground job posted while a background one runs waits for it (and
  // only for it).
  SerialLane lane;
  Journal journal;
  Gate started, release;
  lane.post_background([&](bool) {
    started.open();
    release.wait();
    journal.job("B1")(false);
  });
  started.wait();
  lane.post_background(journal.job("B2"));
  lane.post(journal.job("F"));
  release.open();
  drain(lane);
  BOOST_TEST((journal.names() == std::vector<std::string>{"B1", "F", "B2"}));
}

BOOST_AUTO_TEST_CASE(stop_runs_queued_jobs_of_both_kinds_with_stopping_set) {
  SerialLane lane;
  Journal journal;
  Gate release;
  hold(lane, release);
  lane.post_background(journal.job("B"));
  lane.post(journal.job("F"));
  std::thread stopper([&] { lane.stop(); });
  // Wait until stop() has begun: a job posted from then on runs at once, on
  // this thread. Probes posted before that queue behind B and run at stop.
  const auto me = std::this_thread::get_id();
  std::atomic<bool> ran_here{false}, ran_here_stopping{false};
  while (!ran_here) {
    lane.post_background([&](bool stopping) {
      if (std::this_thread::get_id() != me) return;
      ran_here_stopping = stopping;
      ran_here = true;
    });
    std::this_thread::yield();
  }
  BOOST_TEST(ran_here_stopping.load());
  release.open();
  stopper.join();
  BOOST_TEST((journal.names() == std::vector<std::string>{"F", "B"}));
  BOOST_TEST((journal.stopping() == std::vector<bool>{true, true}));
  BOOST_TEST(lane.foreground_pending() == 0u);
  BOOST_TEST(lane.background_pending() == 0u);
}

BOOST_AUTO_TEST_CASE(jobs_posted_after_stop_run_at_once_with_stopping_set) {
  SerialLane lane;
  lane.stop();
  lane.stop();  // idempotent
  Journal journal;
  lane.post_background(journal.job("B"));
  // Already run, here: no wait needed.
  BOOST_TEST((journal.names() == std::vector<std::string>{"B"}));
  lane.post(journal.job("F"));
  BOOST_TEST((journal.names() == std::vector<std::string>{"B", "F"}));
  BOOST_TEST((journal.stopping() == std::vector<bool>{true, true}));
  BOOST_TEST(lane.foreground_pending() == 0u);
  BOOST_TEST(lane.background_pending() == 0u);
}
