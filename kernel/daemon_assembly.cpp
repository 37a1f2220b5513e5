// daemon_assembly.cpp — Daemon::build_services(): the daemon's parts, built
// in order, each step a function that returns success or the error to log.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <vector>

#include "kernel/cluster_store_restore.h"
#include "kernel/config_discovery.h"
#include "kernel/daemon.h"
#include "kernel/handlers/archives.h"
#include "kernel/systemd.h"

namespace memos::kernel {
namespace {

// A step that failed: start-up ends with its message logged (the code is
// moot: no client waits for it).
Status failed(std::string error) {
  return Status::internal(error.empty() ? "failed without saying why" : std::move(error));
}

// How long a cluster node's start waits for its engines (NATS, JetStream's
// streams, etcd) while a cluster starts together.
constexpr std::chrono::seconds kClusterStartTimeout{30};

Status create_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? failed("cannot create " + dir + ": " + ec.message()) : Status::success();
}

}  // namespace

bool Daemon::build_services() {
  using Step = Status (Daemon::*)();
  for (Step step : {
           &Daemon::load_policies,
           &Daemon::lock_data_folder,
           &Daemon::connect_cluster,
           &Daemon::open_store,
           &Daemon::open_blob_store,
           &Daemon::load_embedder,
           &Daemon::load_retrievers,
           &Daemon::load_executor,
           &Daemon::load_router,
           &Daemon::remove_stale_imports,
           &Daemon::adopt_embedder,
           &Daemon::open_indexes,
           &Daemon::start_commit_queue,
           &Daemon::start_activation_tier,
           &Daemon::start_scheduler,
           &Daemon::join_cluster,
           &Daemon::start_request_handler,
       }) {
    if (Status s = (this->*step)(); !s.ok()) {
      spdlog::error("{}", s.message);
      return false;
    }
  }
  return true;
}

// The tenant policies come first: a folder with an error stops the start
// before anything is opened.
Status Daemon::load_policies() {
  std::vector<std::string> warnings;
  Status st = tenants_.load(&warnings);
  for (const auto& w : warnings) spdlog::warn("{}", w);
  if (!st.ok()) return failed("tenant policies not loaded:\n" + st.message);
  auto set = tenants_.current();
  if (set->folder().empty()) {
    spdlog::info("tenant policies: none (no {}): every user is a tenant of its own",
                 default_policies_dir(config_.path));
  } else {
    spdlog::info("tenant policies: {} ({} tenants; peers no file claims: {})", set->folder(),
                 set->tenants().size(),
                 set->default_policy()->file.empty() ? "admitted, no bounds"
                 : set->default_policy()->allow      ? set->default_policy()->file
                                                     : "refused");
  }
  return {};
}

// One daemon per data folder.
Status Daemon::lock_data_folder() {
  systemd::notify("STATUS=opening the store");
  std::string error;
  lock_ = DataLock::acquire(config_.data_dir, &error);
  return lock_ ? Status::success() : failed(error);
}

// [cluster] enabled: NATS and etcd, waited for while a cluster starts
// together; every part of the node borrows these (cluster_engines.h).
Status Daemon::connect_cluster() {
  if (!config_.cluster.enabled) return {};
  systemd::notify("STATUS=connecting to cluster " + config_.cluster.name);
  cluster_engines_ = std::make_unique<ClusterEngines>();
  const auto deadline = std::chrono::steady_clock::now() + kClusterStartTimeout;
  store::Status s = connect_cluster_engines(config_.cluster, deadline, &*cluster_engines_);
  // Before the store opens: it keeps each shard's last id. A store that
  // already issued ids (a single node's, turned into a cluster's) proposes
  // its own count.
  std::uint32_t store_shards = 0, shards = 0;
  if (s.ok()) s = store::Store::shards_made_for(store_dir(), &store_shards);
  if (s.ok()) {
    s = agree_on_shards(config_.cluster, store_shards, *cluster_engines_->etcd, deadline, &shards);
  }
  if (!s.ok()) return failed(s.message);
  if (config_.cluster.shards == 0) {
    spdlog::info("cluster {}: {} shard(s), as the cluster was made", config_.cluster.name, shards);
  }
  config_.cluster.shards = shards;
  return {};
}

