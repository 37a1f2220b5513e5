#include "kernel/daemon.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "ipc/unix_peer.h"
#include "kernel/handlers/archives.h"
#include "kernel/systemd.h"

namespace memos::kernel {
namespace {

template <class Handle>
void close_and_free(Handle*& handle) {
  if (!handle) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  handle = nullptr;
}

// Refuses a socket path where another daemon answers; removes a stale one.
std::string claim_socket_path(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "";
  if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket";
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc == 0) return "another memosd is already listening on " + path;
  if (err != ECONNREFUSED) return "cannot check " + path + ": " + std::strerror(err);
  spdlog::info("removing stale socket {}", path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return "cannot remove stale socket " + path + ": " + std::strerror(errno);
  }
  return "";
}

}  // namespace

Daemon::Daemon(Config config) : config_(std::move(config)), plugins_(config_.plugins) {
  if (config_.socket.empty()) config_.socket = ipc::default_socket_path();
  if (config_.data_dir.empty()) config_.data_dir = default_data_dir();
  stats_.socket_path = config_.socket;
  stats_.data_dir = config_.data_dir;
}

Daemon::~Daemon() {
  // Connections own libuv handles; they are closed by the time run() returns.
  connections_.clear();
  // A generation still running (its client gone at the shutdown timeout)
  // must not hold the stop for minutes.
  if (executor_) executor_->stop();
  // The executor lane is a thread of its own, which the loop ending does not
  // wait for: join it now, while the mailbox its replies go to still exists.
  executor_lane_.stop();
  handler_.reset();
  if (commits_) commits_->stop();
  if (loop_ready_) uv_loop_close(&loop_);
}

