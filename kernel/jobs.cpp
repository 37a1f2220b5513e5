#include "kernel/jobs.h"

#include <algorithm>

#include "kernel/wire_replies.h"

namespace memos::kernel {

const char* to_string(JobState state) {
  switch (state) {
    case JobState::queued:
      return "queued";
    case JobState::running:
      return "running";
    case JobState::done:
      return "done";
    case JobState::failed:
      return "failed";
    case JobState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

Status JobTable::add(Job job, std::uint64_t* id) {
  std::lock_guard lock(mutex_);
  const auto open = std::count_if(jobs_.begin(), jobs_.end(), [&](const auto& j) {
    return j.second.tenant == job.tenant && !j.second.finished();
  });
  if (static_cast<std::size_t>(open) >= kMaxOpenPerTenant) {
    return {Code::busy,
            "you have " + std::to_string(open) + " jobs running or queued; wait for one", true};
  }
  job.id = next_id_++;
  job.state = JobState::queued;
  job.created_at_ms = now_ms();
  *id = job.id;
  jobs_.emplace(job.id, std::move(job));
  return {};
}

void JobTable::update(std::uint64_t id, const std::function<void(Job&)>& change) {
  std::function<void()> next;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    const bool was_finished = it->second.finished();
    change(it->second);
    if (!was_finished && it->second.finished()) {
      it->second.finished_at_ms = now_ms();
      next = leave_line(id);
      trim(it->second.tenant);
    }
  }
  if (next) next();
}

void JobTable::take_turn(std::uint64_t id, std::function<void()> start) {
  {
    std::lock_guard lock(mutex_);
    line_.push_back({id, start});
    if (line_.size() > 1) return;
  }
  start();
}

std::function<void()> JobTable::leave_line(std::uint64_t id) {
  auto it = std::find_if(line_.begin(), line_.end(), [&](const Turn& t) { return t.id == id; });
  if (it == line_.end()) return {};
  const bool held = it == line_.begin();
  line_.erase(it);
  if (!held || line_.empty()) return {};
  return line_.front().start;
}

std::vector<Job> JobTable::list(std::uint32_t tenant) const {
  std::lock_guard lock(mutex_);
  std::vector<Job> out;
  for (const auto& [id, job] : jobs_) {
    if (job.tenant == tenant) out.push_back(job);
  }
  return out;
}

Status JobTable::get(std::uint32_t tenant, std::uint64_t id, Job* out) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  // Another tenant's job reads as absent: its existence is not yours to learn.
  if (it == jobs_.end() || it->second.tenant != tenant) {
    return Status::not_found("no job " + std::to_string(id));
  }
  *out = it->second;
  return {};
}

Status JobTable::cancel(std::uint32_t tenant, std::uint64_t id, Job* out) {
  std::function<void()> next;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.tenant != tenant) {
      return Status::not_found("no job " + std::to_string(id));
    }
    Job& job = it->second;
    if (job.finished()) {
      return Status::conflict("job " + std::to_string(id) + " is " + to_string(job.state) +
                              " already");
    }
    job.cancel_requested = true;
    *out = job;
    // A queued job that holds no turn has asked the executor for nothing:
    // cancelled now. One that holds it (its first step may be in the
    // executor) finishes at its next step, which forgets what it began.
    const bool holds_turn = !line_.empty() && line_.front().id == id;
    if (job.state == JobState::queued && !holds_turn) {
      job.state = JobState::cancelled;
      job.finished_at_ms = now_ms();
      *out = job;
      next = leave_line(id);
      trim(tenant);
    }
  }
  if (next) next();
  return {};
}

bool JobTable::cancel_requested(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  return it == jobs_.end() || it->second.cancel_requested;
}

void JobTable::trim(std::uint32_t tenant) {
  std::size_t finished = 0;
  for (const auto& [id, job] : jobs_) finished += job.tenant == tenant && job.finished();
  for (auto it = jobs_.begin(); it != jobs_.end() && finished > kKeptFinished;) {
    if (it->second.tenant == tenant && it->second.finished()) {
      it = jobs_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

}  // namespace memos::kernel
