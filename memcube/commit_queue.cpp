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
    // Records from the log commit apart from the writes sunk to it, each
    // shard's alone; every other job commits in one turn. In the order each
    // shard's jobs first came.
    std::vector<std::deque<WriteJob>> parts;
    for (WriteJob& job : group) {
      auto same = [&](const std::deque<WriteJob>& part) {
        return part.front().from_log == job.from_log && part.front().shard == job.shard;
      };
      auto part = std::find_if(parts.begin(), parts.end(), same);
      if (part == parts.end()) part = parts.emplace(parts.end());
      part->push_back(std::move(job));
    }
    std::vector<std::deque<WriteJob>*> written;
    for (auto& part : parts) {
      if (part.front().from_log) {
        commit_turn({&part}, false);
      } else {
        written.push_back(&part);
      }
    }
    if (!written.empty()) commit_turn(written, true);
  }
}

// A turn's jobs, each shard's a section of them.
struct CommitQueue::Turn {
  struct Section {
    std::uint32_t shard = 0;
    std::size_t first = 0, count = 0;  // its jobs in `jobs`
    ChangeSet changes;                 // recorded afresh by each attempt
    bool sunk = false;                 // the sink got it (`outcome` says how it went)
    Status outcome;
    LogPosition position;
  };
  std::vector<WriteJob*> jobs;
  std::vector<Section> sections;
  std::vector<Status> results;  // one per job
  std::vector<bool> run;        // which jobs an attempt runs
  // The log holds groups of this turn that the store could not commit.
  bool log_ahead = false;
};

