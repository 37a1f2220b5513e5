// commit_queue.h — the single writer thread and its group commit.
//
// Writes from all connections are queued here. The writer thread takes every
// job queued since its last turn and runs each in its own nested transaction
// (so one failing job does not undo the others), each shard's jobs inside a
// nested transaction of that shard's (its group, which becomes its record of
// the log in a cluster), all in one write transaction; it commits once (one
// fsync per turn, whatever the shards), and only then calls each job's
// `done` with its status. A job's `done` therefore runs after its changes are
// durable, or with an error if they are not. Records a replica applies from
// the log (from_log) commit apart, each shard's alone, before the turn.
//
// Errors passed to `done`: whatever the job returned; storage_full when the
// map or disk is full (retryable; a job that frees space gets the map's
// reserve first); the change sink's error when it refused the group (see
// set_change_sink); io when the commit itself failed, or the store could not
// commit records the log acknowledged, in which case `on_fatal` is called
// first: by the durability contract memosd then exits.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "memcube/store.h"

namespace memos::store {

struct WriteJob {
  // Runs on the writer thread inside a nested transaction.
  std::function<Status(WriteTxn&)> apply;
  // Runs on the writer thread after the group's commit (or failure).
  std::function<void(const Status&)> done;
  // The job frees space (removes a cube): on a store full at
  // max_map_size_bytes it is run again alone with the map grown into its
  // reserve (Store::grow_map_into_reserve), so that space can always be
  // given back.
  bool frees_space = false;
  // The job applies the replication log (WriteTxn::apply_changes): it is
  // committed in a transaction of its own, never handed to the change sink
  // (the log already has it), and a sink's refusal never fails it.
  bool from_log = false;
  // The shard whose rows the job writes (WriteTxn::nested_for_shard; the
  // shard of the owner of the cube it writes, docs/scale-out.md). Jobs of
  // different shards never share a group: each shard's group is appended to
  // its own log by its own owner, and one shard's refusal does not undo
  // another's commit. A shard the store lacks fails the job with conflict.
  std::uint32_t shard = 0;
};

// One shard's group of a commit turn, as the change sink gets it.
struct SunkGroup {
  std::uint32_t shard = 0;
  const ChangeSet* changes = nullptr;  // every row the group changed, sealed
  // The sink sets, for each group: ok and where the log holds it, or why the
  // log does not hold it (the group is then not committed and its jobs fail
  // with this, which is not fatal).
  Status outcome;
  LogPosition position;
};

class CommitQueue {
 public:
  // `on_fatal` is called on the writer thread when a commit fails with an I/O
  // error (anything but storage_full). With `group_commit` false every job
  // gets its own transaction and fsync (the baseline group commit beats; also
  // a way to isolate a misbehaving job in a diagnosis).
  CommitQueue(Store& store, std::function<void(const Status&)> on_fatal, bool group_commit = true);
  ~CommitQueue();  // drains: every queued job is committed and completed
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Thread-safe. Jobs submitted after stop() complete at once with
  // Errc::unavailable.
  void submit(WriteJob job);
  // Submits `job` and waits until it is committed or failed: returns the
  // status its `done` got, after that `done` (if any) ran on the writer
  // thread — so what a job leaves for the writer thread alone to finish is
  // finished when the wait ends. Never call it on the writer thread (from a
  // job, a `done`, the sink or after_group): it would wait on itself.
  Status submit_and_wait(WriteJob job);
  // Runs on the writer thread after the `done` of every job of a group (so
  // work the jobs left can be done once per group). Set before submitting.
  void set_after_group(std::function<void()> after_group) { after_group_ = std::move(after_group); }
  // Replication (docs/scale-out.md): with a sink set, each shard's group
  // records the rows it changes (change_set.h), and the sink gets every group
  // of a turn at once, after the jobs ran and before the commit — where a
  // cluster appends them to its log, all in flight together, and says for
  // each where the log holds it (SunkGroup). A group whose jobs changed
  // nothing is not sunk, nor are jobs from_log. The turn commits the groups
  // the log holds, with their log positions; a group the sink refused is not
  // committed and its jobs fail with the refusal, which is not fatal (the
  // store is intact). When some were refused, or the commit failed after the
  // log took the groups, the store holds the acknowledged ones as a follower
  // would: a transaction applying their records alone. If even that fails,
  // the log is ahead of the store: `on_fatal` (a restarted node reads the
  // records back). Runs on the writer thread; set before submitting.
  using ChangeSink = std::function<void(std::vector<SunkGroup>& groups)>;
  void set_change_sink(ChangeSink sink) { change_sink_ = std::move(sink); }
  // Commits what is queued, then ends the writer thread. Idempotent.
  void stop();

  // Statistics (approximate, thread-safe reads).
  std::size_t groups_committed() const;
  std::size_t jobs_committed() const;

 private:
  struct Turn;
  void run();
  // Commits `parts` (each one shard's jobs) in one transaction. `sink`:
  // whether the change sink (if any) gets their groups.
  void commit_turn(const std::vector<std::deque<WriteJob>*>& parts, bool sink);
  // One try of the turn's transaction. Errors: map_full (the turn may run
  // again in a grown map: nothing of it is in the log), the store's.
  Status attempt(Turn& turn, bool sinking);
  // Commits the records of the turn's groups the log acknowledged, as a
  // follower applies them. Errors: the store's.
  Status hold_acknowledged(Turn& turn);

  Store& store_;
  std::function<void(const Status&)> on_fatal_;
  std::function<void()> after_group_;
  ChangeSink change_sink_;
  bool group_commit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<WriteJob> queue_;
  bool stopping_ = false;
  std::size_t groups_ = 0;
  std::size_t jobs_ = 0;
  std::thread thread_;
};

}  // namespace memos::store