Status Daemon::open_store() {
  if (std::string error = make_dirs(store_dir(), 0700); !error.empty()) return failed(error);
  store::StoreOptions options;
  options.map_size_bytes = config_.store.map_size_mb << 20;
  options.max_map_size_bytes = config_.store.max_map_size_mb << 20;
  // A cluster's store keeps each shard's last id; one node's has one shard.
  options.shards = config_.cluster.enabled ? config_.cluster.shards : 1;
  if (config_.cluster.enabled) {
    if (Status s = tidy_store_swap(store_dir()); !s.ok()) return failed(s.message);
  }
  store::Status status;
  store_ = store::Store::open(store_dir(), options, &status);
  if (!store_) return failed(status.message);
  if (!config_.cluster.enabled) return {};
  // A store behind the compacted log takes the cluster's newest snapshot
  // before anything reads it (cluster_store_restore.h).
  bool restored = false;
  if (Status s = restore_store_if_behind(config_.cluster, *cluster_engines_->nats,
                                         *cluster_engines_->etcd, store_dir(), store_snapshot_dir(),
                                         options, kClusterStartTimeout, &store_, &restored);
      !s.ok()) {
    return failed("cluster " + config_.cluster.name + ": " + s.message);
  }
  return {};
}

Status Daemon::open_blob_store() {
  store::Status status;
  blobs_ = store::BlobStore::open(config_.data_dir + "/blobs", &status);
  return blobs_ ? Status::success() : failed(status.message);
}

// Lists the plugins, then loads the embedder every cube uses.
Status Daemon::load_embedder() {
  systemd::notify("STATUS=loading plugins");
  plugins_.scan();
  std::string model, error;
  auto embedder = plugins_.load_embedder(&model, &error);
  if (!embedder) return failed(error);
  // Unset, the dimension is the embedder's own, so that a GGUF model needs
  // no setting of its size.
  if (config_.search.embedding_dim == 0) {
    config_.search.embedding_dim = embedder->dimension();
    if (config_.search.embedding_dim < 16 || config_.search.embedding_dim > 4096) {
      return failed(fmt::format(
          "embedder {} describes its dimension as {}: set search.embedding_dim (16 to 4096)",
          config_.plugins.embedder, config_.search.embedding_dim));
    }
  }
  // New cubes embed at search.embedding_dim: an embedder whose model has
  // another dimension (a GGUF embedder's is its model's) must say so now,
  // not at the first add.
  std::vector<float> probe;
  if (Status probed = embedder->embed("memosd", config_.search.embedding_dim, &probe);
      !probed.ok()) {
    return failed(fmt::format(
        "embedder {} cannot embed at search.embedding_dim = {}: {} (set search.embedding_dim to "
        "its dimension)",
        config_.plugins.embedder, config_.search.embedding_dim, probed.message));
  }
  indexes_.set_embedder(std::move(embedder), model);
  return {};
}