bool Daemon::open_storage() {
  std::string error;
  systemd::notify("STATUS=opening the store");
  lock_ = DataLock::acquire(config_.data_dir, &error);
  if (!lock_) {
    spdlog::error("{}", error);
    return false;
  }
  std::string store_dir = config_.data_dir + "/store";
  if (error = make_dirs(store_dir, 0700); !error.empty()) {
    spdlog::error("{}", error);
    return false;
  }
  store::StoreOptions options;
  options.map_size_bytes = config_.store.map_size_mb << 20;
  options.max_map_size_bytes = config_.store.max_map_size_mb << 20;
  store::Status status;
  store_ = store::Store::open(store_dir, options, &status);
  if (!store_) {
    spdlog::error("{}", status.message);
    return false;
  }
  blobs_ = store::BlobStore::open(config_.data_dir + "/blobs", &status);
  if (!blobs_) {
    spdlog::error("{}", status.message);
    return false;
  }
  systemd::notify("STATUS=loading plugins");
  plugins_.scan();
  std::string model;
  auto embedder = plugins_.load_embedder(&model, &error);
  if (!embedder) {
    spdlog::error("{}", error);
    return false;
  }
  // Every cube embeds at search.embedding_dim: an embedder whose model has
  // another dimension (a GGUF embedder's is its model's) must say so now,
  // not at the first add.
  std::vector<float> probe;
  if (Status probed = embedder->embed("memosd", config_.search.embedding_dim, &probe);
      !probed.ok()) {
    spdlog::error(
        "embedder {} cannot embed at search.embedding_dim = {}: {} (set search.embedding_dim to "
        "its dimension)",
        config_.plugins.embedder, config_.search.embedding_dim, probed.message);
    return false;
  }
  indexes_.set_embedder(std::move(embedder), model);
  // Retrievers keep their snapshots under <data>/index/<plugin>.
  std::shared_ptr<PluginRetriever> retrievers[3];
  const std::string* names[3] = {&config_.plugins.dense, &config_.plugins.lexical,
                                 &config_.plugins.hybrid};
  const SearchMode modes[3] = {SearchMode::dense, SearchMode::lexical, SearchMode::hybrid};
  for (int i = 0; i < 3; ++i) {
    std::string state_dir = config_.data_dir + "/index/" + *names[i];
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
      spdlog::error("cannot create {}: {}", state_dir, ec.message());
      return false;
    }
    retrievers[i] = plugins_.load_retriever(*names[i], state_dir, &error);
    if (!retrievers[i]) {
      spdlog::error("{}", error);
      return false;
    }
    const auto& m = retrievers[i]->modes();
    if (std::find(m.begin(), m.end(), modes[i]) == m.end()) {
      spdlog::error("plugins.{} = {}: that plugin does not offer the {} mode", to_string(modes[i]),
                    *names[i], to_string(modes[i]));
      return false;
    }
  }
  indexes_.set_retrievers(retrievers[0], retrievers[1], retrievers[2]);
  if (!config_.executor.model.empty()) {
    // The executor keeps its cache of model hashes under <data>/executor.
    std::string state_dir = config_.data_dir + "/executor";
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
      spdlog::error("cannot create {}: {}", state_dir, ec.message());
      return false;
    }
    systemd::notify("STATUS=loading the model " + config_.executor.model +
                    "\nEXTEND_TIMEOUT_USEC=" +
                    std::to_string(std::uint64_t{config_.executor.start_timeout_ms} * 1000));
    executor_ = plugins_.load_executor(config_.executor, config_.activation, state_dir, &error);
    if (!executor_) {
      spdlog::error("executor.model = {}: {}", config_.executor.model, error);
      return false;
    }
  }
  std::size_t stale = 0;
  if (status = CubeArchives::remove_stale_staging(*store_, &stale); !status.ok()) {
    spdlog::error("removing unfinished imports: {}", status.message);
    return false;
  }
  if (stale) spdlog::info("removed {} import(s) left unfinished by a crash", stale);
  systemd::notify("STATUS=opening the search indexes");
  auto started = std::chrono::steady_clock::now();
  std::size_t indexed = 0, rebuilt = 0;
  Status opened = indexes_.open_all(*store_, &indexed, &rebuilt, [](const std::string& what) {
    // A big rebuild may outlast TimeoutStartSec: each step asks for more.
    systemd::notify("STATUS=" + what + "\nEXTEND_TIMEOUT_USEC=120000000");
  });
  if (!opened.ok()) {
    spdlog::error("opening the search indexes: {}", opened.message);
    return false;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  spdlog::info("store {} open; indexes ready in {} ms ({} cube(s) rebuilt, {} items indexed)",
               store_dir, ms, rebuilt, indexed);

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
  // Index changes go out once per commit group, batched.
  commits_->set_after_group([this] { indexes_.flush(); });
  activations_ = std::make_unique<ActivationTier>(*store_, *commits_, *blobs_, config_.activation);
  handler_ = std::make_unique<RequestHandler>(
      Services{config_, *store_, *commits_, indexes_, stats_, access_, plugins_,
               [this](std::function<void()> work) { run_on_worker(std::move(work)); },
               *activations_, executor_, executor_lane_});
  return true;
}

bool Daemon::listen() {
  const std::string& path = config_.socket;
  // Socket activation: systemd bound the socket (and owns its file).
  std::string activation_error;
  int passed = systemd::listening_socket(&activation_error);
  if (passed == -2) {
    spdlog::error("{}", activation_error);
    return false;
  }
  if (passed >= 0) {
    listener_ = new uv_pipe_t;
    uv_pipe_init(&loop_, listener_, 0);
    listener_->data = this;
    int rc = uv_pipe_open(listener_, passed);
    if (rc == 0)
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, &Daemon::on_connection);
    if (rc != 0) {
      spdlog::error("cannot listen on the socket systemd passed: {}", uv_strerror(rc));
      close_and_free(listener_);
      return false;
    }
    char name[256];
    size_t size = sizeof(name);
    if (uv_pipe_getsockname(listener_, name, &size) == 0) {
      config_.socket.assign(name, size);
      stats_.socket_path = config_.socket;
    }
    spdlog::info("listening on the socket systemd passed ({})", config_.socket);
    return true;
  }
  std::string parent = path.substr(0, path.rfind('/'));
  if (!parent.empty()) {
    if (std::string err = make_dirs(parent, 0755); !err.empty()) {
      spdlog::error("{}", err);
      return false;
    }
  }
  if (std::string err = claim_socket_path(path); !err.empty()) {
    spdlog::error("{}", err);
    return false;
  }
  listener_ = new uv_pipe_t;
  uv_pipe_init(&loop_, listener_, 0);
  listener_->data = this;
  int rc = uv_pipe_bind(listener_, path.c_str());
  if (rc == 0) {
    // As root the socket serves every local user (each uid is its own
    // tenant); a user's own daemon serves that user only.
    chmod(path.c_str(), geteuid() == 0 ? 0666 : 0600);
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) socket_inode_ = st.st_ino;
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, &Daemon::on_connection);
  }
  if (rc != 0) {
    spdlog::error("cannot listen on {}: {}", path, uv_strerror(rc));
    close_and_free(listener_);
    return false;
  }
  return true;
}

