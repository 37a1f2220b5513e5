#include "kernel/daemon.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "ipc/unix_peer.h"
#include "kernel/config_discovery.h"
#include "kernel/log_output.h"
#include "kernel/systemd.h"

namespace memos::kernel {
namespace {

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

Daemon::Daemon(Config config)
    : config_(std::move(config)),
      limits_(config_.ipc, static_cast<std::uint32_t>(geteuid())),
      user_namespace_(UserNamespace::current()),
      plugins_(config_.plugins),
      tenants_(config_.policies_dir, default_policies_dir(config_.path),
               static_cast<std::uint32_t>(geteuid()),
               std::make_unique<policies::SystemDirectory>()) {
  // As main() does: SIGHUP compares the file with this, filled the same way.
  resolve_defaults(&config_);
  as_configured_ = config_;
  stats_.socket_path = config_.socket;
  worker_slots_ = worker_thread_count(config_);
  stats_.data_dir = config_.data_dir;
}

Daemon::~Daemon() {
  stop();
}

// The one stop sequence, in the order the parts depend on each other (the
// members' declaration order plays no part):
void Daemon::stop() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  // A generation still running (its client gone at the shutdown timeout)
  // must not hold the stop for minutes.
  if (executor_) executor_->stop();
  answer_models_.stop();
  // The executor lane is a thread of its own, which the loop ending does not
  // wait for: join it while the mailbox its replies go to still exists.
  executor_lane_.stop();
  // The writer was drained at the end of run(); this covers a start-up that
  // failed after it started. Before the handler goes: a queued job's
  // completion may still reach it.
  if (commits_) commits_->stop();
  if (cluster_) cluster_->stop();
  indexes_.stop();
  handler_.reset();
  close_loop();
}

// Closes what still holds a handle, lets the loop run the close callbacks
// (which free the handles), then closes the loop.
void Daemon::close_loop() {
  if (!loop_open_) return;
  connections_.clear();
  periodic_jobs_.clear();
  listener_.reset();
  shutdown_timer_.reset();
  sigint_.reset();
  sigterm_.reset();
  sighup_.reset();
  mailbox_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) spdlog::error("uv_loop_close: {} (a libuv handle left open)", uv_strerror(rc));
  assert(rc == 0 && "a libuv handle outlived its owner");
  loop_open_ = false;
}

bool Daemon::open_loop() {
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    spdlog::error("uv_loop_init: {}", uv_strerror(rc));
    return false;
  }
  loop_open_ = true;
  mailbox_ = std::make_unique<LoopMailbox>(&loop_);
  mailbox_open_ = true;
  return true;
}

// SIGINT and SIGTERM begin the shutdown; SIGHUP re-reads the configuration.
bool Daemon::watch_signals() {
  auto watch = [this](UvHandle<uv_signal_t>& handle, int signum, uv_signal_cb on_signal) {
    int rc = handle.open(&loop_, uv_signal_init);
    if (rc == 0) {
      handle->data = this;
      rc = uv_signal_start(handle.get(), on_signal, signum);
    }
    if (rc != 0) spdlog::error("cannot watch signal {}: {}", signum, uv_strerror(rc));
    return rc == 0;
  };
  auto stop_on = [](uv_signal_t* h, int sig) {
    static_cast<Daemon*>(h->data)->begin_shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
  };
  return watch(sigint_, SIGINT, stop_on) && watch(sigterm_, SIGTERM, stop_on) &&
         watch(sighup_, SIGHUP,
               [](uv_signal_t* h, int) { static_cast<Daemon*>(h->data)->reload_config(); });
}

// Socket activation: systemd bound the socket (and owns its file).
bool Daemon::listen_on_passed_socket(int fd) {
  listener_.open(&loop_, uv_pipe_init, 0);
  listener_->data = this;
  int rc = uv_pipe_open(listener_.get(), fd);
  if (rc == 0) rc = uv_listen(listener_.stream(), 128, &Daemon::on_connection);
  if (rc != 0) {
    spdlog::error("cannot listen on the socket systemd passed: {}", uv_strerror(rc));
    listener_.reset();
    return false;
  }
  char name[256];
  size_t size = sizeof(name);
  if (uv_pipe_getsockname(listener_.get(), name, &size) == 0) {
    config_.socket.assign(name, size);
    stats_.socket_path = config_.socket;
  }
  socket_passed_ = true;
  spdlog::info("listening on the socket systemd passed ({})", config_.socket);
  return true;
}

