#include "kernel/metrics_report.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "kernel/activation_tier.h"
#include "kernel/cluster_node.h"
#include "kernel/index_set.h"
#include "kernel/plugin_manager.h"
#include "kernel/prometheus_text.h"
#include "kernel/request_metrics.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/serial_lane.h"

namespace memos::kernel {
namespace {

struct TenantFigures {
  store::TenantUsage usage;
  store::ActivationUsage activations;
};

Status tenant_figures(const Services& s, std::map<store::TenantId, TenantFigures>* out) {
  std::optional<store::ReadTxn> txn;
  if (store::Status st = s.store.begin_read(&txn); !st.ok()) return Status::from(st);
  store::Status st =
      txn->for_each_tenant_usage([out](store::TenantId tenant, const store::TenantUsage& usage) {
        (*out)[tenant].usage = usage;
      });
  for (auto& [tenant, figures] : *out) {
    if (!st.ok()) break;
    st = txn->activation_usage(tenant, &figures.activations);
  }
  return Status::from(st);
}

void write_tenants(const std::map<store::TenantId, TenantFigures>& tenants, PrometheusText* out) {
  struct Gauge {
    const char* name;
    const char* help;
    std::uint64_t (*value)(const TenantFigures&);
  };
  const Gauge gauges[] = {
      {"memosd_tenant_cubes", "Cubes a tenant (by uid) owns.",
       [](const TenantFigures& f) { return f.usage.cubes; }},
      {"memosd_tenant_items", "Live plaintext and parametric memories a tenant holds.",
       [](const TenantFigures& f) { return f.usage.items; }},
      {"memosd_tenant_text_bytes", "Bytes of a tenant's memories' texts.",
       [](const TenantFigures& f) { return f.usage.text_bytes; }},
      {"memosd_tenant_param_bytes", "Bytes of a tenant's adapters (the parametric tier).",
       [](const TenantFigures& f) { return f.usage.param_bytes; }},
      {"memosd_tenant_activations", "Stored KV states of a tenant (the activation tier).",
       [](const TenantFigures& f) { return f.activations.count; }},
      {"memosd_tenant_activation_bytes", "Bytes of a tenant's stored KV states.",
       [](const TenantFigures& f) { return f.activations.bytes; }},
  };
  for (const Gauge& g : gauges) {
    out->family(g.name, "gauge", g.help);
    for (const auto& [tenant, figures] : tenants) {
      const std::string uid = std::to_string(tenant);
      out->sample(g.name, {{"tenant", uid}}, static_cast<double>(g.value(figures)));
    }
  }
  std::uint64_t blob_bytes = 0;
  for (const auto& [tenant, figures] : tenants)
    blob_bytes += figures.usage.param_bytes + figures.activations.bytes;
  out->family("memosd_blob_bytes", "gauge",
              "Bytes of the blobs the store references: adapters and KV states.");
  out->sample("memosd_blob_bytes", static_cast<double>(blob_bytes));
}

void write_plugins(const Services& s, PrometheusText* out) {
  const auto plugins = s.plugins.states();
  out->family("memosd_plugin_loaded", "gauge",
              "1 for a plugin in use, 0 for one listed or failed; health as it reports it.");
  for (const auto& p : plugins) {
    const bool loaded = p.state == PluginState::loaded;
    out->sample("memosd_plugin_loaded",
                {{"plugin", p.manifest.name},
                 {"state", to_string(p.state)},
                 {"health", loaded ? std::string_view(p.health) : std::string_view("")}},
                loaded ? 1 : 0);
  }
  // One sample a plugin each, by the table (as write_tenants).
  using PluginRecordView = decltype(plugins)::value_type;
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const PluginRecordView&);
  };
  const Family families[] = {
      {"memosd_plugin_deaths_total", "counter",
       "Deaths of a plugin's isolated hosts (each restarts on its next call), of those in use.",
       [](const PluginRecordView& p) { return static_cast<double>(p.deaths); }},
      {"memosd_plugin_faults_total", "counter",
       "Of those deaths, the ones the plugin brought on itself (a crash, an exit, a hang "
       "ended).",
       [](const PluginRecordView& p) { return static_cast<double>(p.faults); }},
      {"memosd_plugin_quarantined", "gauge",
       "1 while a plugin is quarantined after crashing too often (memctl plugin reload lifts "
       "it).",
       [](const PluginRecordView& p) { return p.health.rfind("quarantined", 0) == 0 ? 1.0 : 0.0; }},
  };
  for (const Family& f : families) {
    out->family(f.name, f.type, f.help);
    for (const auto& p : plugins) out->sample(f.name, {{"plugin", p.manifest.name}}, f.value(p));
  }
}