void Daemon::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Daemon*>(server->data);
  if (status < 0) {
    spdlog::warn("accept: {}", uv_strerror(status));
    return;
  }
  self->accept();
}

void Daemon::accept() {
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(&loop_, pipe, 0);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(pipe))) {
    close_and_free(pipe);
    return;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(pipe), &fd);
  auto peer = ipc::peer_credentials(fd);
  if (!peer) {
    spdlog::warn("refusing a connection without peer credentials");
    close_and_free(pipe);
    return;
  }
  if (connections_.size() >= config_.ipc.max_connections) {
    spdlog::warn("refusing a connection from uid {}: max_connections ({}) reached", peer->uid,
                 config_.ipc.max_connections);
    close_and_free(pipe);
    return;
  }
  std::uint64_t id = next_connection_id_++;
  auto conn = std::make_unique<Connection>(id, pipe, static_cast<std::uint32_t>(peer->uid),
                                           config_.ipc, *this);
  Connection& ref = *conn;
  connections_.emplace(id, std::move(conn));
  stats_.connections = static_cast<std::uint32_t>(connections_.size());
  spdlog::debug("connection {} from uid {} pid {}", id, peer->uid, peer->pid);
  ref.start();
}

void Daemon::on_request(Connection& conn, wire::Request::Reader request) {
  std::uint64_t id = conn.id();
  handler_->handle(conn.tenant(), id, request, [this, id](Frame frame) {
    mailbox_->post([this, id, frame = std::move(frame)] { deliver(id, frame); });
  });
}

void Daemon::deliver(std::uint64_t connection_id, const Frame& frame) {
  ++stats_.requests_served;
  auto it = connections_.find(connection_id);
  if (it == connections_.end()) return;  // the client left; drop the reply
  it->second->send(frame);
}

void Daemon::on_closed(Connection& conn) {
  handler_->connection_closed(conn.id());
  connections_.erase(conn.id());
  stats_.connections = static_cast<std::uint32_t>(connections_.size());
  maybe_finish_shutdown();
}

void Daemon::run_on_worker(std::function<void()> work) {
  struct Work {
    uv_work_t req;
    std::function<void()> fn;
  };
  auto* w = new Work{{}, std::move(work)};
  int rc = uv_queue_work(
      &loop_, &w->req,
      [](uv_work_t* r) {
        // Handlers report their own errors; anything escaping is a bug, and
        // a worker thread must not take the daemon down with it.
        try {
          reinterpret_cast<Work*>(r)->fn();
        } catch (const std::exception& e) {
          spdlog::critical("uncaught exception on a worker: {}", e.what());
        }
      },
      [](uv_work_t* r, int) { delete reinterpret_cast<Work*>(r); });
  if (rc != 0) {  // cannot happen with a valid loop; never drop the request silently
    spdlog::critical("uv_queue_work: {}", uv_strerror(rc));
    w->fn();
    delete w;
  }
}

