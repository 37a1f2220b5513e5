#include "kernel/fair_queue.h"

#include <algorithm>

namespace memos::kernel {

void FairQueue::push(Job job) {
  Flow& f = flows_[job.tenant];
  f.weight = std::max<std::uint32_t>(1, job.weight);  // the policy of the latest job
  if (f.queued == 0) {
    f.next_start = std::max(virtual_now_, f.last_finish);
    backlogged_.insert({f.next_start, job.tenant});
  }
  auto& line = f.by_connection[job.connection];
  if (line.empty()) f.turn.push_back(job.connection);
  line.push_back(std::move(job));
  ++f.queued;
  ++size_;
}

std::optional<FairQueue::Job> FairQueue::pop() {
  if (backlogged_.empty()) return std::nullopt;
  auto [start, tenant] = *backlogged_.begin();
  backlogged_.erase(backlogged_.begin());
  auto fit = flows_.find(tenant);
  Flow& f = fit->second;
  const std::uint64_t connection = f.turn.front();
  f.turn.pop_front();
  auto line = f.by_connection.find(connection);
  Job job = std::move(line->second.front());
  line->second.pop_front();
  if (line->second.empty()) {
    f.by_connection.erase(line);
  } else {
    f.turn.push_back(connection);  // its next job waits for its siblings' turns
  }
  --f.queued;
  --size_;
  virtual_now_ = start;
  f.last_finish = start + 1.0 / f.weight;
  if (f.queued > 0) {
    f.next_start = f.last_finish;
    backlogged_.insert({f.next_start, tenant});
  } else if (f.last_finish <= virtual_now_) {
    flows_.erase(fit);  // nothing to remember: it would start at now anyway
  }
  // With nothing waiting no one is behind or ahead: start afresh. While work
  // waits, idle flows whose last job ended before now are forgotten, so that
  // many tenants passing through do not grow the map.
  if (size_ == 0) {
    flows_.clear();
    virtual_now_ = 0;
  } else if (++pops_ % 1024 == 0) {
    for (auto it = flows_.begin(); it != flows_.end();) {
      bool idle = it->second.queued == 0 && it->second.last_finish <= virtual_now_;
      it = idle ? flows_.erase(it) : std::next(it);
    }
  }
  return job;
}

}  // namespace memos::kernel
