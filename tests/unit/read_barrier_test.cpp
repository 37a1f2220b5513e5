// ReadBarrier (cluster mode's reads on any node) against a model of a
// replica: an owner within its lease answers at once; a follower waits for
// one question to the log per round, which every read waiting then shares;
// a bound on staleness skips the round; the log not answering, a node that
// does not catch up and a stop are refused with unavailable, saying how
// stale the node was last known to be. (Against real engines:
// test_cluster.)
#define BOOST_TEST_MODULE read_barrier
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/read_barrier.h"
#include "cluster/replica_set.h"
#include "tests/support/cluster_fixture.h"

using memos::cluster::LogView;
using memos::cluster::ReadBarrier;
using memos::cluster::ReplicaSet;
using memos::store::Errc;
using memos::store::Status;
using memos::testing::eventually;
using namespace std::chrono_literals;

namespace {

// A replica as the barrier sees it: where the log ends, what the store
// holds, when it was last current; log_end() can be held to gather reads
// into one round, or fail.
class ModelLog : public LogView {
 public:
  std::optional<Clock::time_point> current_as_of() const override {
    std::lock_guard lock(mutex_);
    if (owner_) return Clock::now();
    return as_of_;
  }
  Status log_end(std::uint64_t* sequence) override {
    std::unique_lock lock(mutex_);
    ++questions_;
    asking_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !held_; });
    asking_ = false;
    if (!log_error_.ok()) return log_error_;
    *sequence = end_;
    return {};
  }
  void read_soon() override {
    std::lock_guard lock(mutex_);
    ++woken_;
  }
  Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                      std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    // What a set of shards woke before it waited on any (read_soon).
    woken_before_wait_.push_back(woken_);
    asked_for_.push_back(sequence);
    if (!changed_.wait_for(lock, timeout, [&] { return held_through_ >= sequence; })) {
      return {Errc::unavailable, "behind"};
    }
    if (!fault_.empty()) return {Errc::corrupt, fault_};
    as_of_ = asked_at;
    return {};
  }

  void set(std::uint64_t end, std::uint64_t held_through) {
    std::lock_guard lock(mutex_);
    end_ = end;
    held_through_ = held_through;
    changed_.notify_all();
  }
  void own() {
    std::lock_guard lock(mutex_);
    owner_ = true;
  }
  void current_at(std::optional<Clock::time_point> t) {
    std::lock_guard lock(mutex_);
    as_of_ = t;
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  bool asking() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [this] { return asking_; });
  }
  void fail_log(Status s) {
    std::lock_guard lock(mutex_);
    log_error_ = std::move(s);
  }
  void stop_off_chain(std::string why) {
    std::lock_guard lock(mutex_);
    fault_ = std::move(why);
  }
  int questions() const {
    std::lock_guard lock(mutex_);
    return questions_;
  }
  std::vector<std::uint64_t> asked_for() const {
    std::lock_guard lock(mutex_);
    return asked_for_;
  }
  std::vector<int> woken_before_wait() const {
    std::lock_guard lock(mutex_);
    return woken_before_wait_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Clock::time_point> as_of_;
  std::uint64_t end_ = 0, held_through_ = 0;
  bool owner_ = false, held_ = false, asking_ = false;
  Status log_error_;
  std::string fault_;
  int questions_ = 0, woken_ = 0;
  std::vector<std::uint64_t> asked_for_;
  std::vector<int> woken_before_wait_;
};

// What a read's `done` got, once it was called.
struct Answer {
  std::mutex mutex;
  std::optional<Status> status;
  ReadBarrier::Done done() {
    return [this](const Status& s) {
      std::lock_guard lock(mutex);
      status = s;
    };
  }
  bool answered() {
    std::lock_guard lock(mutex);
    return status.has_value();
  }
  Status get() {
    BOOST_REQUIRE(eventually([this] { return answered(); }, 10s));
    std::lock_guard lock(mutex);
    return *status;
  }
};