// Retention runs as one bounded write job per tick, never two at once, so a
// large backlog is worked off a batch at a time between client writes.
void Daemon::run_retention() {
  // Reads counted since the last tick go in first, as one write.
  if (auto batch = access_.take(); !batch.empty()) {
    commits_->submit(
        {[batch = std::move(batch)](store::WriteTxn& txn) { return txn.record_access(batch); },
         [](const store::Status& s) {
           if (!s.ok()) spdlog::warn("recording access statistics: {}", s.message);
         }});
  }
  if (retention_busy_->exchange(true)) return;
  auto result = std::make_shared<store::RetentionResult>();
  const auto retention_ms = static_cast<std::int64_t>(config_.store.tombstone_retention_s) * 1000;
  const std::size_t batch = config_.store.retention_batch;
  commits_->submit({
      [result, retention_ms, batch](store::WriteTxn& txn) {
        *result = {};
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        return txn.run_retention(now, retention_ms, batch, result.get());
      },
      [this, result, busy = retention_busy_](const store::Status& s) {
        if (!s.ok()) {
          spdlog::warn("retention: {}", s.message);
        } else {
          for (auto [cube, item] : result->expired) {
            indexes_.remove(cube, item);
          }
          if (!result->expired.empty() || result->purged != 0) {
            spdlog::info("retention: {} item(s) expired, {} tombstone(s) purged",
                         result->expired.size(), result->purged);
          }
        }
        *busy = false;
      },
  });
}

