// The queue between the writer and the indexer thread (kernel/index_feed.h):
// order, waiters, barriers, backpressure and the drain at stop, with a
// `process` that records what it is given.
#define BOOST_TEST_MODULE index_feed
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "kernel/index_feed.h"

using memos::kernel::IndexChange;
using memos::kernel::IndexFeed;
using namespace std::chrono_literals;

namespace {

// Records the item ids it is given, in order; holds each batch while
// `hold` is set, so a test can make the indexer fall behind.
struct Recorder {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::uint64_t> seen;
  std::size_t batches = 0;
  std::size_t entered = 0;  // batches process was called with
  bool hold = false;

  IndexFeed::Process process() {
    return [this](std::vector<IndexChange>& batch) {
      std::unique_lock lock(mutex);
      ++entered;
      changed.wait(lock, [&] { return !hold; });
      for (const auto& c : batch) seen.push_back(c.item.id);
      ++batches;
      changed.notify_all();
    };
  }
  void set_hold(bool on) {
    std::lock_guard lock(mutex);
    hold = on;
    changed.notify_all();
  }
  std::vector<std::uint64_t> ids() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

std::vector<IndexChange> changes(std::initializer_list<std::uint64_t> ids) {
  std::vector<IndexChange> out;
  for (std::uint64_t id : ids) {
    IndexChange c;
    c.item.id = id;
    c.item.text = "text";
    out.push_back(std::move(c));
  }
  return out;
}

// Accepts one write per id and posts them as one commit group.
std::uint64_t commit(IndexFeed& feed, std::initializer_list<std::uint64_t> ids) {
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) last = feed.accept();
  feed.post(changes(ids));
  return last;
}

template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

}  // namespace

BOOST_AUTO_TEST_CASE(changes_reach_process_in_commit_order_and_waiters_after_them) {
  Recorder r;
  IndexFeed feed(r.process(), 1000, 1u << 20);
  std::promise<std::vector<std::uint64_t>> seen_by_waiter;
  const std::uint64_t first = commit(feed, {1, 2, 3});
  feed.when_indexed(first, [&] { seen_by_waiter.set_value(r.ids()); });
  const std::uint64_t second = commit(feed, {4, 5});
  BOOST_TEST(second == first + 2);
  BOOST_TEST(feed.accepted() == second);
  auto seen = seen_by_waiter.get_future().get();
  // The waiter runs once its write's group is processed, never before.
  BOOST_TEST(seen.size() >= 3u);
  BOOST_TEST((std::vector<std::uint64_t>(seen.begin(), seen.begin() + 3) ==
              std::vector<std::uint64_t>{1, 2, 3}));
  BOOST_REQUIRE(eventually([&] { return feed.lag().backlog == 0; }));
  BOOST_TEST((r.ids() == std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  BOOST_TEST(feed.lag().indexed == second);
  // A write already indexed: the waiter runs at once, on this thread.
  bool ran = false;
  feed.when_indexed(second, [&] { ran = true; });
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(groups_posted_while_the_indexer_is_busy_come_as_one_batch) {
  Recorder r;
  IndexFeed feed(r.process(), 1000, 1u << 20);
  r.set_hold(true);
  commit(feed, {1});
  BOOST_REQUIRE(eventually([&] {
    std::lock_guard lock(r.mutex);
    return r.entered == 1;
  }));
  BOOST_TEST(feed.lag().oldest_ms > 0);
  for (std::uint64_t id = 2; id <= 10; ++id) commit(feed, {id});
  BOOST_TEST(feed.lag().backlog == 10u);
  r.set_hold(false);
  BOOST_REQUIRE(eventually([&] { return feed.lag().backlog == 0; }));
  BOOST_TEST(r.ids().size() == 10u);
  std::lock_guard lock(r.mutex);
  BOOST_TEST(r.batches == 2u);  // the first group, then the nine behind it
  BOOST_TEST(feed.lag().freshness_p99_ms > 0);
}

BOOST_AUTO_TEST_CASE(a_barrier_runs_after_what_was_posted_before_it) {
  Recorder r;
  IndexFeed feed(r.process(), 1000, 1u << 20);
  r.set_hold(true);
  commit(feed, {1, 2});
  std::promise<std::vector<std::uint64_t>> at_barrier;
  feed.post_barrier([&] { at_barrier.set_value(r.ids()); });
  commit(feed, {3});
  r.set_hold(false);
  BOOST_TEST((at_barrier.get_future().get() == std::vector<std::uint64_t>{1, 2}));
  BOOST_REQUIRE(eventually([&] { return r.ids().size() == 3u; }));
}

BOOST_AUTO_TEST_CASE(the_writer_waits_while_the_backlog_is_over_its_bound) {
  Recorder r;
  IndexFeed feed(r.process(), 4, 1u << 20);
  r.set_hold(true);
  commit(feed, {1, 2, 3, 4, 5, 6});  // over the bound of 4
  std::atomic<bool> returned{false};
  std::thread writer([&] {
    feed.wait_for_room();
    returned = true;
  });
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(!returned.load());  // blocked while the indexer holds the batch
  r.set_hold(false);
  writer.join();
  BOOST_TEST(returned.load());
  BOOST_TEST(feed.lag().backlog <= 4u);
}

BOOST_AUTO_TEST_CASE(the_byte_bound_applies_too) {
  Recorder r;
  IndexFeed feed(r.process(), 1000000, 1024);
  r.set_hold(true);
  std::vector<IndexChange> big(1);
  big[0].item.text.assign(4096, 'x');
  feed.accept();
  feed.post(std::move(big));
  std::atomic<bool> returned{false};
  std::thread writer([&] {
    feed.wait_for_room();
    returned = true;
  });
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(!returned.load());
  r.set_hold(false);
  writer.join();
}

BOOST_AUTO_TEST_CASE(stop_drains_everything_and_answers_every_waiter) {
  Recorder r;
  std::atomic<int> answered{0};
  {
    IndexFeed feed(r.process(), 1000, 1u << 20);
    r.set_hold(true);
    for (std::uint64_t id = 1; id <= 5; ++id) {
      const std::uint64_t n = commit(feed, {id});
      feed.when_indexed(n, [&] { ++answered; });
    }
    // A number never posted (a write that failed after it was numbered).
    feed.when_indexed(feed.accept(), [&] { ++answered; });
    std::thread release([&] {
      std::this_thread::sleep_for(20ms);
      r.set_hold(false);
    });
    feed.stop();
    release.join();
    BOOST_TEST(r.ids().size() == 5u);
    // After stop: waiters run at once, barriers are dropped.
    bool ran = false;
    feed.when_indexed(feed.accepted() + 100, [&] { ran = true; });
    BOOST_TEST(ran);
    feed.post_barrier([] { BOOST_FAIL("a barrier after stop ran"); });
    feed.wait_for_room();  // never blocks after stop
  }
  BOOST_TEST(answered.load() == 6);
}
