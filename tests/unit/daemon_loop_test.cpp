// The daemon's loop parts on a loop of their own: UvHandle (every handle
// freed, the loop closes clean), PeriodicJob (a run never overlaps the last,
// its end may come from another thread, even after the job is gone) and
// LoopMailbox (closures from other threads run on the loop).
#define BOOST_TEST_MODULE daemon_loop
#include <boost/test/unit_test.hpp>

#include <uv.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "kernel/loop_mailbox.h"
#include "kernel/periodic_job.h"
#include "kernel/uv_handle.h"

using memos::kernel::LoopMailbox;
using memos::kernel::PeriodicJob;
using memos::kernel::UvHandle;

namespace {

struct Loop {
  Loop() { BOOST_REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);  // the close callbacks of what is left
    BOOST_TEST(uv_loop_close(&loop) == 0);
  }
  // Runs the loop for about `ms`.
  void run_for(std::uint64_t ms) {
    UvHandle<uv_timer_t> stop;
    stop.open(&loop, uv_timer_init);
    stop->data = &loop;
    uv_timer_start(
        stop.get(), [](uv_timer_t* t) { uv_stop(static_cast<uv_loop_t*>(t->data)); }, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_t loop{};
};

void count_close(void* data) {
  ++*static_cast<int*>(data);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_handle_is_freed_by_its_close_and_the_loop_closes_clean) {
  Loop l;
  int closed = 0;
  {
    UvHandle<uv_timer_t> timer;
    BOOST_TEST(timer.open(&l.loop, uv_timer_init) == 0);
    timer->data = &closed;
    UvHandle<uv_timer_t> moved = std::move(timer);
    BOOST_TEST(!timer);
    BOOST_TEST(static_cast<bool>(moved));
    moved.close<&count_close>();
    BOOST_TEST(!moved);
    UvHandle<uv_async_t> open_at_destruction;
    open_at_destruction.open(&l.loop, uv_async_init, [](uv_async_t*) {});
  }
  uv_run(&l.loop, UV_RUN_NOWAIT);
  BOOST_TEST(closed == 1);
}

BOOST_AUTO_TEST_CASE(a_tick_is_skipped_while_the_last_run_goes_on) {
  Loop l;
  int runs = 0;
  std::optional<PeriodicJob::Running> held;
  PeriodicJob job(&l.loop, 1, [&](PeriodicJob::Running run) {
    ++runs;
    held = std::move(run);
  });
  l.run_for(30);
  BOOST_TEST(runs == 1);
  BOOST_TEST(job.busy());
  held.reset();  // the run ends
  BOOST_TEST(!job.busy());
  l.run_for(30);
  BOOST_TEST(runs == 2);
}

BOOST_AUTO_TEST_CASE(a_run_may_end_on_another_thread_after_the_job_is_gone) {
  Loop l;
  std::atomic<int> runs{0};
  std::vector<std::thread> completions;
  {
    PeriodicJob job(&l.loop, 1, [&](PeriodicJob::Running run) {
      ++runs;
      completions.emplace_back(
          [run] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); });
    });
    l.run_for(20);
    BOOST_TEST(runs.load() == 1);  // the first run is still going
  }                                // stopped and destroyed with its run in flight
  for (auto& t : completions) t.join();
  BOOST_TEST(runs.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_synchronous_step_runs_on_every_tick) {
  Loop l;
  int runs = 0;
  PeriodicJob job(&l.loop, 1, [&](PeriodicJob::Running) { ++runs; });
  l.run_for(30);
  BOOST_TEST(runs > 3);
  job.stop();
  int after_stop = runs;
  l.run_for(10);
  BOOST_TEST(runs == after_stop);
}

BOOST_AUTO_TEST_CASE(the_mailbox_runs_posts_from_other_threads_on_the_loop) {
  Loop l;
  std::thread::id loop_thread = std::this_thread::get_id();
  bool ran_on_loop = false;
  {
    LoopMailbox mailbox(&l.loop);
    std::thread poster([&] {
      mailbox.post([&] {
        ran_on_loop = std::this_thread::get_id() == loop_thread;
        mailbox.close();  // the loop can end now
      });
    });
    uv_run(&l.loop, UV_RUN_DEFAULT);
    poster.join();
    bool dropped = true;
    mailbox.post([&] { dropped = false; });
    BOOST_TEST(dropped);
  }
  BOOST_TEST(ran_on_loop);
}
