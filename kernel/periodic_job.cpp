#include "kernel/periodic_job.h"

namespace memos::kernel {

PeriodicJob::Running::Running(std::shared_ptr<std::atomic<bool>> busy)
    : release_(std::make_shared<const Release>(std::move(busy))) {}

PeriodicJob::Running::Release::~Release() {
  // Pairs with the acquire in on_tick(): what the run wrote is visible to
  // the next one.
  busy_->store(false, std::memory_order_release);
}

PeriodicJob::PeriodicJob(uv_loop_t* loop, std::uint64_t interval_ms, Step step)
    : step_(std::move(step)) {
  loop_thread_.bind();
  timer_.open(loop, uv_timer_init);
  timer_->data = this;
  uv_timer_start(timer_.get(), &PeriodicJob::on_tick, interval_ms, interval_ms);
}

PeriodicJob::~PeriodicJob() {
  stop();
}

void PeriodicJob::stop() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  timer_.reset();
}

void PeriodicJob::on_tick(uv_timer_t* timer) {
  auto* self = static_cast<PeriodicJob*>(timer->data);
  MEMOS_ASSERT_ON_THREAD(self->loop_thread_);
  if (self->busy_->exchange(true, std::memory_order_acq_rel)) return;  // the last run goes on
  self->step_(Running(self->busy_));
}

}  // namespace memos::kernel
