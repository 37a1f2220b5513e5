#include "plugins/loader/isolated.h"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "plugins/loader/host_protocol.h"

extern char** environ;

namespace memos::plugins {

namespace hp = host_protocol;
using Clock = std::chrono::steady_clock;

struct IsolatedChannel::Pending {
  std::condition_variable cv;
  bool done = false;
  std::uint64_t generation = 0;
  std::size_t max_reply_bytes = 0;
  // The caller's, while it waits (it cannot return while the reader holds
  // mutex_ to deliver a partial); null if it takes none.
  const PartialSink* on_partial = nullptr;
  CallResult result;
};

IsolatedChannel::IsolatedChannel(Manifest manifest, IsolationPolicy policy)
    : manifest_(std::move(manifest)), policy_(std::move(policy)) {}

IsolatedChannel::~IsolatedChannel() {
  std::vector<std::thread> readers;
  {
    std::lock_guard lock(mutex_);
    quarantined_ = true;  // no restarts from here on
    kill_host_locked();
    readers.swap(readers_);
  }
  for (auto& t : readers) t.join();
}

void IsolatedChannel::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  kill_host_locked();
}

void IsolatedChannel::count_death_locked(std::uint64_t generation, bool plugins_fault) {
  if (dead_generation_ == generation) return;
  dead_generation_ = generation;
  // faults_ first: a caller that sees the new incarnation sees the fault.
  if (plugins_fault) faults_.fetch_add(1, std::memory_order_acq_rel);
  deaths_.fetch_add(1, std::memory_order_acq_rel);
}

void IsolatedChannel::kill_host_locked() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
  if (socket_) ::shutdown(socket_->fd, SHUT_RDWR);  // the reader sees the end and reaps
}

std::string IsolatedChannel::start() {
  std::unique_lock lock(mutex_);
  return spawn_locked(lock);
}

std::string IsolatedChannel::spawn_locked(std::unique_lock<std::mutex>& lock) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return std::string("socketpair: ") + std::strerror(errno);
  }
  // The child gets its end as fd 3 (dup2 clears close-on-exec there).
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  std::string fd_arg = "3";
  std::vector<std::string> args = {policy_.host_binary, "--manifest", manifest_.path, "--fd",
                                   fd_arg};
  if (policy_.memory_mb > 0) {
    args.push_back("--memory-mb");
    args.push_back(std::to_string(policy_.memory_mb));
  }
  // Settings memosd added to the manifest's own (e.g. a state folder).
  for (const auto& [key, value] : manifest_.settings) {
    args.push_back("--setting");
    args.push_back(key + "=" + value);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc =
      ::posix_spawn(&pid, policy_.host_binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    return "cannot start " + policy_.host_binary + ": " + std::strerror(rc);
  }
  socket_ = std::make_shared<HostSocket>(sv[0]);
  pid_ = pid;
  std::uint64_t generation = ++generation_;
  running_ = false;
  ready_seen_ = false;
  ready_error_.clear();
  readers_.emplace_back(
      [this, socket = socket_, pid, generation] { read_loop(socket, pid, generation); });
  if (!ready_cv_.wait_for(lock, policy_.start_timeout,
                          [&] { return ready_seen_ || generation_ != generation; }) ||
      generation_ != generation) {
    kill_host_locked();
    return "plugin " + manifest_.name + ": its host did not start in time";
  }
  if (!ready_error_.empty()) {
    kill_host_locked();
    return ready_error_;
  }
  running_ = true;
  return "";
}

IsolatedChannel::HostSocket::~HostSocket() {
  ::close(fd);
}

