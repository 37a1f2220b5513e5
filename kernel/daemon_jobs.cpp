// daemon_jobs.cpp — the daemon's periodic work, each a PeriodicJob: the
// access-statistics flush, retention, blob garbage collection, index
// snapshots (and, in a cluster, sharing them), the metrics textfile and the
// systemd watchdog ping. Each runs at most once at a time;
// a tick that finds the last run going is skipped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "kernel/daemon.h"
#include "kernel/metrics_report.h"
#include "kernel/systemd.h"

namespace memos::kernel {
namespace {

// How often a cluster node compares its tenant policies with every other
// node's (ClusterNode::check_policies; also after each reload here): one
// question to each node on the roster.
constexpr std::uint64_t kPolicyCheckMs = 30000;

// How often unbuilt cubes are looked at (IndexSet::retry_unbuilt). Cheap while nothing is unbuilt
// (atomic loads); each cube's failed attempts wait 5 s (IndexSet::retry_unbuilt), while a retriever
// whose host just died is reopened within this period.
constexpr std::uint64_t kUnbuiltRetryMs = 1000;

}  // namespace

void Daemon::start_periodic_jobs() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  auto every = [this](std::uint64_t ms, void (Daemon::*step)(PeriodicJob::Running)) {
    periodic_jobs_.push_back(std::make_unique<PeriodicJob>(
        &loop_, ms, [this, step](PeriodicJob::Running run) { (this->*step)(std::move(run)); }));
  };
  // The access flush is started before retention, with the same interval:
  // the two tick in the same loop turn, flush first, as when retention did
  // both. Reads counted go in about once per retention interval.
  every(config_.store.retention_interval_ms, &Daemon::flush_access_log);
  every(config_.store.retention_interval_ms, &Daemon::flush_router_ledger);
  every(config_.store.retention_interval_ms, &Daemon::run_retention);
  every(std::uint64_t{config_.scheduler.interval_s} * 1000, &Daemon::run_scheduler);
  every(std::uint64_t{config_.store.blob_gc_interval_s} * 1000, &Daemon::collect_blob_garbage);
  every(std::uint64_t{config_.search.snapshot_interval_s} * 1000, &Daemon::save_index_snapshots);
  every(kUnbuiltRetryMs, &Daemon::retry_unbuilt_indexes);
  if (cluster_ && config_.cluster.index_share_s > 0)
    every(std::uint64_t{config_.cluster.index_share_s} * 1000, &Daemon::share_index_snapshots);
  if (cluster_ && config_.cluster.store_snapshot_s > 0)
    every(std::uint64_t{config_.cluster.store_snapshot_s} * 1000, &Daemon::compact_cluster_log);
  if (cluster_) every(kPolicyCheckMs, &Daemon::check_cluster_policies);
  if (!config_.metrics.textfile.empty())
    every(std::uint64_t{config_.metrics.interval_s} * 1000, &Daemon::write_metrics_textfile);
  if (std::uint64_t usec = systemd::watchdog_usec()) {
    // Pinged from the loop itself: if the loop stalls, systemd notices.
    periodic_jobs_.push_back(
        std::make_unique<PeriodicJob>(&loop_, std::max<std::uint64_t>(usec / 2000, 1),
                                      [](PeriodicJob::Running) { systemd::notify("WATCHDOG=1"); }));
  }
}

// Reads counted since the last flush go in as one write. The run lasts until
// that write is done, so a writer that falls behind gets one access write at
// a time; the counts wait in the log meanwhile, nothing is lost.
void Daemon::flush_access_log(PeriodicJob::Running run) {
  auto batch = std::make_shared<const std::vector<store::AccessUpdate>>(access_.take());
  if (batch->empty()) return;
  // One write per shard this node owns, each keeping its shard's cubes'
  // counts (WriteTxn::record_access). The uses of what it served from a
  // shard it follows are not counted (docs/scale-out.md, "Any node answers").
  submit_to_written_shards([batch](store::WriteTxn& txn) { return txn.record_access(*batch); },
                           "recording access statistics", run);
}

// The router's spending since the last flush, as one write (and once more
// at a clean stop, daemon.cpp): a budget is kept across restarts.
void Daemon::flush_router_ledger(PeriodicJob::Running run) {
  auto batch = std::make_shared<const std::vector<store::RouterCharge>>(router_ledger_.take());
  if (batch->empty()) return;
  // Each shard's job adds its tenants' (WriteTxn::add_router_usage).
  submit_to_written_shards([batch](store::WriteTxn& txn) { return txn.add_router_usage(*batch); },
                           "recording the router's spending", run);
}

void Daemon::submit_to_written_shards(std::function<store::Status(store::WriteTxn&)> apply,
                                      const char* what, const PeriodicJob::Running& run) {
  for (std::uint32_t shard : shards_written_here()) {
    commits_->submit({.apply = apply,
                      .done =
                          [run, what](const store::Status& s) {
                            if (!s.ok()) spdlog::warn("{}: {}", what, s.message);
                          },
                      .shard = shard});
  }
}

