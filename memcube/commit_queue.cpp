#include "memcube/commit_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace memos::store {

CommitQueue::CommitQueue(Store& store, std::function<void(const Status&)> on_fatal,
                         bool group_commit)
    : store_(store),
      on_fatal_(std::move(on_fatal)),
      group_commit_(group_commit),
      thread_([this] { run(); }) {}

CommitQueue::~CommitQueue() {
  stop();
}

void CommitQueue::submit(WriteJob job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      wake_.notify_one();
      return;
    }
  }
  job.done(Status{Errc::unavailable, "store is closing"});
}

Status CommitQueue::submit_and_wait(WriteJob job) {
  // The promise lives on this stack: the wait below outlasts `done`.
  std::promise<Status> committed;
  auto result = committed.get_future();
  job.done = [&committed, done = std::move(job.done)](const Status& s) {
    if (done) done(s);
    committed.set_value(s);
  };
  submit(std::move(job));
  return result.get();
}

void CommitQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

std::size_t CommitQueue::groups_committed() const {
  std::lock_guard lock(mutex_);
  return groups_;
}

std::size_t CommitQueue::jobs_committed() const {
  std::lock_guard lock(mutex_);
  return jobs_;
}

void CommitQueue::run() {
  // This thread is the store's writer while it runs (Store::begin_write and
  // grow_map assert it). Unbound again when it ends, so that whoever writes
  // after stop() (a test, a shutdown step) may do so from its own thread.
  store_.bind_writer_thread();
  struct Unbind {
    Store& store;
    ~Unbind() { store.unbind_writer_thread(); }
  } unbind{store_};
  for (;;) {
    std::deque<WriteJob> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      if (group_commit_) {
        group.swap(queue_);
      } else {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Records from the log commit apart from the writes sunk to it, and
    // each shard's apart from every other's; in the order each first came.
    std::vector<std::deque<WriteJob>> parts;
    for (WriteJob& job : group) {
      auto same = [&](const std::deque<WriteJob>& part) {
        return part.front().from_log == job.from_log && part.front().shard == job.shard;
      };
      auto part = std::find_if(parts.begin(), parts.end(), same);
      if (part == parts.end()) part = parts.emplace(parts.end());
      part->push_back(std::move(job));
    }
    std::stable_partition(parts.begin(), parts.end(),
                          [](const std::deque<WriteJob>& part) { return part.front().from_log; });
    for (auto& part : parts) commit_group(part, !part.front().from_log);
  }
}

void CommitQueue::commit_group(std::deque<WriteJob>& group, bool sink) {
  if (group.front().shard >= store_.shards()) {
    // A caller's mistake, not the store's: no transaction, and not fatal.
    const Status none{Errc::conflict, "a write for shard " + std::to_string(group.front().shard) +
                                          " in a store of " + std::to_string(store_.shards()) +
                                          " shard(s)"};
    for (WriteJob& job : group) job.done(none);
    if (after_group_) after_group_();
    return;
  }
  std::vector<Status> results(group.size());
  const Status full{Errc::storage_full, "the store is full (store.max_map_size_mb reached)"};
  // Which jobs an attempt runs: all of them, until the reserve is used.
  std::vector<bool> run(group.size(), true);
  Status status;
  bool may_grow = true, reserve = false, sink_refused = false;
  for (;;) {
    std::optional<WriteTxn> txn;
    ChangeSet changes;  // each attempt records afresh
    status = store_.begin_write(&txn, group.front().shard);
    if (status.ok()) {
      const bool sinking = sink && change_sink_;
      if (sinking) txn->record_changes(&changes);
      for (std::size_t i = 0; i < group.size(); ++i) {
        if (run[i]) results[i] = txn->nested(group[i].apply);
      }
      bool rerun = false;
      for (std::size_t i = 0; i < group.size(); ++i) {
        rerun = rerun || (run[i] && results[i].code == Errc::map_full);
      }
      if (sinking && rerun) {
        // The group runs again in a grown map: the log must get it once.
        txn->abort();
        status = {Errc::map_full, "a job filled the map"};
      } else if (sinking && !changes.empty()) {
        status = txn->seal();
        if (status.ok()) {
          status = change_sink_(*txn, changes);
          sink_refused = !status.ok();
        }
        if (!status.ok()) txn->abort();
      }
      if (status.ok()) status = txn->commit();
    }
    auto job_full = [&](std::size_t i) { return run[i] && results[i].code == Errc::map_full; };
    bool map_full = status.code == Errc::map_full;
    for (std::size_t i = 0; i < group.size(); ++i) map_full = map_full || job_full(i);
    if (!map_full) break;
    txn.reset();
    Status grown;
    if (may_grow) {
      // Nothing of this attempt is kept (a full map fails the commit's own
      // write too): grow the map and run the whole group again (jobs are
      // written to be re-run). If the map cannot grow, run it once more so
      // that the jobs that fit still commit.
      may_grow = store_.grow_map(&grown);
      if (may_grow) {
        spdlog::info("store map grown to {} MiB", store_.map_size() >> 20);
      } else if (!grown.ok()) {
        spdlog::error("{}", grown.message);
      }
      continue;
    }
    // At the limit: the jobs that free space and did not fit run once more,
    // alone, in the map's reserve. What the last attempt committed stays.
    const bool committed = status.ok();
    bool freeing = false;
    for (std::size_t i = 0; i < group.size(); ++i) {
      bool again = group[i].frees_space && (job_full(i) || !committed);
      if (!again && !committed) results[i] = full;
      run[i] = again;
      freeing = freeing || again;
    }
    if (reserve || !freeing || !store_.grow_map_into_reserve(&grown)) break;
    reserve = true;
    spdlog::warn(
        "the store is full at store.max_map_size_mb: the map grows into its reserve, to {} MiB, "
        "for a write that frees space",
        store_.map_size() >> 20);
  }
  if (status.code == Errc::map_full) status = full;
  for (auto& r : results) {
    if (r.code == Errc::map_full) r = full;
  }
  if (!status.ok()) {
    // Nothing of this group is durable: every job fails with the commit's error.
    for (auto& r : results) r = status;
    if (status.code != Errc::storage_full && !sink_refused) on_fatal_(status);
  }
  {
    std::lock_guard lock(mutex_);
    ++groups_;
    jobs_ += group.size();
  }
  for (std::size_t i = 0; i < group.size(); ++i) group[i].done(results[i]);
  if (after_group_) after_group_();
}

}  // namespace memos::store
