// daemon.h — memosd's process: storage, indexes, the loop and its clients.
//
// One libuv loop thread owns the listening socket, the connections, timers
// and signals and never blocks; reads, searches and embedding run on libuv's
// worker pool; one writer thread (store::CommitQueue) commits.
//
// Start-up order: lock the data folder, open the store, rebuild the indexes,
// start the writer, bind the socket. Shutdown on SIGINT/SIGTERM: stop
// accepting and reading, let requests in flight finish and their replies be
// written (at most shutdown_timeout_ms), then stop the writer (it commits
// what is queued), close the store and remove the socket.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernel/access_log.h"
#include "kernel/activation_tier.h"
#include "kernel/config.h"
#include "kernel/connection.h"
#include "kernel/data_lock.h"
#include "kernel/index_set.h"
#include "kernel/loop_mailbox.h"
#include "kernel/plugin_manager.h"
#include "kernel/request_handler.h"
#include "kernel/serial_lane.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::kernel {

class Daemon final : public ConnectionOwner {
 public:
  // `config` must have passed validate_config().
  explicit Daemon(Config config);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until SIGINT or SIGTERM. Returns the exit status: 0 after a clean
  // shutdown, 1 if start-up failed (the reason is logged).
  int run();

  void on_request(Connection& conn, wire::Request::Reader request) override;
  void on_closed(Connection& conn) override;

 private:
  bool open_storage();
  bool listen();
  void accept();
  static void on_connection(uv_stream_t* server, int status);
  void reload_config();
  void deliver(std::uint64_t connection_id, const Frame& frame);
  void begin_shutdown(const char* why);
  void maybe_finish_shutdown();
  void run_on_worker(std::function<void()> work);
  void run_retention();
  void collect_blob_garbage();
  void save_index_snapshots();
  void ping_watchdog();

  Config config_;
  PluginManager plugins_;
  DaemonStats stats_;
  std::unique_ptr<DataLock> lock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<store::CommitQueue> commits_;
  IndexSet indexes_;
  AccessLog access_;
  std::shared_ptr<PluginExecutor> executor_;  // null: no executor.model
  std::unique_ptr<ActivationTier> activations_;
  // Owned here, shared through Services; stopped (joined) in ~Daemon while
  // the mailbox its jobs reply through still exists.
  SerialLane executor_lane_;
  std::unique_ptr<RequestHandler> handler_;

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::unique_ptr<LoopMailbox> mailbox_;
  uv_pipe_t* listener_ = nullptr;
  uv_signal_t* sigint_ = nullptr;
  uv_signal_t* sigterm_ = nullptr;
  uv_timer_t* shutdown_timer_ = nullptr;
  uv_timer_t* retention_timer_ = nullptr;
  uv_timer_t* watchdog_timer_ = nullptr;
  uv_signal_t* sighup_ = nullptr;
  uv_timer_t* blob_gc_timer_ = nullptr;
  uv_timer_t* snapshot_timer_ = nullptr;
  // What a periodic timer calls (its handle's data), kept for the daemon's life.
  struct TimerCall {
    Daemon* self;
    void (Daemon::*work)();
  };
  std::vector<std::unique_ptr<TimerCall>> timer_calls_;
  std::shared_ptr<std::atomic<bool>> snapshot_busy_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> retention_busy_ = std::make_shared<std::atomic<bool>>(false);
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t next_connection_id_ = 1;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::uint64_t socket_inode_ = 0;  // to remove only the socket we created
};

}  // namespace memos::kernel