// A read that accepts no staleness, which `barrier` refuses as unavailable:
// the refusal.
Status refused_read(ReadBarrier& barrier) {
  Answer a;
  barrier.wait(0ms, a.done());
  const Status s = a.get();
  BOOST_TEST((s.code == Errc::unavailable));
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_node_current_now_answers_at_once_without_asking_the_log) {
  ModelLog log;
  log.own();  // an owner within its lease
  ReadBarrier barrier(log, 1s);
  Answer a;
  barrier.wait(0ms, a.done());
  BOOST_TEST(a.answered());  // on this thread, before wait() returned
  BOOST_TEST(a.get().ok());
  BOOST_TEST(barrier.current_within(0ms));
  BOOST_TEST(log.questions() == 0);
  BOOST_TEST(barrier.counters().current == 2u);
  BOOST_TEST(barrier.counters().rounds == 0u);
}

BOOST_AUTO_TEST_CASE(a_follower_waits_to_hold_the_log_as_far_as_it_ended) {
  ModelLog log;
  log.set(42, 40);  // two records short
  ReadBarrier barrier(log, 10s);
  Answer a;
  barrier.wait(0ms, a.done());
  BOOST_REQUIRE(eventually([&] { return log.asked_for().size() == 1u; }, 10s));
  BOOST_TEST(!a.answered());
  log.set(42, 42);  // applied
  BOOST_TEST(a.get().ok(), a.get().message);
  BOOST_TEST(log.asked_for() == std::vector<std::uint64_t>{42});
  BOOST_TEST(barrier.counters().waited == 1u);
  // Current as of the question now: a read that accepts a second's
  // staleness is answered at once, one that accepts none asks again.
  BOOST_TEST(barrier.current_within(1000ms));
  Answer b;
  barrier.wait(0ms, b.done());
  BOOST_TEST(b.get().ok());
  BOOST_TEST(log.questions() == 2);
}

BOOST_AUTO_TEST_CASE(reads_waiting_together_share_one_question) {
  ModelLog log;
  log.set(7, 7);
  log.hold();
  ReadBarrier barrier(log, 10s);
  Answer first;
  barrier.wait(0ms, first.done());
  BOOST_REQUIRE(log.asking());  // the first round asks, and waits
  // These arrive after the first round asked: the next round is theirs.
  std::vector<std::unique_ptr<Answer>> later;
  for (int i = 0; i < 50; ++i) {
    later.push_back(std::make_unique<Answer>());
    barrier.wait(0ms, later.back()->done());
  }
  BOOST_TEST(!first.answered());
  log.release();
  BOOST_TEST(first.get().ok());
  for (auto& a : later) BOOST_TEST(a->get().ok());
  BOOST_TEST(log.questions() == 2);
  BOOST_TEST(barrier.counters().rounds == 2u);
  BOOST_TEST(barrier.counters().waited == 51u);
}

BOOST_AUTO_TEST_CASE(a_bound_on_staleness_skips_the_round_only_within_it) {
  ModelLog log;
  log.set(3, 3);
  log.current_at(LogView::Clock::now() - 300ms);
  ReadBarrier barrier(log, 10s);
  Answer within, beyond;
  barrier.wait(60000ms, within.done());
  BOOST_TEST(within.answered());
  BOOST_TEST(log.questions() == 0);
  barrier.wait(100ms, beyond.done());
  BOOST_TEST(beyond.get().ok());
  BOOST_TEST(log.questions() == 1);
}

BOOST_AUTO_TEST_CASE(a_log_that_does_not_answer_is_refused_saying_how_stale_the_node_is) {
  ModelLog log;
  log.current_at(LogView::Clock::now() - 2s);
  log.fail_log({Errc::unavailable, "no JetStream leader"});
  ReadBarrier barrier(log, 10s);
  const Status s = refused_read(barrier);
  BOOST_TEST(s.message.find("no JetStream leader") != std::string::npos, s.message);
  BOOST_TEST(s.message.find("ms ago") != std::string::npos, s.message);
  BOOST_TEST(s.message.find("--stale") != std::string::npos, s.message);
  BOOST_TEST(barrier.counters().failed == 1u);
  // Never current: said so.
  log.current_at(std::nullopt);
  Answer b;
  barrier.wait(0ms, b.done());
  BOOST_TEST(b.get().message.find("not known") != std::string::npos, b.get().message);
}

