// services.h — what the request handlers share: the daemon's parts, by
// reference, assembled once by Daemon::build_services() (daemon.h) and
// outliving every handler. Nothing here is per request: that is
// RequestContext (handlers/request_context.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"
#include "memcube/thread_affinity.h"

namespace memos::kernel {

// Runs a closure on a worker thread (never the loop). Callable from any
// thread; from off the loop it is queued through the loop, a turn later.
using RunOnWorker = std::function<void(std::function<void()>)>;

struct DaemonStats {
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<std::uint32_t> connections{0};
  std::atomic<std::uint64_t> requests_served{0};
  std::string socket_path;
  std::string data_dir;
};

class AccessLog;
class AnswerModels;
class ClusterNode;
class ActivationTier;
class IndexSet;
class InlineReads;
class PluginExecutor;
class PluginManager;
class PluginRouter;
class RequestMetrics;
class RouterLedger;
class JobTable;
class SerialLane;
class TenantRegistry;
namespace scheduler {
class Scheduler;
}

struct Services {
  const Config& config;
  store::Store& store;
  store::CommitQueue& commits;
  IndexSet& indexes;
  DaemonStats& stats;
  AccessLog& access;
  PluginManager& plugins;
  // The tenant policies and who each peer is (policy requests read and
  // reload them; every request carries its peer's).
  TenantRegistry& tenants;
  RunOnWorker run_on_worker;
  ActivationTier& activations;
  std::shared_ptr<PluginExecutor> executor;  // null: no executor configured
  // The one thread that calls the model executor (chat, prefill, and the
  // scheduler's background prefills after them): calls run in order, never
  // on the worker pool.
  SerialLane& executor_lane;
  // Memory strength, working sets, background prefill and archiving
  // (scheduler/scheduler.h).
  scheduler::Scheduler& scheduler;
  // Bound to the loop thread before any request: what "loop thread only"
  // asserts against (MEMOS_ASSERT_ON_THREAD, debug builds).
  const ThreadAffinity& loop_thread;
  // Where cheap reads (get, status) run: on the loop unless a slow one paused
  // that (inline_reads.h). Null: always on a worker.
  InlineReads* inline_reads = nullptr;
  // Payload files (activation states, adapters); null where a harness has
  // none, which refuses the parametric tier's uploads and exports.
  store::BlobStore* blobs = nullptr;
  // Background jobs (jobs.h: distillations); null where a harness has none,
  // which refuses them.
  JobTable* jobs = nullptr;
  // Chooses the tiers of budget "auto" (plugins.router); null: none loaded
  // (router_missing says why), and "auto" runs at routing.default_tier.
  std::shared_ptr<PluginRouter> router{};
  std::string router_missing{};
  // What routed queries have spent of each tenant's day (policy [router]
  // tokens_per_day); null where a harness has none: nothing is counted.
  RouterLedger* router_ledger = nullptr;
  // The executor a routed chat's answer module runs at each tier
  // (executor.models); null where a harness has none: `executor` answers.
  const AnswerModels* answer_models = nullptr;
  // Requests answered, by operation and code, and their latency (memctl
  // metrics); null where a harness has none: nothing is counted.
  RequestMetrics* request_metrics = nullptr;
  // Cluster mode: this node's replica of the store (cluster_node.h); null:
  // one node, which always writes.
  ClusterNode* cluster = nullptr;

  // Success when this node writes the store now (in a cluster: owns any
  // shard), else why not (a follower's answer names the owner).
  Status writable() const;
  // Whether this node writes the rows of tenant `owner` now (owns its
  // shard); always on one node.
  bool writes_for(store::TenantId owner) const;
};

}  // namespace memos::kernel
