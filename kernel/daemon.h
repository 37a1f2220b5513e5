// daemon.h — memosd's process: storage, indexes, the loop and its clients.
//
// One libuv loop thread owns the listening socket, the connections, timers
// and signals and never blocks; reads, searches and embedding run on libuv's
// worker pool; one writer thread (store::CommitQueue) commits; model calls
// run on the executor lane (SerialLane).
//
// Start-up, build_services() (daemon_assembly.cpp): lock the data folder,
// open the store and the blob store, load the embedder (probing its
// dimension), the retrievers and the executor, remove imports a crash left
// unfinished, open or rebuild the indexes, start the writer, the activation
// tier and the request handler. Then run() binds the socket and serves.
//
// Shutdown on SIGINT/SIGTERM: stop accepting and reading, stop the periodic
// jobs, let requests in flight finish and their replies be written (at most
// shutdown_timeout_ms), close the last handles so that uv_run() returns, stop
// the writer (it commits what is queued), snapshot the indexes and remove the
// socket. ~Daemon then stops the rest in one explicit sequence (stop()), so
// nothing depends on the order the members are declared in.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ipc/unix_peer.h"
#include "kernel/access_log.h"
#include "kernel/activation_tier.h"
#include "kernel/answer_models.h"
#include "kernel/client_limits.h"
#include "kernel/cluster_node.h"
#include "kernel/config.h"
#include "kernel/connection.h"
#include "kernel/data_lock.h"
#include "kernel/fair_queue.h"
#include "kernel/index_set.h"
#include "kernel/inline_reads.h"
#include "kernel/jobs.h"
#include "kernel/loop_mailbox.h"
#include "kernel/periodic_job.h"
#include "kernel/plugin_manager.h"
#include "kernel/rate_limits.h"
#include "kernel/request_handler.h"
#include "kernel/request_metrics.h"
#include "kernel/router_ledger.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/serial_lane.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "kernel/tenant_registry.h"
#include "kernel/user_namespace.h"
#include "kernel/uv_handle.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"
#include "memcube/thread_affinity.h"

namespace memos::kernel {

class Daemon final : public ConnectionOwner {
 public:
  // `config` must have passed validate_config().
  explicit Daemon(Config config);
  // stop(). On the thread that called run().
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until SIGINT or SIGTERM. Returns the exit status: 0 after a clean
  // shutdown, 1 if start-up failed (the reason is logged),
  // kExitBehindClusterLog after a clean shutdown because this node fell
  // behind its cluster's compacted log. The calling thread becomes the loop
  // thread.
  int run();

  // A cluster node whose store the log was compacted past can apply
  // nothing more; a supervisor restarting it on this status (the unit's
  // Restart=on-failure) brings it back, since a start takes the cluster's
  // newest store snapshot (memosd(8), EXIT STATUS).
  static constexpr int kExitBehindClusterLog = 4;

  // Loop thread (ConnectionOwner).
  void on_request(Connection& conn, wire::Request::Reader request) override;
  void on_closed(Connection& conn) override;

 private:
  // Assembly (daemon_assembly.cpp): each step returns success or the error
  // to log, and build_services() stops at the first error.
  bool build_services();
  Status load_policies();
  Status lock_data_folder();
  Status connect_cluster();
  Status open_store();
  Status open_blob_store();
  Status load_embedder();
  Status load_retrievers();
  Status load_executor();
  Status load_router();
  Status remove_stale_imports();
  Status adopt_embedder();
  Status open_indexes();
  // Cluster mode, before the indexes open: the index snapshots shared
  // through the cluster (a failure is logged; indexes are then rebuilt).
  void open_index_sharing();
  Status start_commit_queue();
  Status start_activation_tier();
  Status start_scheduler();
  Status join_cluster();
  // The shards this node writes now: shard 0 on one node; in a cluster,
  // those it owns. The periodic writers write each of these shards' rows
  // (a write job per shard) and skip their turn when there is none.
  std::vector<std::uint32_t> shards_written_here() const;
  // Submits `apply` once for each shard written here, each job in its
  // shard's transaction (the store keeps each job to its shard's rows); a
  // failure is logged as `what`'s. `run` lasts until every job is done.
  void submit_to_written_shards(std::function<store::Status(store::WriteTxn&)> apply,
                                const char* what, const PeriodicJob::Running& run);
  Status start_request_handler();
  std::string store_dir() const { return config_.data_dir + "/store"; }
  // Where store snapshots pass on their way to and from the cluster.
  std::string store_snapshot_dir() const { return config_.data_dir + "/store-snapshots"; }