// Cluster mode: this node's part (memos-cluster(7)), from what it holds in
// memory; nothing asks the engines during a scrape.
void write_cluster(const Services& s, PrometheusText* out) {
  std::vector<cluster::ReplicaState> replicas;
  cluster::BucketCounters bucket;
  PrefetchCounters prefetch;
  cluster::ReadBarrierCounters reads;
  cluster::ForwardingCounters forwarding;
  if (!s.cluster || !s.cluster->figures(&replicas, &bucket, &prefetch, &reads, &forwarding)) {
    return;
  }
  // The node's figures over its shards (one stream: the furthest position).
  std::size_t owned = 0, stopped = 0, in_doubt = 0;
  std::uint64_t position = 0, appended = 0, applied = 0, passed_over = 0;
  for (const cluster::ReplicaState& r : replicas) {
    owned += r.owner ? 1 : 0;
    stopped += r.fault.empty() ? 0 : 1;
    in_doubt += r.in_doubt ? 1 : 0;
    position = std::max(position, r.position);
    appended += r.appended;
    applied += r.applied;
    passed_over += r.passed_over;
  }
  out->family("memosd_cluster_owner", "gauge",
              "The shards this node owns and writes (with one shard: 1 while it owns the store).");
  out->sample("memosd_cluster_owner", static_cast<double>(owned));
  out->family("memosd_cluster_stopped", "gauge",
              "The shards whose log this node stopped applying at a record off its chain.");
  out->sample("memosd_cluster_stopped", static_cast<double>(stopped));
  out->family("memosd_cluster_in_doubt", "gauge",
              "The shards whose last append by this node got no answer: it appends nothing more "
              "to them until the log answers for it.");
  out->sample("memosd_cluster_in_doubt", static_cast<double>(in_doubt));
  out->family("memosd_cluster_policies_differ", "gauge",
              "The nodes on the roster whose tenant policies differ from this node's, as last "
              "compared (every 30 s and after each policy reload).");
  out->sample("memosd_cluster_policies_differ", static_cast<double>(s.cluster->policies_differ()));
  out->family("memosd_cluster_log_position", "gauge",
              "The furthest log sequence this node's store holds (compare across nodes for the "
              "lag).");
  out->sample("memosd_cluster_log_position", static_cast<double>(position));
  out->family("memosd_cluster_records_total", "counter",
              "Log records this node appended as an owner, applied as a follower, and passed over "
              "(a record stored twice, or one of two that follow the same record, stored second).");
  out->sample("memosd_cluster_records_total", {{"how", "appended"}}, static_cast<double>(appended));
  out->sample("memosd_cluster_records_total", {{"how", "applied"}}, static_cast<double>(applied));
  out->sample("memosd_cluster_records_total", {{"how", "passed_over"}},
              static_cast<double>(passed_over));
  const cluster::StreamReaderCounters log = s.cluster->log_reads();
  out->family("memosd_cluster_log_messages_total", "counter",
              "Log messages this node's stream reader read for the shards it follows, read back "
              "although it owned their shard, and stepped over as its own appends unread.");
  out->sample("memosd_cluster_log_messages_total", {{"how", "followed"}},
              static_cast<double>(log.followed));
  out->sample("memosd_cluster_log_messages_total", {{"how", "read_back"}},
              static_cast<double>(log.read_back));
  out->sample("memosd_cluster_log_messages_total", {{"how", "stepped_over"}},
              static_cast<double>(log.stepped_over));
  out->family("memosd_blob_bucket_transfers_total", "counter",
              "KV states and adapters this node uploaded to the cluster's bucket and fetched "
              "from it, by result.");
  const std::pair<const char*, const char*> kinds[] = {
      {"upload", "ok"}, {"upload", "failed"}, {"fetch", "ok"}, {"fetch", "failed"}};
  const std::uint64_t counts[] = {bucket.uploads, bucket.upload_failures, bucket.fetches,
                                  bucket.fetch_failures};
  for (std::size_t i = 0; i < 4; ++i) {
    out->sample("memosd_blob_bucket_transfers_total",
                {{"direction", kinds[i].first}, {"result", kinds[i].second}},
                static_cast<double>(counts[i]));
  }
  out->family("memosd_blob_bucket_bytes_total", "counter",
              "Bytes of the transfers above that succeeded.");
  out->sample("memosd_blob_bucket_bytes_total", {{"direction", "upload"}},
              static_cast<double>(bucket.upload_bytes));
  out->sample("memosd_blob_bucket_bytes_total", {{"direction", "fetch"}},
              static_cast<double>(bucket.fetch_bytes));
  out->family("memosd_blob_prefetch_total", "counter",
              "Blobs this follower fetched ahead of their first use (cluster.prefetch_blobs), "
              "failed to, and dropped past its queue's bound.");
  out->sample("memosd_blob_prefetch_total", {{"result", "fetched"}},
              static_cast<double>(prefetch.fetched));
  out->sample("memosd_blob_prefetch_total", {{"result", "failed"}},
              static_cast<double>(prefetch.failed));
  out->sample("memosd_blob_prefetch_total", {{"result", "dropped"}},
              static_cast<double>(prefetch.dropped));
  out->family("memosd_cluster_reads_total", "counter",
              "Reads of the store on this node: served at once (an owner within its lease, or "
              "current within the staleness the client accepts), after the log said where it "
              "ends, and refused.");
  out->sample("memosd_cluster_reads_total", {{"served", "current"}},
              static_cast<double>(reads.current));
  out->sample("memosd_cluster_reads_total", {{"served", "after_barrier"}},
              static_cast<double>(reads.waited));
  out->sample("memosd_cluster_reads_total", {{"served", "refused"}},
              static_cast<double>(reads.failed));
  out->family("memosd_cluster_read_barriers_total", "counter",
              "Times this node asked the log where it ends for the reads waiting then.");
  out->sample("memosd_cluster_read_barriers_total", static_cast<double>(reads.rounds));
  out->family("memosd_cluster_forwarded_writes_total", "counter",
              "Writes this node sent to their shard's owner, by whether the owner answered (an "
              "unanswered one's outcome is unknown: clients retry with their idempotency key).");
  out->sample("memosd_cluster_forwarded_writes_total", {{"result", "answered"}},
              static_cast<double>(forwarding.answered));
  out->sample("memosd_cluster_forwarded_writes_total", {{"result", "unanswered"}},
              static_cast<double>(forwarding.unanswered));
  out->family("memosd_cluster_forwarded_writes_served_total", "counter",
              "Writes other nodes forwarded to this node, as their shard's owner.");
  out->sample("memosd_cluster_forwarded_writes_served_total",
              static_cast<double>(forwarding.served));
  const IndexSharingCounters shared = s.cluster->index_sharing();
  out->family("memosd_cluster_index_snapshots_total", "counter",
              "Index snapshots this node shared through the cluster's index bucket, and those "
              "other nodes shared that it took instead of rebuilding, refused (another cube "
              "version, embedder or language, or a file its retriever would not load) or "
              "failed to fetch, by result.");
  const std::pair<const char*, std::uint64_t> outcomes[] = {
      {"published", shared.published},
      {"publish_failed", shared.publish_failures},
      {"imported", shared.imported},
      {"refused", shared.refused},
      {"fetch_failed", shared.fetch_failures}};
  for (const auto& [result, count] : outcomes) {
    out->sample("memosd_cluster_index_snapshots_total", {{"result", result}},
                static_cast<double>(count));
  }
  const StoreSnapshotCounters compaction = s.cluster->store_snapshots();
  out->family("memosd_cluster_store_snapshots_total", "counter",
              "Store snapshots this node published to the cluster's snapshot bucket (as shard "
              "0's owner), by result: publish_failed includes a store behind the newest "
              "snapshot.");
  out->sample("memosd_cluster_store_snapshots_total", {{"result", "published"}},
              static_cast<double>(compaction.published));
  out->sample("memosd_cluster_store_snapshots_total", {{"result", "publish_failed"}},
              static_cast<double>(compaction.publish_failures));
  out->family("memosd_cluster_log_compactions_total", "counter",
              "Compactions of the log this node ran, by result.");
  out->sample("memosd_cluster_log_compactions_total", {{"result", "done"}},
              static_cast<double>(compaction.compactions));
  out->sample("memosd_cluster_log_compactions_total", {{"result", "failed"}},
              static_cast<double>(compaction.compaction_failures));
  out->family("memosd_cluster_log_purged_records_total", "counter",
              "Records this node's compactions removed from the log.");
  out->sample("memosd_cluster_log_purged_records_total",
              static_cast<double>(compaction.purged_records));
  const ClusterNode::BlobSweepCounters sweeps = s.cluster->blob_sweeps();
  out->family("memosd_cluster_blob_sweeps_total", "counter",
              "Blobs this node's sweeps of the blob bucket found untouched past "
              "cluster.blob_grace_s, by what became of them (removed: no record references "
              "them; referenced and touched: kept), and sweeps that stopped on an error "
              "(failed).");
  const std::pair<const char*, std::uint64_t> swept[] = {{"removed", sweeps.removed},
                                                         {"referenced", sweeps.referenced},
                                                         {"touched", sweeps.touched},
                                                         {"failed", sweeps.failures}};
  for (const auto& [result, count] : swept) {
    out->sample("memosd_cluster_blob_sweeps_total", {{"result", result}},
                static_cast<double>(count));
  }
}

}  // namespace