void IsolatedChannel::read_loop(std::shared_ptr<HostSocket> socket, pid_t pid,
                                std::uint64_t generation) {
  hp::Frame frame;
  while (hp::read_frame(socket->fd, &frame)) {
    std::lock_guard lock(mutex_);
    if (frame.kind == hp::kReady) {
      ready_seen_ = true;
      if (frame.status != MEMOS_OK) {
        ready_error_ = frame.payload.empty() ? "the plugin failed to load" : frame.payload;
      }
      ready_cv_.notify_all();
      continue;
    }
    auto it = pending_.find(frame.id);
    if (it == pending_.end()) continue;  // a call that gave up waiting
    if (frame.kind == hp::kPartial) {
      const PartialSink* sink = it->second->on_partial;
      if (sink && frame.payload.size() <= kMaxPartialBytes) (*sink)(frame.payload);
      continue;
    }
    if (frame.kind != hp::kComplete) continue;
    auto& p = *it->second;
    p.done = true;
    p.result.status = hp::call_status(frame.status);
    if (frame.flags & hp::kTextPayload) {
      p.result.message = frame.payload;
    } else if (frame.payload.size() > p.max_reply_bytes) {
      p.result.status = MEMOS_ERR_INTERNAL;
      p.result.message = "the plugin's reply is larger than the limit";
    } else {
      p.result.reply = std::move(frame.payload);
    }
    p.cv.notify_all();
    pending_.erase(it);
  }
  // The host is gone: how it went tells whether it crashed.
  int status = 0;
  ::waitpid(pid, &status, 0);
  socket.reset();  // closed once no call holds it either
  std::string why = WIFSIGNALED(status)
                        ? "killed by signal " + std::to_string(WTERMSIG(status))
                        : "exited with status " + std::to_string(WEXITSTATUS(status));
  // memosd's kill of a hung host was counted, as the plugin's fault, when
  // it sent it; any other SIGKILL came from outside (or is memosd stopping).
  host_died(generation, why, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

void IsolatedChannel::host_died(std::uint64_t generation, const std::string& why,
                                bool outside_kill) {
  std::lock_guard lock(mutex_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second->generation == generation) {
      auto& p = *it->second;
      p.done = true;
      p.result = {MEMOS_ERR_BUSY, "", "plugin " + manifest_.name + " died (" + why + ")"};
      p.cv.notify_all();
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (generation != generation_) return;  // an older host; already handled
  count_death_locked(generation, !outside_kill);
  bool was_running = running_;
  running_ = false;
  socket_.reset();
  pid_ = -1;
  ready_cv_.notify_all();
  if (stopped_ || (quarantined_ && !was_running)) return;  // shutting down
  auto now = Clock::now();
  crash_times_.push_back(now);
  while (!crash_times_.empty() && now - crash_times_.front() > policy_.crash_window) {
    crash_times_.pop_front();
  }
  ++total_crashes_;
  last_crash_ = why;
  backoff_ =
      backoff_.count() == 0 ? policy_.backoff_initial : std::min(backoff_ * 2, policy_.backoff_max);
  restart_after_ = now + backoff_;
  if (crash_times_.size() >= policy_.max_crashes && !quarantined_) {
    quarantined_ = true;
    spdlog::error("plugin {} quarantined: its host died {} times within {} s (last: {})",
                  manifest_.name, crash_times_.size(), policy_.crash_window.count() / 1000, why);
  } else if (!quarantined_) {
    spdlog::warn("plugin {}: host {}; restarting in {} ms", manifest_.name, why, backoff_.count());
  }
}

CallResult IsolatedChannel::call(const std::string& request, std::chrono::milliseconds timeout,
                                 std::size_t max_reply_bytes, const PartialSink& on_partial) {
  std::unique_lock lock(mutex_);
  if (stopped_) return {MEMOS_ERR_BUSY, "", "plugin " + manifest_.name + " is stopping"};
  if (quarantined_) {
    return {MEMOS_ERR_BUSY, "",
            "plugin " + manifest_.name + " is quarantined after repeated crashes (last: " +
                last_crash_ + "); `memctl plugin reload " + manifest_.name + "` to try again"};
  }
  if (!running_) {
    if (Clock::now() < restart_after_) {
      return {MEMOS_ERR_BUSY, "", "plugin " + manifest_.name + " is restarting"};
    }
    if (std::string err = spawn_locked(lock); !err.empty()) {
      host_died(generation_, "failed to start: " + err);
      return {MEMOS_ERR_BUSY, "", err};
    }
  }
  auto pending = std::make_shared<Pending>();
  pending->generation = generation_;
  pending->max_reply_bytes = max_reply_bytes;
  if (on_partial) pending->on_partial = &on_partial;
  std::uint64_t id = next_id_++;
  pending_.emplace(id, pending);
  std::shared_ptr<HostSocket> socket = socket_;
  lock.unlock();
  bool sent;
  {
    std::lock_guard write_lock(write_mutex_);
    sent = hp::write_frame(socket->fd, {hp::kCall, 0, 0, id, request});
  }
  lock.lock();
  // A failed write means the host is gone; the reader fails the call soon.
  if (!pending->cv.wait_for(lock, timeout, [&] { return pending->done; })) {
    pending_.erase(id);
    if (pending->generation == generation_) {
      spdlog::warn("plugin {} did not answer within {} ms: taking it for hung, restarting",
                   manifest_.name, timeout.count());
      // Counted now, not when the reader sees it go: the caller learns from
      // this very failure that the host's state is lost.
      count_death_locked(generation_, true);
      kill_host_locked();
    }
    return {MEMOS_ERR_BUSY, "", "plugin " + manifest_.name + " did not answer in time"};
  }
  (void)sent;
  if (pending->result.status == MEMOS_OK) backoff_ = std::chrono::milliseconds(0);
  return pending->result;
}

std::string IsolatedChannel::health() const {
  std::lock_guard lock(mutex_);
  if (quarantined_) return "quarantined (last: " + last_crash_ + ")";
  if (!running_ && total_crashes_ > 0) return "restarting (last: " + last_crash_ + ")";
  return running_ ? "running" : "stopped";
}

unsigned IsolatedChannel::crashes() const {
  std::lock_guard lock(mutex_);
  return total_crashes_;
}

void IsolatedChannel::reset_quarantine() {
  std::lock_guard lock(mutex_);
  quarantined_ = false;
  crash_times_.clear();
  backoff_ = std::chrono::milliseconds(0);
  restart_after_ = {};
}

}  // namespace memos::plugins