// The dense, lexical and hybrid retrievers, each of which must offer its
// mode. They keep their snapshots under <data>/index/<plugin>, and
// exchange shared ones through its transfer/ folder.
Status Daemon::load_retrievers() {
  std::shared_ptr<PluginRetriever> retrievers[3];
  const std::string* names[3] = {&config_.plugins.dense, &config_.plugins.lexical,
                                 &config_.plugins.hybrid};
  const SearchMode modes[3] = {SearchMode::dense, SearchMode::lexical, SearchMode::hybrid};
  for (int i = 0; i < 3; ++i) {
    std::string state_dir = config_.data_dir + "/index/" + *names[i];
    // transfer/: snapshot files on their way to or from another node
    // (PluginRetriever::transfer_path); what a crash left there is stale.
    std::error_code ignored;
    std::filesystem::remove_all(state_dir + "/transfer", ignored);
    if (Status s = create_directories(state_dir + "/transfer"); !s.ok()) return s;
    std::string error;
    retrievers[i] = plugins_.load_retriever(*names[i], state_dir, &error);
    if (!retrievers[i]) return failed(error);
    const auto& m = retrievers[i]->modes();
    if (std::find(m.begin(), m.end(), modes[i]) == m.end()) {
      return failed(fmt::format("plugins.{} = {}: that plugin does not offer the {} mode",
                                to_string(modes[i]), *names[i], to_string(modes[i])));
    }
  }
  indexes_.set_retrievers(retrievers[0], retrievers[1], retrievers[2]);
  return {};
}

// The router of budget "auto", when plugins.router names one. A router that
// will not load (its weights refused, another embedder's) is no reason to
// stop: "auto" then runs at routing.default_tier, and says why.
Status Daemon::load_router() {
  if (config_.plugins.router.empty()) {
    router_missing_ = "no router plugin is configured (plugins.router)";
    return {};
  }
  std::string error;
  router_ = plugins_.load_router(indexes_.embedder_model(), &error);
  if (!router_) {
    router_missing_ = "router " + config_.plugins.router + " did not load: " + error;
    spdlog::warn("{}; budget auto runs at routing.default_tier ({})", router_missing_,
                 to_string(config_.routing.default_tier));
  }
  return {};
}

// The model executor, when executor.model names one, and the answer
// module's models (executor.models). It keeps its cache of
// model hashes under <data>/executor. Loading a model may take long:
// systemd's start timeout is extended by executor.start_timeout_ms.
Status Daemon::load_executor() {
  if (config_.executor.model.empty()) return {};
  std::string state_dir = config_.data_dir + "/executor";
  if (Status s = create_directories(state_dir); !s.ok()) return s;
  systemd::notify("STATUS=loading the model " + config_.executor.model + "\nEXTEND_TIMEOUT_USEC=" +
                  std::to_string(std::uint64_t{config_.executor.start_timeout_ms} * 1000));
  std::string error;
  executor_ = plugins_.load_executor(config_.executor, config_.activation, state_dir, &error);
  if (!executor_)
    return failed(fmt::format("executor.model = {}: {}", config_.executor.model, error));
  return AnswerModels::load(plugins_, config_, executor_, &answer_models_);
}

// Imports a crash left half staged are dropped before anything reads cubes.
Status Daemon::remove_stale_imports() {
  // In a cluster the staging cubes are rows of the log, which a node does
  // not change on its own (docs/scale-out.md, "Status").
  if (config_.cluster.enabled) return {};
  std::size_t stale = 0;
  if (store::Status s = CubeArchives::remove_stale_staging(*store_, &stale); !s.ok()) {
    return failed("removing unfinished imports: " + s.message);
  }
  if (stale) spdlog::info("removed {} import(s) left unfinished by a crash", stale);
  return {};
}

