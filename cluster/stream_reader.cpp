#include "cluster/stream_reader.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/names.h"
#include "cluster/shard_replica.h"

namespace memos::cluster {

StreamReader::StreamReader(std::string cluster, std::vector<ShardReplica*> shards,
                           NatsConnection& nats, std::chrono::milliseconds poll,
                           std::chrono::milliseconds request_timeout)
    : cluster_(std::move(cluster)),
      stream_(log_stream(cluster_)),
      subjects_(all_shards_filter(cluster_)),
      shards_(std::move(shards)),
      nats_(nats),
      js_(nats, request_timeout),
      poll_(poll) {}

StreamReader::~StreamReader() {
  stop();
}

Status StreamReader::start() {
  // position_ starts at 0: the replicas start unfed (read_through), so the
  // first read's skip_held() moves it to what they hold.
  // Every followed shard's appends wake the reader; polling covers missed
  // wake-ups.
  if (Status s = nats_.subscribe(
          subjects_,
          [this](NatsMessage&& m) {
            if (wakes(m.subject)) read_soon();
          },
          &wake_sid_);
      !s.ok()) {
    return s;
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void StreamReader::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    changed_.notify_all();
  }
  if (wake_sid_) nats_.unsubscribe(wake_sid_);
  wake_sid_ = 0;
  if (thread_.joinable()) thread_.join();
}

bool StreamReader::holds_through(std::uint64_t sequence, Clock::time_point asked_at) const {
  std::lock_guard lock(mutex_);
  return holds_locked(sequence, asked_at);
}

bool StreamReader::holds_locked(std::uint64_t sequence, Clock::time_point asked_at) const {
  return position_ >= sequence || (current_as_of_ && *current_as_of_ >= asked_at);
}

std::uint64_t StreamReader::position() const {
  std::lock_guard lock(mutex_);
  return position_;
}

std::uint64_t StreamReader::messages_read() const {
  std::lock_guard lock(mutex_);
  return messages_read_;
}

StreamReaderCounters StreamReader::counters() const {
  std::lock_guard lock(mutex_);
  return {.followed = messages_read_ - read_back_,
          .read_back = read_back_,
          .stepped_over = stepped_over_};
}

void StreamReader::appended(std::uint64_t sequence) {
  std::lock_guard lock(mutex_);
  if (sequence <= position_) return;  // read back already
  own_.insert(sequence);
  // Forgetting one only makes the reader read it back.
  if (own_.size() > kMaxOwnAppends) own_.erase(own_.begin());
}

void StreamReader::step_over_own_locked() {
  const std::uint64_t before = position_;
  while (!own_.empty() && *own_.begin() <= position_ + 1) {
    if (*own_.begin() == position_ + 1) {
      ++position_;
      ++stepped_over_;
    }
    own_.erase(own_.begin());
  }
  if (position_ != before) changed_.notify_all();
}

bool StreamReader::wakes(const std::string& subject) const {
  std::uint32_t shard = 0;
  if (!shard_of_subject(cluster_, subject, static_cast<std::uint32_t>(shards_.size()), &shard)) {
    return true;
  }
  return !shards_[shard]->owner();
}

std::optional<LogView::Clock::time_point> StreamReader::current_as_of() const {
  std::lock_guard lock(mutex_);
  return current_as_of_;
}

Status StreamReader::log_end(std::uint64_t* sequence) {
  return js_.stream_end(stream_, sequence);
}

void StreamReader::read_soon() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  changed_.notify_all();
}

Status StreamReader::wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                                  std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  auto holds = [&] { return holds_locked(sequence, asked_at); };
  if (!holds()) {
    woken_ = true;  // read now, not at the next poll
    changed_.notify_all();
  }
  ++waiting_;  // the thread reads while anyone waits, fed replicas or not
  changed_.wait_for(lock, timeout, [&] { return holds() || stopping_; });
  --waiting_;
  if (holds()) return {};
  if (stopping_) return {Errc::unavailable, "memosd is stopping"};
  return {Errc::unavailable, "the log ends at record " + std::to_string(sequence) +
                                 " and this node has read it to " + std::to_string(position_) +
                                 " after " + std::to_string(timeout.count()) + " ms"};
}

void StreamReader::skip_held() {
  // A sequence that exists (some replica's tail), lowered to what each fed
  // replica holds through. A replica unfed here (an owner is unfed here) is
  // fed again only once its own read finds nothing more of its subject —
  // after every message up to `through` was in the log — so skipping them
  // loses it nothing.
  std::uint64_t through = 0;
  for (const ShardReplica* r : shards_) through = std::max(through, r->tail());
  for (ShardReplica* r : shards_) through = r->held_through(through);
  std::lock_guard lock(mutex_);
  if (through > position_) {
    position_ = through;
    changed_.notify_all();
  }
  step_over_own_locked();
}

Status StreamReader::read() {
  skip_held();
  for (;;) {
    std::uint64_t after;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return {};
      step_over_own_locked();
      after = position_;
    }
    StoredMessage m;
    const auto asked_at = Clock::now();
    Status s = js_.next_message(stream_, after + 1, subjects_, &m);
    if (s.code == Errc::not_found) {
      // The leader had nothing past what was handed on: every shard this
      // node follows held the whole log then.
      std::lock_guard lock(mutex_);
      if (!current_as_of_ || *current_as_of_ < asked_at) current_as_of_ = asked_at;
      changed_.notify_all();
      return {};
    }
    if (!s.ok()) return s;
    std::uint32_t shard = 0;
    bool own = false;
    if (shard_of_subject(cluster_, m.subject, static_cast<std::uint32_t>(shards_.size()), &shard)) {
      own = shards_[shard]->owner();
      shards_[shard]->take(m);
    } else {
      // Not a shard of this node's count (etcd keeps one count for the
      // cluster): nothing this node could apply.
      spdlog::warn("log message {} has the subject {}, which names no shard of this cluster's {}",
                   m.sequence, m.subject.substr(0, 80), shards_.size());
    }
    std::lock_guard lock(mutex_);
    position_ = m.sequence;
    ++messages_read_;
    read_back_ += own ? 1 : 0;
    changed_.notify_all();
  }
}

void StreamReader::run() {
  // A wake-up comes when an owner appends, but the replica of the log that
  // answers may not hold that record yet: a wake-up that found nothing is
  // followed by reads a few ms apart, doubling, before the thread falls back
  // to polling (as ShardReplica's thread does).
  bool woken = false;
  std::chrono::milliseconds retry{0};
  for (;;) {
    std::uint64_t before;
    bool wanted;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      before = position_;
      wanted = waiting_ > 0;
    }
    // Replicas' locks outside the reader's own (the order ShardReplica
    // takes them in).
    for (std::size_t i = 0; !wanted && i < shards_.size(); ++i) wanted = shards_[i]->fed();
    const Status s = wanted ? read() : Status{};
    trouble_.turn(s);
    std::unique_lock lock(mutex_);
    const bool nothing_new = wanted && s.ok() && position_ == before;
    if (nothing_new && (woken || retry.count() != 0)) {
      retry = retry.count() == 0 ? std::chrono::milliseconds(2) : retry * 2;
      if (retry >= poll_) retry = std::chrono::milliseconds(0);
    } else {
      retry = std::chrono::milliseconds(0);
    }
    changed_.wait_for(lock, retry.count() != 0 ? retry : poll_,
                      [&] { return stopping_ || woken_; });
    woken = woken_;
    woken_ = false;
  }
}

}  // namespace memos::cluster