// Removes blob files no committed record references, on a worker: a read
// snapshot answers "referenced?", and the grace period covers blobs whose
// referencing commit is still on its way.
void Daemon::collect_blob_garbage() {
  run_on_worker([this] {
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

void Daemon::ping_watchdog() {
  systemd::notify("WATCHDOG=1");
}

// Snapshots the indexes of cubes changed since their last snapshot, on a
// worker (one run at a time), so a restart need not rebuild them.
void Daemon::save_index_snapshots() {
  if (snapshot_busy_->exchange(true)) return;
  run_on_worker([this, busy = snapshot_busy_] {
    if (std::size_t n = indexes_.save_changed()) spdlog::debug("index snapshots of {} cube(s)", n);
    *busy = false;
  });
}

// SIGHUP: re-read the configuration file. Only log_level applies to a
// running daemon; a file with an error is refused and the running
// configuration stays.
void Daemon::reload_config() {
  if (config_.path.empty()) {
    spdlog::info("SIGHUP: no configuration file to re-read");
    return;
  }
  systemd::notify("RELOADING=1\nSTATUS=re-reading " + config_.path);
  Config fresh;
  if (std::string err = load_config_file(config_.path, &fresh); !err.empty()) {
    spdlog::error("SIGHUP: configuration not reloaded, the running one stays: {}", err);
  } else if (config_.log_level_from_command_line) {
    spdlog::info("SIGHUP: configuration re-read; log level {} (from the command line)",
                 config_.log_level);
  } else {
    config_.log_level = fresh.log_level;
    spdlog::set_level(spdlog::level::from_str(fresh.log_level));
    spdlog::info("SIGHUP: configuration re-read; log level {}", fresh.log_level);
  }
  systemd::notify("READY=1\nSTATUS=ready on " + config_.socket);
}

void Daemon::begin_shutdown(const char* why) {
  if (shutting_down_) {
    spdlog::warn("{} again: closing connections now", why);
    for (auto& [id, conn] : connections_) conn->close("shutdown forced");
    return;
  }
  shutting_down_ = true;
  systemd::notify("STOPPING=1\nSTATUS=finishing requests in flight");
  spdlog::info("{}: shutting down (finishing {} connection(s))", why, connections_.size());
  close_and_free(listener_);
  close_and_free(retention_timer_);
  close_and_free(blob_gc_timer_);
  close_and_free(snapshot_timer_);
  close_and_free(watchdog_timer_);
  close_and_free(sighup_);
  shutdown_timer_ = new uv_timer_t;
  uv_timer_init(&loop_, shutdown_timer_);
  shutdown_timer_->data = this;
  uv_timer_start(
      shutdown_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Daemon*>(t->data);
        spdlog::warn("shutdown_timeout_ms passed: closing remaining connections");
        for (auto& [id, conn] : self->connections_) conn->close("shutdown timeout");
      },
      config_.shutdown_timeout_ms, 0);
  // stop_reading() may close idle connections at once, erasing them from the
  // map through on_closed() later (close callbacks run on a later loop turn).
  for (auto& [id, conn] : connections_) conn->stop_reading();
  maybe_finish_shutdown();
}

void Daemon::maybe_finish_shutdown() {
  if (!shutting_down_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  close_and_free(shutdown_timer_);
  close_and_free(sigint_);
  close_and_free(sigterm_);
  // With its handles closed libuv restores the default disposition, which
  // would let a repeated SIGTERM kill the final commit; we are leaving anyway.
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  mailbox_->close();
}

int Daemon::run() {
  if (!open_storage()) return 1;
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    spdlog::error("uv_loop_init: {}", uv_strerror(rc));
    return 1;
  }
  loop_ready_ = true;
  mailbox_ = std::make_unique<LoopMailbox>(&loop_);
  std::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a death
  auto watch = [this](uv_signal_t*& handle, int signum) {
    handle = new uv_signal_t;
    uv_signal_init(&loop_, handle);
    handle->data = this;
    uv_signal_start(
        handle,
        [](uv_signal_t* h, int sig) {
          static_cast<Daemon*>(h->data)->begin_shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
        },
        signum);
  };
  watch(sigint_, SIGINT);
  watch(sigterm_, SIGTERM);
  sighup_ = new uv_signal_t;
  uv_signal_init(&loop_, sighup_);
  sighup_->data = this;
  uv_signal_start(
      sighup_, [](uv_signal_t* h, int) { static_cast<Daemon*>(h->data)->reload_config(); }, SIGHUP);
  if (!listen()) {
    begin_shutdown("start-up failed");
    uv_run(&loop_, UV_RUN_DEFAULT);
    return 1;
  }
  // Periodic work, each on a timer of the loop that calls a member.
  auto every = [this](uv_timer_t*& timer, std::uint64_t ms, void (Daemon::*work)()) {
    timer_calls_.push_back(std::make_unique<TimerCall>(TimerCall{this, work}));
    timer = new uv_timer_t;
    uv_timer_init(&loop_, timer);
    timer->data = timer_calls_.back().get();
    uv_timer_start(
        timer,
        [](uv_timer_t* t) {
          auto* call = static_cast<TimerCall*>(t->data);
          (call->self->*call->work)();
        },
        ms, ms);
  };
  every(retention_timer_, config_.store.retention_interval_ms, &Daemon::run_retention);
  every(blob_gc_timer_, std::uint64_t{config_.store.blob_gc_interval_s} * 1000,
        &Daemon::collect_blob_garbage);
  every(snapshot_timer_, std::uint64_t{config_.search.snapshot_interval_s} * 1000,
        &Daemon::save_index_snapshots);
  if (std::uint64_t usec = systemd::watchdog_usec()) {
    // Pinged from the loop itself: if the loop stalls, systemd notices.
    every(watchdog_timer_, std::max<std::uint64_t>(usec / 2000, 1), &Daemon::ping_watchdog);
  }
  systemd::notify("READY=1\nSTATUS=ready on " + config_.socket);
  spdlog::info("memosd {} ready on {} (data {}, pid {})", MEMOS_VERSION, config_.socket,
               config_.data_dir, getpid());
  uv_run(&loop_, UV_RUN_DEFAULT);

  commits_->stop();  // commits whatever is still queued
  // With every change applied, snapshot the indexes: the next start then
  // opens them instead of rebuilding.
  if (std::size_t n = indexes_.save_changed()) spdlog::info("index snapshots of {} cube(s)", n);
  if (socket_inode_ != 0) {
    struct stat st {};
    if (stat(config_.socket.c_str(), &st) == 0 && st.st_ino == socket_inode_) {
      unlink(config_.socket.c_str());
    }
  }
  spdlog::info("memosd stopped cleanly");
  return 0;
}

}  // namespace memos::kernel