bool Daemon::listen() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  std::string activation_error;
  int passed = systemd::listening_socket(&activation_error);
  if (passed == -2) {
    spdlog::error("{}", activation_error);
    return false;
  }
  if (passed >= 0) return listen_on_passed_socket(passed);
  const std::string& path = config_.socket;
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
  listener_.open(&loop_, uv_pipe_init, 0);
  listener_->data = this;
  int rc = uv_pipe_bind(listener_.get(), path.c_str());
  if (rc == 0) {
    // As root the socket serves every local user (each uid is its own
    // tenant); a user's own daemon serves that user only.
    chmod(path.c_str(), geteuid() == 0 ? 0666 : 0600);
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) socket_inode_ = st.st_ino;
    rc = uv_listen(listener_.stream(), 128, &Daemon::on_connection);
  }
  if (rc != 0) {
    spdlog::error("cannot listen on {}: {}", path, uv_strerror(rc));
    listener_.reset();
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
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  // A pipe refused below is closed (and freed) when `pipe` goes.
  UvHandle<uv_pipe_t> pipe;
  pipe.open(&loop_, uv_pipe_init, 0);
  if (uv_accept(listener_.stream(), pipe.stream())) return;
  uv_os_fd_t fd = -1;
  uv_fileno(pipe.base(), &fd);
  auto peer = ipc::peer_credentials(fd);
  if (!peer) {
    spdlog::warn("refusing a connection without peer credentials");
    return;
  }
  auto uid = static_cast<std::uint32_t>(peer->uid);
  Status refusal = check_peer(*peer);
  std::uint64_t id = next_connection_id_++;
  auto conn = std::make_unique<Connection>(id, std::move(pipe), uid, config_.ipc, limits_,
                                           read_buffer_, *this);
  Connection& ref = *conn;
  connections_.emplace(id, std::move(conn));
  stats_.connections = static_cast<std::uint32_t>(connections_.size());
  if (!refusal.ok()) {
    // A flood of refusals logs the 1st, 2nd, 4th, 8th... of each uid.
    std::uint64_t n = limits_.note_refusal(uid);
    if ((n & (n - 1)) == 0) {
      spdlog::warn("refusing a connection from uid {} pid {} ({} so far): {}", uid, peer->pid, n,
                   refusal.message);
    }
    ref.refuse(refusal);
    return;
  }
  limits_.opened(uid);
  spdlog::debug("connection {} from uid {} pid {}", id, uid, peer->pid);
  ref.start();
}

// Who may connect now: a peer whose uid memosd cannot see is refused for
// good (it would share a tenant with every other unseen user), and so is one
// the tenant policies refuse; past the connection limits, a retryable busy.
Status Daemon::check_peer(const ipc::PeerCredentials& peer) const {
  if (std::string why = user_namespace_.unmapped_peer(peer.uid, peer.gid); !why.empty()) {
    return Status::permission_denied(why);
  }
  Status refusal;
  tenants_.peer(static_cast<std::uint32_t>(peer.uid), &refusal);
  if (!refusal.ok()) return refusal;
  return limits_.admit(static_cast<std::uint32_t>(peer.uid));
}

// Each connection is a file descriptor: take all the kernel allows this
// process (the soft limit is often 1024, below max_connections).
void Daemon::raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      spdlog::warn("cannot raise the open-file limit from {}: {}", before, std::strerror(errno));
      getrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  // The store, indexes, plugins and the listener need some for themselves.
  constexpr rlim_t kOwnFiles = 256;
  rlim_t wanted =
      rlim_t{config_.ipc.max_connections} + config_.ipc.admin_reserved_connections + kOwnFiles;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    spdlog::warn(
        "the open-file limit ({}) is below ipc.max_connections + admin_reserved_connections + "
        "{}: connections past it fail to be accepted; raise LimitNOFILE= or lower "
        "ipc.max_connections",
        limit.rlim_cur, kOwnFiles);
  }
}

void Daemon::on_closed(Connection& conn) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (!conn.refused()) limits_.closed(conn.uid());
  handler_->connection_closed(conn.id());
  connections_.erase(conn.id());
  stats_.connections = static_cast<std::uint32_t>(connections_.size());
  maybe_finish_shutdown();
}