  // The loop, its handles and its clients (loop thread, daemon.cpp).
  bool open_loop();
  bool watch_signals();
  bool listen();
  bool listen_on_passed_socket(int fd);
  static void on_connection(uv_stream_t* server, int status);
  void accept();
  Status check_peer(const ipc::PeerCredentials& peer) const;
  void raise_open_file_limit();
  void reload_config();
  // Re-reads the policy folder off the loop and logs the outcome.
  void reload_policies(const char* why);
  void deliver(std::uint64_t connection_id, const Frame& frame, bool last);
  Status admit_request(const Peer& peer, wire::Request::Which operation);
  // Hands an admitted request to the handler (loop thread); its latency
  // counts from `arrived`.
  void dispatch(const Peer& peer, std::uint64_t connection_id, wire::Request::Reader request,
                std::chrono::steady_clock::time_point arrived);
  // dispatch() with the replies going to `reply` (from any thread) rather
  // than to the connection.
  void dispatch_to(const Peer& peer, std::uint64_t connection_id, wire::Request::Reader request,
                   std::chrono::steady_clock::time_point arrived, Reply reply);
  // Cluster mode (daemon_forwarding.cpp): sends an admitted write to its
  // shard's owner when this node cannot write it and another node owns it
  // (ClusterNode::forward_target); false when it stays here. A write is
  // its cube owner's shard's: the peer's own, or, for a cube another
  // tenant shares ("alice/notes"), that tenant's, found off the loop (a
  // name may be a user's, which NSS answers) before the write goes on.
  bool forward_if_not_owned(const Peer& peer, std::uint64_t connection_id,
                            wire::Request::Reader request,
                            std::chrono::steady_clock::time_point arrived);
  // forward_if_not_owned's last step, with the shard known.
  bool forward_to_shard_owner(const Peer& peer, std::uint32_t shard, std::uint64_t connection_id,
                              wire::Request::Reader request,
                              std::chrono::steady_clock::time_point arrived);
  // Finds the tenant named before the '/' of `cube` on a worker, then
  // forwards the write by that tenant's shard or dispatches it here.
  void route_shared_cube_write(const Peer& peer, std::uint64_t connection_id,
                               wire::Request::Reader request, std::string_view cube,
                               std::chrono::steady_clock::time_point arrived);
  // A write this node forwarded, as its answer needs it.
  struct ForwardedWrite {
    std::uint64_t connection;
    std::uint32_t tenant;
    std::uint64_t request_id;
    wire::Request::Which operation;
    bool wait_searchable;
    std::chrono::steady_clock::time_point arrived;
  };
  // The owner's answer to a forwarded write reaches its client once this
  // node holds what the owner committed (read your writes here too), and
  // when the write asked to wait until searchable, once this node's
  // indexes have it.
  void finish_forwarded(const ForwardedWrite& write, store::Status status, std::string reply);
  // Runs a write another node forwarded here as its peer's (loop thread).
  void serve_forwarded(cluster::ForwardedRequest request, cluster::WriteForwarder::Answer answer);
  // Cluster mode: dispatches a read once this node is current, or answers
  // why it cannot be (ClusterNode::before_read).
  void dispatch_when_current(const Peer& peer, std::uint64_t connection_id,
                             wire::Request::Reader request, std::chrono::milliseconds bound,
                             std::chrono::steady_clock::time_point arrived);
  void pump_workers();
  void queue_work(std::function<void()> work);
  void request_done(std::uint32_t tenant);
  void run_on_worker(std::function<void()> work);
  void begin_shutdown(const char* why);
  // Any thread: this node fell behind the compacted log (ClusterNode's
  // BehindLog). Shuts down cleanly, to exit with kExitBehindClusterLog.
  void behind_cluster_log(const std::string& fault);
  // Loop thread: the shutdown behind_cluster_log() asked for (once).
  void leave_behind_cluster_log();
  void maybe_finish_shutdown();
  void after_loop();
  void remove_socket();
  // ~Daemon's explicit stop sequence; then close_loop().
  void stop();
  void close_loop();

  // Periodic work (daemon_jobs.cpp), each a PeriodicJob step.
  void start_periodic_jobs();
  void flush_access_log(PeriodicJob::Running run);
  void flush_router_ledger(PeriodicJob::Running run);
  void run_retention(PeriodicJob::Running run);
  void run_scheduler(PeriodicJob::Running run);
  void collect_blob_garbage(PeriodicJob::Running run);
  void save_index_snapshots(PeriodicJob::Running run);
  // Cluster mode: the owner's index snapshots shared with the other nodes
  // (ClusterNode::share_indexes), on a worker.
  void share_index_snapshots(PeriodicJob::Running run);
  // cluster.store_snapshot_s: ClusterNode::compact_log() on a worker.
  void compact_cluster_log(PeriodicJob::Running run);
  void check_cluster_policies(PeriodicJob::Running run);
  void write_metrics_textfile(PeriodicJob::Running run);
  void retry_unbuilt_indexes(PeriodicJob::Running run);

