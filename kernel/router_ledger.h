// router_ledger.h — what routed queries have spent of each tenant's day
// (policy [router] tokens_per_day; memos(7), "Routing"): the context tokens
// of every routed search and chat, counted in memory and handed to the
// writer in batches (daemon_jobs.cpp, and once more at a clean stop), so a
// query never waits for a commit. A tenant's day is read from the store
// (`router_usage`) the first time it is asked for, so a restart keeps it;
// what a crash loses is at most one flush interval's spending. Days are
// UTC. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "memcube/store.h"

namespace memos::kernel {

class RouterLedger {
 public:
  // Context tokens the tenant has spent on the day of `now_ms`. A damaged
  // store row reads as nothing spent (the writer replaces it).
  // Errors: none.
  std::uint64_t spent(store::TenantId tenant, std::int64_t now_ms, const store::ReadTxn& txn);
  // Adds one routed query of `tokens` to the tenant's day.
  void charge(store::TenantId tenant, std::uint64_t tokens, std::int64_t now_ms);
  // Everything charged since the last take, for WriteTxn::add_router_usage.
  std::vector<store::RouterCharge> take();
  // Forgets the days read from the store (a cluster node that becomes the
  // owner: other nodes' spending reached its store through the log); the
  // next spent() reads them again. Pending charges stay.
  void forget_known();

  static std::uint32_t day_of(std::int64_t ms);

 private:
  struct Known {
    std::uint32_t day = 0;
    std::uint64_t tokens = 0;  // stored, flushed and pending, of `day`
  };
  std::mutex mutex_;
  std::map<store::TenantId, Known> known_;
  std::map<std::pair<store::TenantId, std::uint32_t>, store::RouterCharge> pending_;
};

}  // namespace memos::kernel