// uv_queue_work() is not thread-safe: work from another thread (the writer
// handing an import's indexing on) goes through the loop first. Work queued
// while a request is dispatched is that request's tenant's; other work
// (periodic jobs, what the writer hands on) is the daemon's own, served
// first. It waits in the fair queue until a worker is free (pump_workers).
void Daemon::run_on_worker(std::function<void()> work) {
  if (!loop_thread_.on_owner()) {
    mailbox_->post([this, work = std::move(work)]() mutable { run_on_worker(std::move(work)); });
    return;
  }
  FairQueue::Job job{kDaemonFlow, 10000, 0, std::move(work)};
  if (config_.fair_scheduling && dispatching_) {
    job.tenant = dispatching_->tenant;
    job.weight = dispatching_->weight;
    job.connection = dispatching_->connection;
  } else if (!config_.fair_scheduling) {
    job.tenant = 0;  // one flow, one line: arrival order
    job.weight = 100;
  }
  waiting_work_.push(std::move(job));
  pump_workers();
}

// Hands waiting work to the pool while it has a free thread; each job's end
// (on the loop) hands on the next.
void Daemon::pump_workers() {
  while (running_work_ < worker_slots_) {
    auto job = waiting_work_.pop();
    if (!job) return;
    ++running_work_;
    queue_work(std::move(job->work));
  }
}

void Daemon::queue_work(std::function<void()> work) {
  struct Work {
    uv_work_t req;
    std::function<void()> fn;
    Daemon* self;
  };
  auto* w = new Work{{}, std::move(work), this};
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
      [](uv_work_t* r, int) {
        auto* done = reinterpret_cast<Work*>(r);
        Daemon* self = done->self;
        delete done;
        --self->running_work_;
        self->pump_workers();
      });
  if (rc != 0) {  // cannot happen with a valid loop; never drop the request silently
    spdlog::critical("uv_queue_work: {}", uv_strerror(rc));
    w->fn();
    delete w;
    --running_work_;
  }
}

// SIGHUP: re-read the configuration file, then the tenant policies (their
// folder as policies_dir now names it). log_level and log_format apply to
// the running daemon; the other keys are read once, at start, by parts that
// keep them (the store's map, the plugins, the limits of each connection),
// so a change to them is named in a warning and waits for a restart. A file
// with an error is refused and the running configuration stays.
void Daemon::reload_config() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (config_.path.empty()) {
    spdlog::info("SIGHUP: no configuration file to re-read (none was found at start)");
    return reload_policies("SIGHUP");
  }
  systemd::notify("RELOADING=1\nSTATUS=re-reading " + config_.path);
  Config fresh;
  if (std::string err = load_config_file(config_.path, &fresh); !err.empty()) {
    spdlog::error("SIGHUP: configuration not reloaded, the running one stays: {}", err);
  } else {
    fresh.command_line = config_.command_line;
    apply_command_line(&fresh);
    resolve_defaults(&fresh);
    std::string need_restart;
    for (const std::string& key : changed_keys(as_configured_, fresh)) {
      if (key == "log_level" || key == "log_format" || key == "policies_dir") continue;
      if (key == "socket" && socket_passed_) continue;
      need_restart += (need_restart.empty() ? "" : ", ") + key;
    }
    config_.log_level = as_configured_.log_level = fresh.log_level;
    config_.log_format = as_configured_.log_format = fresh.log_format;
    spdlog::set_level(spdlog::level::from_str(config_.log_level));
    set_log_format(config_.log_format);
    spdlog::info("SIGHUP: configuration re-read; log level {}{}, log format {}", config_.log_level,
                 config_.command_line.log_level.empty() ? "" : " (from the command line)",
                 to_string(config_.log_format));
    if (!need_restart.empty()) {
      spdlog::warn("SIGHUP: changed in {} but applied only at a restart: {}", config_.path,
                   need_restart);
    }
    config_.policies_dir = as_configured_.policies_dir = fresh.policies_dir;
    tenants_.set_folder(config_.policies_dir);
  }
  systemd::notify("READY=1\nSTATUS=ready on " + config_.socket);
  reload_policies("SIGHUP");
}

// The policy folder is read on a worker (files, NSS lookups); the new set
// applies to every request from the moment it is swapped in.
void Daemon::reload_policies(const char* why) {
  // The outcome is logged; the running policies stay on a failure.
  run_on_worker([this, why] {
    // A cluster's nodes learn at once whether they still agree.
    if (tenants_.reload(why).ok() && cluster_)
      cluster_->check_policies(ClusterNode::kPolicyCheckTimeout);
  });
}

void Daemon::behind_cluster_log(const std::string& fault) {
  spdlog::error("cluster {}: {}", config_.cluster.name, fault);
  behind_cluster_log_ = true;
  if (mailbox_open_) mailbox_->post([this] { leave_behind_cluster_log(); });
}