// Retention runs as one bounded write job per run, so a large backlog is
// worked off a batch at a time between client writes.
void Daemon::run_retention(PeriodicJob::Running run) {
  // Each shard's owner runs its shard's; it reaches the others through the log.
  const std::vector<std::uint32_t> shards = shards_written_here();
  if (shards.empty()) return;
  // Each tenant's purge delay as the current policies set it.
  const auto configured = static_cast<std::int64_t>(config_.store.tombstone_retention_s) * 1000;
  auto delay_of = [&](const policies::TenantPolicy& p) {
    return p.retention_purge_delay_s ? static_cast<std::int64_t>(*p.retention_purge_delay_s) * 1000
                                     : configured;
  };
  auto policies = tenants_.current();
  store::PurgeDelays delays(delay_of(*policies->default_policy()));
  for (const auto& p : policies->tenants()) {
    if (p->owner) delays.by_tenant[*p->owner] = delay_of(*p);
  }
  const std::size_t batch = config_.store.retention_batch;
  for (std::uint32_t shard : shards) {
    auto result = std::make_shared<store::RetentionResult>();
    commits_->submit({
        .apply =
            [result, delays, batch](store::WriteTxn& txn) {
              *result = {};
              auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
              return txn.run_retention(now, delays, batch, result.get());
            },
        // On the writer thread; the writer is stopped (drained) before the
        // indexes go.
        .done =
            [this, result, run](const store::Status& s) {
              if (!s.ok()) {
                spdlog::warn("retention: {}", s.message);
                return;
              }
              for (auto [cube, item] : result->expired) indexes_.remove(cube, item);
              if (!result->expired.empty() || result->purged != 0) {
                spdlog::info("retention: {} item(s) expired, {} tombstone(s) purged",
                             result->expired.size(), result->purged);
              }
              if (result->orphaned_states != 0) {
                spdlog::info("retention: {} KV state(s) of removed shared cubes dropped",
                             result->orphaned_states);
              }
            },
        .shard = shard,
    });
  }
}

std::vector<std::uint32_t> Daemon::shards_written_here() const {
  if (!cluster_) return {0};
  return cluster_->owned_shards();
}

// A scheduler pass over every tenant, on a worker (scheduler.h); what it
// did goes to systemd's STATUS line.
void Daemon::run_scheduler(PeriodicJob::Running run) {
  // Working sets and archiving are each shard's owner's (the pass skips the
  // cubes of shards it does not own).
  if (shards_written_here().empty()) return;
  run_on_worker([this, run] {
    scheduler::PassSummary pass;
    if (Status st = scheduler_->run_pass(handler_->services(), std::nullopt, &pass); !st.ok()) {
      spdlog::warn("scheduler pass: {}", st.message);
    }
    systemd::notify(fmt::format(
        "STATUS=ready on {}; scheduler: {} working set(s), {} prefill(s) queued, {} archived, "
        "last pass {:.0f} ms",
        config_.socket, pass.working_sets, executor_lane_.background_pending(), pass.archived,
        pass.took_ms));
  });
}

// Removes blob files no committed record references, on a worker: a read
// snapshot answers "referenced?", and the grace period covers blobs whose
// referencing commit is still on its way.
void Daemon::collect_blob_garbage(PeriodicJob::Running run) {
  run_on_worker([this, run] {
    std::optional<store::ReadTxn> txn;
    store::Status s = store_->begin_read(&txn);
    std::size_t removed = 0;
    if (s.ok()) {
      s = blobs_->collect_garbage(
          [&](const store::BlobId& id) {
            std::uint64_t refs = 0;
            // On a read error keep the file: deleting is the one thing not to get wrong.
            return !txn->blob_refs(id, &refs).ok() || refs > 0;
          },
          std::chrono::seconds(config_.store.blob_gc_grace_s), &removed);
    }
    if (!s.ok()) spdlog::warn("blob garbage collection: {}", s.message);
    if (removed) spdlog::info("blob garbage collection: {} unreferenced blob(s) removed", removed);
  });
}

// Cubes whose indexes could not be built at start (a full disk), and every
// cube of a retriever whose host died, are reopened or rebuilt on the
// indexer thread, in order with the changes it indexes (so none slips
// between the store snapshot the build reads and the collections it
// makes). Cheap when there are none.
void Daemon::retry_unbuilt_indexes(PeriodicJob::Running run) {
  if (!indexes_.has_unbuilt()) return;
  indexes_.run_in_order([this, run] { indexes_.retry_unbuilt(*store_); });
}

// Snapshots the indexes of cubes changed since their last snapshot, on a
// worker, so a restart need not rebuild them.
void Daemon::save_index_snapshots(PeriodicJob::Running run) {
  run_on_worker([this, run] {
    if (std::size_t n = indexes_.save_changed()) spdlog::debug("index snapshots of {} cube(s)", n);
  });
}

void Daemon::share_index_snapshots(PeriodicJob::Running run) {
  run_on_worker([this, run] {
    if (std::size_t n = cluster_->share_indexes()) spdlog::debug("{} index snapshot(s) shared", n);
  });
}

// The run lasts until the snapshot is published and the log purged, so a
// slow one is never run twice at once.
void Daemon::compact_cluster_log(PeriodicJob::Running run) {
  run_on_worker([this, run] { cluster_->compact_log(); });
}

void Daemon::check_cluster_policies(PeriodicJob::Running run) {
  run_on_worker([this, run] { cluster_->check_policies(ClusterNode::kPolicyCheckTimeout); });
}

// The metrics (memctl metrics' text) into metrics.textfile: written beside
// it and renamed over it, so node_exporter never reads half a file. A
// failure is logged; the next interval tries again.
void Daemon::write_metrics_textfile(PeriodicJob::Running run) {
  run_on_worker([this, run] {
    const std::string& path = config_.metrics.textfile;
    std::string text;
    if (Status st = metrics_text(handler_->services(), &text); !st.ok()) {
      spdlog::warn("metrics.textfile: {}", st.message);
      return;
    }
    const std::string temporary = path + ".tmp";
    std::error_code ec;
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      if (!out) {
        spdlog::warn("metrics.textfile: cannot write {}: {}", temporary, std::strerror(errno));
        return;
      }
    }
    std::filesystem::rename(temporary, path, ec);
    if (ec) spdlog::warn("metrics.textfile: cannot replace {}: {}", path, ec.message());
  });
}

}  // namespace memos::kernel
