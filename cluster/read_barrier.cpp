#include "cluster/read_barrier.h"

#include <string>
#include <utility>

namespace memos::cluster {

using store::Errc;
using store::Status;

ReadBarrier::ReadBarrier(LogView& log, std::chrono::milliseconds timeout)
    : log_(log), timeout_(timeout), thread_([this] { run(); }) {}

ReadBarrier::~ReadBarrier() {
  stop();
}

void ReadBarrier::stop() {
  std::vector<Done> left;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    // The thread's last round answered what it took; what came since is
    // answered here (wait() adds nothing once stopping_ is set).
    std::lock_guard lock(mutex_);
    left.swap(waiting_);
    counters_.failed += left.size();
  }
  for (Done& done : left) done({Errc::unavailable, "memosd is stopping"});
}

bool ReadBarrier::current_within(std::chrono::milliseconds max_staleness) {
  const auto now = LogView::Clock::now();
  auto as_of = log_.current_as_of();
  if (!as_of || now - *as_of > max_staleness) return false;
  std::lock_guard lock(mutex_);
  ++counters_.current;
  return true;
}

void ReadBarrier::wait(std::chrono::milliseconds max_staleness, Done done) {
  if (current_within(max_staleness)) return done({});
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      waiting_.push_back(std::move(done));
      wake_.notify_one();
      return;
    }
    ++counters_.failed;
  }
  done({Errc::unavailable, "memosd is stopping"});
}

ReadBarrierCounters ReadBarrier::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void ReadBarrier::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    if (stopping_) return;
    // Every read in this round arrived before the question is asked, so the
    // log's end then covers every write acknowledged before each arrived.
    std::vector<Done> round;
    round.swap(waiting_);
    ++counters_.rounds;
    lock.unlock();
    const auto asked_at = LogView::Clock::now();
    std::uint64_t end = 0;
    Status s = log_.log_end(&end);
    if (s.ok()) s = log_.wait_through(end, asked_at, timeout_);
    if (!s.ok()) s = refusal(s);
    for (Done& done : round) done(s);
    lock.lock();
    (s.ok() ? counters_.waited : counters_.failed) += round.size();
  }
}

Status ReadBarrier::refusal(const Status& s) const {
  if (s.code == Errc::corrupt) {
    // Its store is a true prefix of the log, but it will never be current.
    return {Errc::unavailable, "this node stopped applying the log (" + s.message +
                                   "): read from another node, or accept staleness (memctl "
                                   "--stale MS)"};
  }
  std::string stale = "its store's staleness is not known";
  if (auto as_of = log_.current_as_of()) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(LogView::Clock::now() - *as_of)
            .count();
    stale = "its store held the whole log " + std::to_string(ms) + " ms ago";
  }
  return {Errc::unavailable, "this node could not make sure it holds every acknowledged write (" +
                                 s.message + "); " + stale +
                                 ": read from the owner, or accept that much staleness "
                                 "(memctl --stale MS)"};
}

}  // namespace memos::cluster