// A cube whose memories another embedding model embedded: its vectors mean nothing to queries the
// daemon's embedder makes now. Its dense collection is dropped and the cube adopts the embedder, so
// open_indexes() rebuilds it from the stored texts; the lexical index, which does not depend on the
// embedder, is kept. Dropped before the record changes: a crash between the two finds the cube not
// yet adopted and drops again, and never serves old vectors as new.
Status Daemon::adopt_embedder() {
  const std::string model = indexes_.embedder_model();
  const std::uint32_t dimension = config_.search.embedding_dim;
  std::vector<store::Cube> cubes;
  {
    std::optional<store::ReadTxn> txn;
    store::Status s = store_->begin_read(&txn);
    if (s.ok()) s = txn->list_all_cubes(&cubes);
    if (!s.ok()) return failed("listing the cubes: " + s.message);
  }
  // The same model at another dimension (hash-v1, whose dimension is a
  // setting) embeds the cube as before: only another model is adopted.
  std::erase_if(cubes, [&](const store::Cube& c) { return c.embedder == model; });
  if (cubes.empty()) return {};
  if (config_.cluster.enabled) {
    // The cube rows are the log's: every node of a cluster embeds with the
    // model its cubes were embedded by.
    return failed(fmt::format(
        "cluster mode: cube {} was embedded by {} at {} dimensions and this node embeds with {} "
        "at {}: every node of a cluster must run the embedder its cubes use",
        cubes[0].name, cubes[0].embedder, cubes[0].dimension, model, dimension));
  }
  for (const store::Cube& cube : cubes) {
    spdlog::warn(
        "cube {}: its memories were embedded by {} at {} dimensions, memosd now embeds with {} "
        "at {}: rebuilding its dense index from the store ({} memories)",
        cube.name, cube.embedder, cube.dimension, model, dimension, cube.live_items);
    if (Status s = indexes_.dense().drop(cube.id); !s.ok())
      return failed("cube " + cube.name + ": dropping its dense index: " + s.message);
  }
  std::optional<store::WriteTxn> txn;
  store::Status s = store_->begin_write(&txn);
  for (std::size_t i = 0; s.ok() && i < cubes.size(); ++i)
    s = txn->set_cube_embedder(cubes[i].id, model, dimension);
  if (s.ok()) s = txn->commit();
  return s.ok() ? Status::success() : failed("recording the cubes' new embedder: " + s.message);
}

// Opens every cube's collections, rebuilding those their snapshot does not
// cover.
Status Daemon::open_indexes() {
  if (cluster_engines_) open_index_sharing();
  systemd::notify("STATUS=opening the search indexes");
  auto started = std::chrono::steady_clock::now();
  std::size_t indexed = 0, rebuilt = 0;
  Status status = indexes_.open_all(*store_, &indexed, &rebuilt, [](const std::string& what) {
    // A big rebuild may outlast TimeoutStartSec: each step asks for more.
    systemd::notify("STATUS=" + what + "\nEXTEND_TIMEOUT_USEC=120000000");
  });
  if (!status.ok()) return failed("opening the search indexes: " + status.message);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  spdlog::info("store {} open; indexes ready in {} ms ({} cube(s) rebuilt, {} items indexed)",
               store_dir(), ms, rebuilt, indexed);
  return {};
}

void Daemon::open_index_sharing() {
  Status opened;
  index_sharing_ = ClusterIndexSharing::open(
      config_.cluster.name, static_cast<int>(config_.cluster.replicas), *cluster_engines_->nats,
      *cluster_engines_->etcd, config_.data_dir + "/index/shared",
      std::max(std::chrono::milliseconds(config_.cluster.lease_ms),
               std::chrono::milliseconds(2000)),
      &opened);
  if (!index_sharing_) {
    spdlog::warn("cluster: {}; index snapshots are not shared, indexes are rebuilt from the store",
                 opened.message);
    return;
  }
  // The bucket's stream may not be there yet while JetStream elects its
  // first leader (every node of a new cluster starting at once): waited for
  // at start, so that the indexes opened next can be taken from snapshots,
  // and after that opened on a later use (cluster_index_sharing.h).
  Status bucket;
  (void)retry_while_unavailable(std::chrono::steady_clock::now() + kClusterStartTimeout, [&] {
    bucket = index_sharing_->open_bucket();
    return bucket.code == Code::unavailable
               ? store::Status{store::Errc::unavailable, bucket.message}
               : store::Status{};
  });
  if (!bucket.ok()) {
    spdlog::warn("cluster: {}; indexes are rebuilt from the store and shared once the bucket opens",
                 bucket.message);
  }
  indexes_.set_sharing(index_sharing_.get());
}

