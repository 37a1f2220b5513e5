// jobs.h — memosd's background jobs (a distillation today): what each is
// doing, for `memctl job ls|show`, and its cancellation.
//
// Jobs live in memory only. What a job makes is written when it is done,
// in one transaction (the item path), never piece by piece, so a memosd
// that stops or crashes mid-job leaves nothing half made: the job is gone
// with the process, and the client runs it again.
//
// Thread-safe: handlers read it on workers, the executor lane advances
// jobs, the loop cancels them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/status.h"

namespace memos::kernel {

enum class JobState { queued, running, done, failed, cancelled };
const char* to_string(JobState state);

struct Job {
  std::uint64_t id = 0;
  std::uint32_t tenant = 0;
  std::string kind;  // "distill"
  std::string cube, name;
  JobState state = JobState::queued;
  std::uint32_t done = 0, total = 0;  // steps
  float loss = 0;
  std::string message;  // failed: why; done: what it wrote
  std::int64_t created_at_ms = 0, started_at_ms = 0, finished_at_ms = 0;
  std::uint64_t item = 0;  // done: the item written, and its version
  std::uint32_t version = 0;
  std::uint32_t memories = 0, tokens = 0;
  bool cancel_requested = false;

  bool finished() const {
    return state == JobState::done || state == JobState::failed || state == JobState::cancelled;
  }
};

class JobTable {
 public:
  // Finished jobs kept per tenant (the oldest go first), and jobs not
  // finished a tenant may have at once.
  static constexpr std::size_t kKeptFinished = 32;
  static constexpr std::size_t kMaxOpenPerTenant = 4;

  // Adds `job` (queued, created now) and returns its id. Errors: busy
  // (the tenant has kMaxOpenPerTenant open; retry when one finishes).
  Status add(Job job, std::uint64_t* id);
  // Runs `change` on the job under the lock, unless it is gone. A change
  // that finishes it stamps finished_at_ms.
  void update(std::uint64_t id, const std::function<void(Job&)>& change);
  std::vector<Job> list(std::uint32_t tenant) const;
  // Errors: not_found (no such job of the tenant's).
  Status get(std::uint32_t tenant, std::uint64_t id, Job* out) const;
  // Asks the job to stop: a queued one is cancelled at once, a running
  // one at its next step. Errors: not_found, conflict (it is finished).
  Status cancel(std::uint32_t tenant, std::uint64_t id, Job* out);
  bool cancel_requested(std::uint64_t id) const;

  // Jobs that need a resource held one at a time (the executor runs one
  // distillation) take turns, in the order they ask: `start` runs at once
  // if no job holds the turn, else when the jobs ahead of it finish (or
  // are cancelled). A job holds the turn until it finishes. `start` runs
  // without the lock, on the thread that freed the turn.
  void take_turn(std::uint64_t id, std::function<void()> start);

 private:
  struct Turn {
    std::uint64_t id = 0;
    std::function<void()> start;
  };
  void trim(std::uint32_t tenant);  // with mutex_ held
  // With mutex_ held: `id` leaves the line; returns the start of the job
  // that now holds the turn, if it changed hands.
  std::function<void()> leave_line(std::uint64_t id);

  mutable std::mutex mutex_;
  std::map<std::uint64_t, Job> jobs_;  // by id: creation order
  std::uint64_t next_id_ = 1;
  std::deque<Turn> line_;  // the front one holds the turn (and has started)
};

}  // namespace memos::kernel
