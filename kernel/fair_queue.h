// fair_queue.h — the worker pool's waiting line, served by weighted fair
// queueing across tenants and in turn across each tenant's connections,
// so that a tenant that floods cannot starve another (memos-policy(5),
// `weight`).
//
// Start-time fair queueing: a tenant's next job starts, in virtual time, at
// the later of now (the start tag of the job last taken) and the end of
// its previous job, and ends 1/weight later; the job with the earliest
// start goes first. A tenant with weight 200 thus gets twice the turns of
// one with 100 while both wait, and a tenant that was idle starts at
// virtual now, not with credit saved up. Within a tenant, its connections
// take turns, so one connection's pipeline cannot starve its siblings.
//
// The pool runs at most as many jobs as it has threads; the rest wait here
// rather than in the pool's own FIFO (Daemon::run_on_worker). When nothing
// waits the virtual clock starts afresh. Loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace memos::kernel {

class FairQueue {
 public:
  struct Job {
    std::uint32_t tenant = 0;
    std::uint32_t weight = 100;  // 1..10000
    std::uint64_t connection = 0;
    std::function<void()> work;
  };

  void push(Job job);
  // The job to run next, or nullopt when none waits.
  std::optional<Job> pop();
  std::size_t size() const { return size_; }
  std::size_t flows() const { return flows_.size(); }
  bool empty() const { return size_ == 0; }

 private:
  struct Flow {
    double next_start = 0;  // the start tag of its next job (while backlogged)
    double last_finish = 0;
    std::uint32_t weight = 100;
    std::size_t queued = 0;
    // Connections with work, in turn; each one's jobs in order.
    std::deque<std::uint64_t> turn;
    std::map<std::uint64_t, std::deque<Job>> by_connection;
  };

  double virtual_now_ = 0;
  std::size_t size_ = 0;
  std::uint64_t pops_ = 0;
  std::map<std::uint32_t, Flow> flows_;
  std::set<std::pair<double, std::uint32_t>> backlogged_;  // (next_start, tenant)
};

}  // namespace memos::kernel
