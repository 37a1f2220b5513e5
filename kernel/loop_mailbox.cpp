#include "kernel/loop_mailbox.h"

namespace memos::kernel {

LoopMailbox::LoopMailbox(uv_loop_t* loop) {
  loop_thread_.bind();
  async_.open(loop, uv_async_init, &LoopMailbox::on_async);
  async_->data = this;
}

LoopMailbox::~LoopMailbox() {
  close();
}

void LoopMailbox::post(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  queue_.push_back(std::move(fn));
  // One wake-up per batch: a queue that was not empty already has one
  // coming (drain() empties it under the mutex, so nothing is missed).
  if (queue_.size() == 1) uv_async_send(async_.get());
}

void LoopMailbox::on_async(uv_async_t* handle) {
  static_cast<LoopMailbox*>(handle->data)->drain();
}

void LoopMailbox::drain() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
}

void LoopMailbox::close() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  drain();
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  // No post() reaches the handle any more (closed_ is set under the mutex).
  async_.reset();
}

}  // namespace memos::kernel
