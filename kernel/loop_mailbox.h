// loop_mailbox.h — hands closures from any thread to the libuv loop thread.
//
// Worker threads and the writer thread never touch sockets; they post their
// results here and the loop runs them in order on its own thread. Posts that
// arrive while a batch waits share its one wake-up (uv_async_send).
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

#include "kernel/uv_handle.h"
#include "memcube/thread_affinity.h"

namespace memos::kernel {

class LoopMailbox {
 public:
  // Must be constructed on the loop thread (it binds to it); `loop`
  // outlives the mailbox.
  explicit LoopMailbox(uv_loop_t* loop);
  // Loop thread: close()s.
  ~LoopMailbox();
  LoopMailbox(const LoopMailbox&) = delete;
  LoopMailbox& operator=(const LoopMailbox&) = delete;

  // Thread-safe. After close(), posted closures are dropped.
  void post(std::function<void()> fn);
  // Loop thread: runs what is queued, then closes the handle. Idempotent.
  void close();

 private:
  static void on_async(uv_async_t* handle);
  void drain();

  ThreadAffinity loop_thread_;
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool closed_ = false;  // under mutex_: no uv_async_send() once set
  UvHandle<uv_async_t> async_;
};

}  // namespace memos::kernel