// The writer thread, and the indexer thread behind it: each commit group's
// changes go to the indexer after the commit, batched (index_set.h).
Status Daemon::start_commit_queue() {
  indexes_.start(config_.search.index_max_backlog,
                 static_cast<std::size_t>(config_.search.index_max_backlog_mb) << 20);
  commits_ = std::make_unique<store::CommitQueue>(
      *store_,
      [](const store::Status& s) {
        // Durability contract: after a failed commit nothing can be promised;
        // exit and let the supervisor restart on a consistent store.
        spdlog::critical("commit failed: {}; exiting", s.message);
        spdlog::shutdown();
        _exit(3);
      },
      config_.store.group_commit);
  commits_->set_after_group([this] { indexes_.flush(); });
  return {};
}

Status Daemon::start_activation_tier() {
  activations_ = std::make_unique<ActivationTier>(*store_, *commits_, *blobs_, config_.activation);
  return {};
}

// The scheduler starts from the working sets the store holds, and hears of
// every state the activation tier evicts (memctl sched log).
Status Daemon::start_scheduler() {
  scheduler_ = std::make_unique<scheduler::Scheduler>(config_.scheduler.log_entries);
  if (Status st = scheduler_->load(*store_); !st.ok())
    return failed("reading the working sets: " + st.message);
  activations_->set_eviction_observer([this](const store::Activation& gone, double utility) {
    scheduler_->note_eviction(gone, utility);
  });
  return {};
}

// [cluster] enabled: the node joins its cluster (cluster_node.h). Until it
// owns the store it follows the owner's log and refuses writes; becoming
// the owner, it reloads what it keeps of the store in memory.
Status Daemon::join_cluster() {
  if (!config_.cluster.enabled) return {};
  systemd::notify("STATUS=joining cluster " + config_.cluster.name);
  cluster_ = std::make_unique<ClusterNode>(
      config_.cluster, *cluster_engines_, *store_, *commits_, *blobs_, indexes_,
      index_sharing_.get(), store_snapshot_dir(), [this] { return tenants_.current()->digest(); });
  return cluster_->start(
      [this](std::uint32_t shard, bool owner) {
        if (!owner) {
          spdlog::info("cluster {}: this node follows shard {}", config_.cluster.name, shard);
          return;
        }
        router_ledger_.forget_known();
        if (Status st = scheduler_->load(*store_); !st.ok())
          spdlog::error("cluster: reloading the working sets: {}", st.message);
      },
      [this](const std::string& fault) { behind_cluster_log(fault); }, kClusterStartTimeout);
}

Status Daemon::start_request_handler() {
  handler_ = std::make_unique<RequestHandler>(
      Services{config_,
               *store_,
               *commits_,
               indexes_,
               stats_,
               access_,
               plugins_,
               tenants_,
               [this](std::function<void()> work) { run_on_worker(std::move(work)); },
               *activations_,
               executor_,
               executor_lane_,
               *scheduler_,
               loop_thread_,
               &inline_reads_,
               blobs_.get(),
               &jobs_,
               router_,
               router_missing_,
               &router_ledger_,
               &answer_models_,
               &request_metrics_,
               cluster_.get()});
  if (cluster_) {
    // Writes other nodes forward here (on NATS's reader thread: queued for
    // the loop, where every request starts).
    Status s = cluster_->serve_forwarded([this](cluster::ForwardedRequest request,
                                                cluster::WriteForwarder::Answer answer) {
      mailbox_->post([this, request = std::move(request), answer = std::move(answer)]() mutable {
        serve_forwarded(std::move(request), std::move(answer));
      });
    });
    // Unavailable: the subscription is made when NATS answers again.
    if (!s.ok()) spdlog::warn("cluster: serving forwarded writes: {}", s.message);
  }
  return {};
}

}  // namespace memos::kernel
