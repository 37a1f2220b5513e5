// isolated.h — a plugin in its own process (memos-plugin-host).
//
// Calls cross a socketpair as host_protocol frames carrying the same bytes
// an in-process plugin sees. When the host dies (crash, abort, exit) every
// call in flight fails with MEMOS_ERR_BUSY (retryable) and the host is
// started again on a later call, after a backoff that doubles up to a
// limit. A call past its deadline is taken for a hang: the host is killed
// and restarted the same way. A plugin whose host dies `max_crashes` times
// within `crash_window` is quarantined: calls fail at once until
// reset_quarantine().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "plugins/loader/channel.h"
#include "plugins/loader/manifest.h"

namespace memos::plugins {

struct IsolationPolicy {
  std::string host_binary;  // memos-plugin-host
  unsigned max_crashes = 3;
  std::chrono::milliseconds crash_window{60000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds start_timeout{10000};
  // The host's memory limit (memos-plugin-host --memory-mb); 0: none.
  std::uint64_t memory_mb = 0;
};

class IsolatedChannel final : public PluginChannel {
 public:
  IsolatedChannel(Manifest manifest, IsolationPolicy policy);
  ~IsolatedChannel() override;  // ends the host
  IsolatedChannel(const IsolatedChannel&) = delete;
  IsolatedChannel& operator=(const IsolatedChannel&) = delete;

  // Starts the host and waits for it to load the plugin. Returns "" or why
  // it could not (the host's own message when it says one).
  std::string start();

  CallResult call(const std::string& request, std::chrono::milliseconds timeout,
                  std::size_t max_reply_bytes, const PartialSink& on_partial = {}) override;
  std::string health() const override;
  std::uint64_t incarnation() const override { return deaths_.load(std::memory_order_acquire); }
  std::uint64_t plugin_faults() const override { return faults_.load(std::memory_order_acquire); }
  // Kills the host, and starts no other.
  void stop() override;
  void reset_quarantine() override;
  unsigned crashes() const;

 private:
  struct Pending;
  std::string spawn_locked(std::unique_lock<std::mutex>& lock);
  // One host's end of the socketpair, closed when its last user lets go:
  // the reader that saw the host die must not close it under a call that
  // is about to write to it (the number could by then name another file).
  struct HostSocket {
    int fd = -1;
    explicit HostSocket(int f) : fd(f) {}
    ~HostSocket();
    HostSocket(const HostSocket&) = delete;
    HostSocket& operator=(const HostSocket&) = delete;
  };
  void read_loop(std::shared_ptr<HostSocket> socket, pid_t pid, std::uint64_t generation);
  // `outside_kill`: SIGKILL that memosd did not send.
  void host_died(std::uint64_t generation, const std::string& why, bool outside_kill = false);
  void kill_host_locked();

  Manifest manifest_;
  IsolationPolicy policy_;
  mutable std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::shared_ptr<HostSocket> socket_;  // the current host's; null when none
  pid_t pid_ = -1;
  std::uint64_t generation_ = 0;  // of the current host; stale readers see a change
  bool running_ = false;
  std::string ready_error_;
  bool ready_seen_ = false;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<Pending>> pending_;
  std::deque<std::chrono::steady_clock::time_point> crash_times_;
  unsigned total_crashes_ = 0;
  // Hosts that died (incarnation()): bumped the moment the reader sees one
  // go, before any restart, so callers never query a fresh host as if it
  // held the old one's state.
  std::atomic<std::uint64_t> deaths_{0};
  std::atomic<std::uint64_t> faults_{0};  // plugin_faults()
  std::uint64_t dead_generation_ = 0;     // the last host counted in deaths_
  // `plugins_fault`: the plugin brought it on itself (plugin_faults()).
  void count_death_locked(std::uint64_t generation, bool plugins_fault);
  bool quarantined_ = false;
  bool stopped_ = false;  // stop(): no calls, no restarts
  std::string last_crash_;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point restart_after_{};
  std::mutex write_mutex_;
  std::vector<std::thread> readers_;
};

}  // namespace memos::plugins