void Daemon::leave_behind_cluster_log() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (exit_status_ == kExitBehindClusterLog || shutting_down_) return;
  exit_status_ = kExitBehindClusterLog;
  spdlog::warn(
      "cluster {}: this node's store is behind the compacted log; stopping, to be restarted "
      "(exit status {}): a start takes the cluster's newest store snapshot",
      config_.cluster.name, kExitBehindClusterLog);
  begin_shutdown("behind the compacted log");
}

void Daemon::begin_shutdown(const char* why) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (shutting_down_) {
    spdlog::warn("{} again: closing connections now", why);
    for (auto& [id, conn] : connections_) conn->close("shutdown forced");
    return;
  }
  shutting_down_ = true;
  systemd::notify("STOPPING=1\nSTATUS=finishing requests in flight");
  spdlog::info("{}: shutting down (finishing {} connection(s))", why, connections_.size());
  listener_.reset();
  // Runs in flight finish on their own; their busy flags outlive the jobs.
  periodic_jobs_.clear();
  sighup_.reset();
  shutdown_timer_.open(&loop_, uv_timer_init);
  shutdown_timer_->data = this;
  uv_timer_start(
      shutdown_timer_.get(),
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

// Once the last connection is gone, closes the last handles: uv_run() then
// returns.
void Daemon::maybe_finish_shutdown() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (!shutting_down_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  shutdown_timer_.reset();
  sigint_.reset();
  sigterm_.reset();
  // With its handles closed libuv restores the default disposition, which
  // would let a repeated SIGTERM kill the final commit; we are leaving anyway.
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  mailbox_->close();
}

int Daemon::run() {
  loop_thread_.bind();
  inline_reads_.bind();
  if (!build_services()) return 1;
  if (!open_loop()) return 1;
  std::signal(SIGPIPE, SIG_IGN);  // a vanished client is a write error, not a death
  raise_open_file_limit();
  if (std::string warning = user_namespace_.start_warning(); !warning.empty()) {
    spdlog::warn("{}", warning);
  }
  if (!watch_signals() || !listen()) {
    begin_shutdown("start-up failed");
    uv_run(&loop_, UV_RUN_DEFAULT);
    return 1;
  }
  start_periodic_jobs();
  systemd::notify("READY=1\nSTATUS=ready on " + config_.socket);
  spdlog::info("memosd {} ready on {} (data {}, pid {})", MEMOS_VERSION, config_.socket,
               config_.data_dir, getpid());
  // A shard that stopped behind the log while the node joined (its mailbox
  // did not exist yet).
  if (behind_cluster_log_) leave_behind_cluster_log();
  uv_run(&loop_, UV_RUN_DEFAULT);
  after_loop();
  spdlog::info("memosd stopped cleanly{}",
               exit_status_ == 0 ? "" : " (exit status " + std::to_string(exit_status_) + ")");
  return exit_status_;
}

// Every connection is gone and the loop has returned.
void Daemon::after_loop() {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  };
  // The router's last spending goes in with whatever is still queued.
  flush_router_ledger(PeriodicJob::Running(std::make_shared<std::atomic<bool>>(true)));
  commits_->stop();  // commits whatever is still queued
  // Then an owner gives the store's lease back: a follower takes over now,
  // not when the lease lapses.
  if (cluster_) cluster_->stop();
  const auto indexing = Clock::now();
  const IndexLag backlog = indexes_.lag();
  indexes_.stop();  // indexes it (the backlog is bounded: index_max_backlog)
  if (backlog.backlog != 0) {
    spdlog::info("indexed the last {} write(s) in {} ms", backlog.backlog, ms_since(indexing));
  }
  // With every change applied, snapshot the indexes: the next start then
  // opens them instead of catching up. Bounded, so that a stop ends in
  // time (systemd's TimeoutStopSec) whatever the cubes' sizes: a
  // snapshot left unwritten costs the next start a catch-up, not a rebuild.
  const auto saving = Clock::now();
  if (std::size_t n =
          indexes_.save_changed(saving + std::chrono::seconds(config_.search.stop_snapshot_s))) {
    spdlog::info("index snapshots of {} cube(s) in {} ms", n, ms_since(saving));
  }
  remove_socket();
}

void Daemon::remove_socket() {
  if (socket_inode_ == 0) return;
  struct stat st {};
  if (stat(config_.socket.c_str(), &st) == 0 && st.st_ino == socket_inode_) {
    unlink(config_.socket.c_str());
  }
}

}  // namespace memos::kernel