  Config config_;
  // The configuration as given, before start-up filled in what it probes
  // (search.embedding_dim 0: the embedder's own) or was passed (the socket):
  // what a SIGHUP compares the file with.
  Config as_configured_;
  // Connections per uid and buffered input (loop thread); outlives the
  // connections, which give their input back as they go.
  ClientLimits limits_;
  // Read at start: whether peer uids are the real ones (user_namespace.h).
  UserNamespace user_namespace_;
  PluginManager plugins_;
  // The tenant policies, loaded first at start and again on a reload.
  TenantRegistry tenants_;
  // Their rates, and each tenant's requests in flight (loop thread).
  RateLimits rates_;
  std::unordered_map<std::uint32_t, std::uint32_t> inflight_;
  // Work for the worker pool waits here, served fairly across tenants;
  // at most worker_slots_ run at once (loop thread).
  struct Dispatching {
    std::uint32_t tenant;
    std::uint32_t weight;
    std::uint64_t connection;
  };
  static constexpr std::uint32_t kDaemonFlow = 0xFFFFFFFF;  // (uid_t)-1 is no one's
  std::optional<Dispatching> dispatching_;                  // set while a request is dispatched
  // Forwarded writes run as connections of their own, numbered apart from
  // the real ones (which count up from 1).
  static constexpr std::uint64_t kForwardedConnections = std::uint64_t{1} << 63;
  std::uint64_t forwarded_served_ = 0;
  FairQueue waiting_work_;
  unsigned worker_slots_ = 2;
  unsigned running_work_ = 0;
  DaemonStats stats_;
  std::unique_ptr<DataLock> lock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<store::CommitQueue> commits_;
  // [cluster] enabled: the connections to the engines, and the index
  // snapshots shared through them; before indexes_ and cluster_, which
  // borrow them, so destroyed after both.
  std::unique_ptr<ClusterEngines> cluster_engines_;
  std::unique_ptr<ClusterIndexSharing> index_sharing_;
  IndexSet indexes_;
  AccessLog access_;
  std::shared_ptr<PluginExecutor> executor_;  // null: no executor.model
  AnswerModels answer_models_;            // the chat's answer module, per tier (executor.models)
  RequestMetrics request_metrics_;        // memctl metrics: request counts and latencies
  std::shared_ptr<PluginRouter> router_;  // null: none (router_missing_ says why)
  std::string router_missing_;
  RouterLedger router_ledger_;  // flushed with the access log, and at a clean stop
  std::unique_ptr<ActivationTier> activations_;
  // The one executor lane: owned here, shared through Services, stopped in
  // stop() while the mailbox its jobs reply through still exists.
  SerialLane executor_lane_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  // [cluster] enabled: this node's replica of the store (null: one node).
  // After the writer, so it is destroyed first.
  std::unique_ptr<ClusterNode> cluster_;
  JobTable jobs_;  // in memory: a restart forgets them (jobs.h)
  std::unique_ptr<RequestHandler> handler_;

  uv_loop_t loop_{};
  bool loop_open_ = false;
  // Bound by run() (the loop thread); the loop-thread methods assert it.
  ThreadAffinity loop_thread_;
  std::unique_ptr<LoopMailbox> mailbox_;
  InlineReads inline_reads_;  // bound with loop_thread_ by run()
  UvHandle<uv_pipe_t> listener_;
  // systemd passed the listening socket: the socket key plays no part, and
  // config_.socket holds the passed socket's path.
  bool socket_passed_ = false;
  UvHandle<uv_signal_t> sigint_;
  UvHandle<uv_signal_t> sigterm_;
  UvHandle<uv_signal_t> sighup_;
  UvHandle<uv_timer_t> shutdown_timer_;
  // Retention, the access-log flush, blob GC, index snapshots, the watchdog.
  std::vector<std::unique_ptr<PeriodicJob>> periodic_jobs_;
  // The connections' one read buffer (Connection's constructor says why).
  std::vector<char> read_buffer_ = std::vector<char>(64 * 1024);
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t next_connection_id_ = 1;
  bool shutting_down_ = false;
  bool finished_ = false;
  int exit_status_ = 0;  // loop thread; run() returns it after a clean stop
  // behind_cluster_log() may come before the loop and its mailbox exist
  // (the node joins its cluster first): it sets the first, and posts to the
  // loop once the second is set; run() looks at the first once the loop is
  // open. Either or both act; leave_behind_cluster_log() acts once.
  std::atomic<bool> behind_cluster_log_{false};
  std::atomic<bool> mailbox_open_{false};
  std::uint64_t socket_inode_ = 0;  // to remove only the socket we created
};

}  // namespace memos::kernel