void CommitQueue::commit_turn(const std::vector<std::deque<WriteJob>*>& parts, bool sink) {
  Turn turn;
  for (std::deque<WriteJob>* part : parts) {
    const std::uint32_t shard = part->front().shard;
    if (shard >= store_.shards()) {
      // A caller's mistake, not the store's: not fatal.
      const Status none{Errc::conflict, "a write for shard " + std::to_string(shard) +
                                            " in a store of " + std::to_string(store_.shards()) +
                                            " shard(s)"};
      for (WriteJob& job : *part) job.done(none);
      continue;
    }
    Turn::Section& section = turn.sections.emplace_back();
    section.shard = shard;
    section.first = turn.jobs.size();
    section.count = part->size();
    for (WriteJob& job : *part) turn.jobs.push_back(&job);
  }
  if (turn.sections.empty()) {
    if (after_group_) after_group_();
    return;
  }
  turn.results.assign(turn.jobs.size(), Status{});
  turn.run.assign(turn.jobs.size(), true);
  auto& results = turn.results;
  auto& run = turn.run;
  const Status full{Errc::storage_full, "the store is full (store.max_map_size_mb reached)"};
  Status status;
  bool may_grow = true, reserve = false;
  for (;;) {
    status = attempt(turn, sink && change_sink_);
    auto job_full = [&](std::size_t i) { return run[i] && results[i].code == Errc::map_full; };
    bool map_full = status.code == Errc::map_full;
    for (std::size_t i = 0; i < turn.jobs.size(); ++i) map_full = map_full || job_full(i);
    if (!map_full) break;
    Status grown;
    if (may_grow) {
      // Nothing of this attempt is kept (a full map fails the commit's own
      // write too): grow the map and run the whole turn again (jobs are
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
    for (std::size_t i = 0; i < turn.jobs.size(); ++i) {
      bool again = turn.jobs[i]->frees_space && (job_full(i) || !committed);
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
    // Nothing of this turn is durable: every job fails with the commit's
    // error. Fatal when the log holds what the store lost, or the commit
    // failed for another reason than space.
    for (auto& r : results) r = status;
    if (turn.log_ahead || status.code != Errc::storage_full) on_fatal_(status);
  } else {
    // A group the sink refused was not committed.
    for (const Turn::Section& section : turn.sections) {
      if (section.outcome.ok()) continue;
      for (std::size_t i = section.first; i < section.first + section.count; ++i) {
        results[i] = section.outcome;
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    ++groups_;
    jobs_ += turn.jobs.size();
  }
  for (std::size_t i = 0; i < turn.jobs.size(); ++i) turn.jobs[i]->done(results[i]);
  if (after_group_) after_group_();
}

Status CommitQueue::attempt(Turn& turn, bool sinking) {
  std::optional<WriteTxn> txn;
  if (Status s = store_.begin_write(&txn, turn.sections.front().shard); !s.ok()) return s;
  for (Turn::Section& section : turn.sections) {
    section.changes = ChangeSet{};
    section.sunk = false;
    section.outcome = {};
    Status s = txn->nested_for_shard(
        section.shard, sinking ? &section.changes : nullptr, [&](WriteTxn& t) {
          for (std::size_t i = section.first; i < section.first + section.count; ++i) {
            if (turn.run[i]) turn.results[i] = t.nested(turn.jobs[i]->apply);
          }
          // Each group seals its own shard's last id, in its record when it
          // has one (commit() seals only the transaction's own shard).
          if (sinking && section.changes.empty()) return Status{};
          return t.seal();
        });
    if (!s.ok()) return s;
  }
  bool rerun = false;
  for (std::size_t i = 0; i < turn.jobs.size(); ++i) {
    rerun = rerun || (turn.run[i] && turn.results[i].code == Errc::map_full);
  }
  if (!sinking) return txn->commit();
  // The turn runs again in a grown map: the log must get it once.
  if (rerun) return {Errc::map_full, "a job filled the map"};
  std::vector<SunkGroup> groups;
  for (Turn::Section& section : turn.sections) {
    if (section.changes.empty()) continue;
    section.sunk = true;
    groups.push_back(
        {.shard = section.shard, .changes = &section.changes, .outcome = {}, .position = {}});
  }
  if (groups.empty()) return txn->commit();
  change_sink_(groups);
  bool all_held = true;
  std::size_t g = 0;
  for (Turn::Section& section : turn.sections) {
    if (!section.sunk) continue;
    section.outcome = groups[g].outcome;
    section.position = std::move(groups[g].position);
    ++g;
    all_held = all_held && section.outcome.ok();
  }
  Status s;
  if (all_held) {
    for (const Turn::Section& section : turn.sections) {
      if (section.sunk && s.ok()) s = txn->set_log_position(section.shard, section.position);
    }
    if (s.ok()) s = txn->commit();
    if (s.ok()) return s;
    spdlog::warn(
        "committing what the log holds failed ({}): it is applied again as a follower would",
        s.message);
  }
  // The log holds some groups and refused others, or the store could not
  // commit what it holds: the refused groups' changes are in this
  // transaction too, so it goes, and the acknowledged records are applied
  // as they are.
  txn.reset();
  s = hold_acknowledged(turn);
  if (!s.ok()) {
    // Not map_full, which would run the turn again and append it twice.
    turn.log_ahead = true;
    return {Errc::io, "the log holds this node's records that its store could not commit (" +
                          s.message +
                          "): memosd reads them back from the log when it starts again"};
  }
  return {};
}

Status CommitQueue::hold_acknowledged(Turn& turn) {
  std::vector<const Turn::Section*> held;
  for (const Turn::Section& section : turn.sections) {
    if (section.sunk && section.outcome.ok()) held.push_back(&section);
  }
  if (held.empty()) return {};
  for (bool grown_once = false;; grown_once = true) {
    std::optional<WriteTxn> txn;
    Status s = store_.begin_write(&txn, held.front()->shard);
    for (const Turn::Section* section : held) {
      if (!s.ok()) break;
      s = txn->nested_for_shard(section->shard, nullptr, [&](WriteTxn& t) {
        if (Status applied = t.apply_changes(section->changes); !applied.ok()) return applied;
        return t.seal();
      });
      if (s.ok()) s = txn->set_log_position(section->shard, section->position);
    }
    if (s.ok()) s = txn->commit();
    if (s.code != Errc::map_full || grown_once) return s;
    txn.reset();
    // The reserve too, as for a write that frees space: what the quorum
    // acknowledged has to be held, or memosd stops.
    Status grown;
    if (!store_.grow_map(&grown) && !store_.grow_map_into_reserve(&grown)) return s;
  }
}

}  // namespace memos::store
