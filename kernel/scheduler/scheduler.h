// scheduler.h — the memory scheduler (memos(7), "Scheduling"): it moves
// memory between the tiers the way a pager moves pages, with MemOS's
// working memory and MemoryBank's forgetting curve as its anchors.
//
//   strength     every use of a memory is counted through the access log
//                (recalls.h), in batches; its retention decays with time
//                (strength.h).
//   working set  each cube with chats gets one: its best memories by
//                retention times importance, within working_set_tokens, in
//                a stable order (working_set_selection.h). A chat lays it
//                first in its context, so the stored state of its block is
//                restored and only the rest is decoded.
//   prefill      when a set changes, its block's state is prefilled on the
//                executor lane as background work: only when no client
//                chat waits there, within the tenant's activation budget.
//   archive      with forgetting = "archive", a memory whose retention
//                stays below archive_below for archive_after_s is archived
//                (out of default searches, still readable); a read brings
//                it back. The scheduler never deletes anything.
//   eviction     activation states go by utility (activation_utility.h);
//                the tier reports each eviction here.
//
// A pass (run_pass) reads every cube of the tenants in scope, archives and
// selects, writes the changed sets and queues the prefills. Passes run on
// the worker pool, one at a time (a timer, scheduler.interval_s, and
// `memctl sched run`). A tenant's settings are its policy's
// (recalls.h, settings_for), and a pass changes only a tenant's own memory
// by what that tenant did: another tenant's reads of a shared cube are not
// recalls.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel/scheduler/decision_log.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel::scheduler {

// The session a version written by the scheduler names (archive, restore):
// how a read tells an archived memory the scheduler may bring back from
// one a user archived.
inline constexpr const char* kSchedulerSession = "memosd-scheduler";

struct PassSummary {
  std::int64_t at_ms = 0;  // when it started
  double took_ms = 0;
  std::uint32_t cubes = 0;  // looked at
  std::uint32_t working_sets = 0;
  std::uint32_t promoted = 0;  // memories that joined a working set
  std::uint32_t demoted = 0;
  std::uint32_t archived = 0;
  std::uint32_t prefills_queued = 0;
  std::uint32_t distillations = 0;  // jobs started (parametric.distill_after)
};

// One cube's working set as `memctl sched status` shows it.
struct CubeSchedule {
  store::WorkingSet set;
  bool prefill_pending = false;
  // Chats over the cube since memosd started, those that restored a state,
  // and their tokens: what the set buys.
  std::uint64_t chats = 0;
  std::uint64_t restores = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t reused_tokens = 0;
};

class Scheduler {
 public:
  explicit Scheduler(std::size_t log_entries) : log_(log_entries) {}
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The working sets the store holds, replacing those in memory: at start,
  // and when a cluster node becomes the owner (it has applied other nodes'
  // sets to its store; cluster_node.h). Errors: the store's.
  Status load(const store::Store& store);

  // The cube's working set, if it has one.
  std::optional<store::WorkingSet> working_set(store::CubeId cube) const;

  // A chat of the cube's owner over it has been answered: counts what it
  // reused, and gives the cube a working set (its first chat asks for a
  // pass at once, so the second one already finds the set).
  void note_chat(const Services& s, const store::Cube& cube, std::uint32_t prompt_tokens,
                 std::uint32_t reused_tokens);

  // Runs a pass now on the calling thread (a worker), over every tenant,
  // or over `only`'s cubes. Waits for a pass in progress first.
  // Errors: the store's; a commit's.
  Status run_pass(const Services& s, std::optional<store::TenantId> only, PassSummary* out);
  // Runs a pass on a worker unless one is running or queued.
  void request_pass(const Services& s);

  // A read of an item the scheduler archived: makes it active again
  // (asynchronously; the reader sees it as it was).
  void restore(const Services& s, const store::Cube& cube, store::ItemId item);
  // The activation tier evicted one of the tenant's states.
  void note_eviction(const store::Activation& gone, double utility);

  // The tenant's cubes' working sets (one cube's, when `cube` is not 0),
  // by cube id.
  std::vector<CubeSchedule> schedules(store::TenantId tenant, store::CubeId cube) const;
  std::vector<Decision> decisions(store::TenantId tenant, store::CubeId cube,
                                  std::size_t max) const {
    return log_.list(tenant, cube, max);
  }
  std::optional<PassSummary> last_pass() const;
  std::uint64_t passes() const;
  // Its decisions since memosd started, by Action.
  std::array<std::uint64_t, kActions> decision_counts() const { return log_.counts(); }

 private:
  struct CubeStats {
    std::uint64_t chats = 0, restores = 0, prompt_tokens = 0, reused_tokens = 0;
  };
  // One cube of a pass: archive, then select. Errors: the store's.
  Status schedule_cube(const Services& s, const store::Cube& cube, PassSummary* out);
  Status archive_cold(const Services& s, const store::Cube& cube,
                      const policies::SchedulerSettings& settings, std::int64_t now,
                      PassSummary* out);
  Status select(const Services& s, const store::Cube& cube,
                const policies::SchedulerSettings& settings, std::int64_t now, PassSummary* out);
  // Queues the prefill of the set's block on the executor lane
  // (background), unless one is queued.
  bool queue_prefill(const Services& s, const store::Cube& cube, std::uint64_t generation);
  void prefill(const Services& s, const store::Cube& cube, std::uint64_t generation);
  // Measures the set's estimate against its block's real tokens (set by
  // prefill) and updates the cube's calibration.
  void measure_estimate(const Services& s, store::CubeId cube, const store::WorkingSet& set);
  // Writes `set` (and keeps it here) unless the set changed meanwhile
  // (another generation). Errors: a commit's.
  Status save(const Services& s, const store::WorkingSet& set, bool require_generation);

  DecisionLog log_;
  std::mutex pass_mutex_;  // one pass at a time
  mutable std::mutex mutex_;
  std::map<store::CubeId, store::WorkingSet> sets_;
  std::set<store::CubeId> chatted_;  // cubes with chats and no set yet
  std::set<store::CubeId> prefilling_;
  std::map<store::CubeId, CubeStats> stats_;
  // Per cube, model tokens per estimated token (calibrate_estimate); in
  // memory only: after a restart the next prefill measures it again.
  std::map<store::CubeId, double> calibration_;
  std::optional<PassSummary> last_pass_;
  std::uint64_t passes_ = 0;
  bool pass_requested_ = false;
};

}  // namespace memos::kernel::scheduler