BOOST_AUTO_TEST_CASE(a_node_that_does_not_catch_up_or_left_the_chain_is_refused) {
  ModelLog log;
  log.set(100, 10);
  ReadBarrier barrier(log, 50ms);
  Answer behind;
  barrier.wait(0ms, behind.done());
  BOOST_TEST((behind.get().code == Errc::unavailable));
  BOOST_TEST(behind.get().message.find("behind") != std::string::npos, behind.get().message);
  log.set(100, 100);
  log.stop_off_chain("record 9 follows another history");
  Answer off;
  barrier.wait(0ms, off.done());
  BOOST_TEST((off.get().code == Errc::unavailable));
  BOOST_TEST(off.get().message.find("stopped applying the log (record 9 follows another "
                                    "history)") != std::string::npos,
             off.get().message);
}

BOOST_AUTO_TEST_CASE(stopping_answers_every_waiting_read_and_refuses_later_ones) {
  ModelLog log;
  log.set(5, 5);
  log.hold();
  Answer asked, queued, after;
  {
    ReadBarrier barrier(log, 10s);
    barrier.wait(0ms, asked.done());
    BOOST_REQUIRE(log.asking());
    barrier.wait(0ms, queued.done());
    std::thread release([&] {
      std::this_thread::sleep_for(50ms);
      log.release();  // the round under way ends; stop() waits for it
    });
    barrier.stop();
    release.join();
    BOOST_TEST(asked.get().ok());
    BOOST_TEST((queued.get().code == Errc::unavailable));
    barrier.wait(0ms, after.done());
    BOOST_TEST((after.get().code == Errc::unavailable));
    BOOST_TEST(after.get().message == "memosd is stopping");
  }
}

// Several shards: a node answers once it holds every shard through the
// log's end (one question for all: they share one stream); it is current
// as of its least current shard; a shard that does not catch up is named.
BOOST_AUTO_TEST_CASE(several_shards_are_one_log_to_the_barrier_held_once_every_shard_holds_it) {
  ModelLog owned, followed;
  owned.own();
  owned.set(30, 30);     // an owner within its lease: its own subject is whole
  followed.set(30, 28);  // a follower two records short
  ReplicaSet shards({&owned, &followed});
  BOOST_TEST(!shards.current_as_of().has_value());  // the follower's is not known
  ReadBarrier barrier(shards, 10s);
  Answer a;
  barrier.wait(0ms, a.done());
  BOOST_REQUIRE(eventually([&] { return followed.asked_for().size() == 1u; }, 10s));
  BOOST_TEST(!a.answered());
  followed.set(30, 30);
  BOOST_TEST(a.get().ok(), a.get().message);
  BOOST_TEST(owned.questions() == 1);     // the stream's end, asked of the first shard
  BOOST_TEST(followed.questions() == 0);  // and only there
  // Every shard's reader was woken before the round waited on the first.
  BOOST_TEST(owned.woken_before_wait() == std::vector<int>{1});
  BOOST_TEST(followed.woken_before_wait() == std::vector<int>{1});
  // Current as of the follower's last wait: the owner's "now" is later.
  const auto as_of = shards.current_as_of();
  BOOST_REQUIRE(as_of.has_value());
  BOOST_TEST((*as_of < ReplicaSet::Clock::now()));
  BOOST_TEST(barrier.current_within(1000ms));

  // A shard that does not catch up within the round: refused, naming it.
  ModelLog first, second;
  first.set(50, 50);
  second.set(50, 40);
  ReplicaSet stuck({&first, &second});
  ReadBarrier slow(stuck, 200ms);
  const Status refused = refused_read(slow);
  BOOST_TEST(refused.message.find("shard 1: behind") != std::string::npos, refused.message);
}