Status metrics_text(const Services& s, std::string* out) {
  std::map<store::TenantId, TenantFigures> tenants;
  if (Status st = tenant_figures(s, &tenants); !st.ok()) return st;
  PrometheusText text;
  text.family("memosd_info", "gauge", "memosd's version.");
  text.sample("memosd_info", {{"version", MEMOS_VERSION}}, 1);
  text.family("memosd_uptime_seconds", "gauge", "Seconds since memosd started.");
  text.sample(
      "memosd_uptime_seconds",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - s.stats.started).count());
  text.family("memosd_connections", "gauge", "Client connections open.");
  text.sample("memosd_connections", s.stats.connections.load());
  if (s.request_metrics) s.request_metrics->write(&text);
  const IndexLag lag = s.indexes.lag();
  text.family("memosd_index_backlog", "gauge", "Writes answered and not yet searchable.");
  text.sample("memosd_index_backlog", static_cast<double>(lag.backlog));
  text.family("memosd_index_oldest_seconds", "gauge",
              "How long the oldest write not yet searchable has waited.");
  text.sample("memosd_index_oldest_seconds", lag.oldest_ms / 1000);
  text.family("memosd_indexed_total", "counter", "Writes made searchable since the start.");
  text.sample("memosd_indexed_total", static_cast<double>(lag.indexed));
  text.family("memosd_executor_queue", "gauge",
              "Calls waiting for the model executor: chats and prefills (foreground), the "
              "scheduler's prefills (background).");
  text.sample("memosd_executor_queue", {{"lane", "foreground"}},
              static_cast<double>(s.executor_lane.foreground_pending()));
  text.sample("memosd_executor_queue", {{"lane", "background"}},
              static_cast<double>(s.executor_lane.background_pending()));
  text.family("memosd_activation_chats_total", "counter",
              "Chats that could restore a stored KV state of their memory block, by whether "
              "they did (hit) or decoded it (miss).");
  text.sample("memosd_activation_chats_total", {{"result", "hit"}},
              static_cast<double>(s.activations.chat_hits()));
  text.sample("memosd_activation_chats_total", {{"result", "miss"}},
              static_cast<double>(s.activations.chat_misses()));
  text.family("memosd_store_map_bytes", "gauge", "The LMDB map's size (it grows on demand).");
  text.sample("memosd_store_map_bytes", static_cast<double>(s.store.map_size()));
  write_tenants(tenants, &text);
  write_plugins(s, &text);
  write_cluster(s, &text);
  text.family("memosd_scheduler_passes_total", "counter",
              "Scheduler passes since memosd started (memos(7), Scheduling).");
  text.sample("memosd_scheduler_passes_total", static_cast<double>(s.scheduler.passes()));
  text.family("memosd_scheduler_decisions_total", "counter",
              "The scheduler's decisions since memosd started, by action (memctl sched log).");
  const auto decisions = s.scheduler.decision_counts();
  for (std::size_t a = 0; a < decisions.size(); ++a) {
    text.sample("memosd_scheduler_decisions_total",
                {{"action", scheduler::to_string(static_cast<scheduler::Action>(a))}},
                static_cast<double>(decisions[a]));
  }
  *out = text.text();
  return {};
}

}  // namespace memos::kernel
