#include "kernel/loop_mailbox.h"

namespace memos::kernel {

LoopMailbox::LoopMailbox(uv_loop_t* loop) : async_(new uv_async_t) {
  uv_async_init(loop, async_, &LoopMailbox::on_async);
  async_->data = this;
}

LoopMailbox::~LoopMailbox() {
  close();
}

void LoopMailbox::post(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  queue_.push_back(std::move(fn));
  uv_async_send(async_);
}

void LoopMailbox::on_async(uv_async_t* handle) {
  static_cast<LoopMailbox*>(handle->data)->drain();
}

void LoopMailbox::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
}

void LoopMailbox::close() {
  drain();
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
}

}  // namespace memos::kernel
