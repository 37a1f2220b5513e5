#include "kernel/router_ledger.h"

#include <spdlog/spdlog.h>

namespace memos::kernel {

std::uint32_t RouterLedger::day_of(std::int64_t ms) {
  return ms <= 0 ? 0 : static_cast<std::uint32_t>(ms / 86'400'000);
}

std::uint64_t RouterLedger::spent(store::TenantId tenant, std::int64_t now_ms,
                                  const store::ReadTxn& txn) {
  const std::uint32_t today = day_of(now_ms);
  std::lock_guard lock(mutex_);
  auto it = known_.find(tenant);
  if (it != known_.end() && it->second.day == today) return it->second.tokens;
  // First asked today: what the store holds of today (a restart's earlier
  // spending), plus what is charged and not yet written.
  Known k{today, 0};
  if (it == known_.end()) {
    store::RouterUsage row;
    if (store::Status s = txn.router_usage(tenant, &row); !s.ok()) {
      spdlog::warn("router usage of tenant {}: {}; counted from 0", tenant, s.message);
    } else if (row.day == today) {
      k.tokens = row.tokens;
    }
  }
  if (auto p = pending_.find({tenant, today}); p != pending_.end()) k.tokens += p->second.tokens;
  known_[tenant] = k;
  return k.tokens;
}

void RouterLedger::charge(store::TenantId tenant, std::uint64_t tokens, std::int64_t now_ms) {
  const std::uint32_t today = day_of(now_ms);
  std::lock_guard lock(mutex_);
  // Once a tenant's day is known it is kept here (a new day from zero):
  // only the first ask reads the store.
  if (auto it = known_.find(tenant); it != known_.end()) {
    if (it->second.day != today) it->second = {today, 0};
    it->second.tokens += tokens;
  }
  store::RouterCharge& c = pending_[{tenant, today}];
  c.tenant = tenant;
  c.day = today;
  c.tokens += tokens;
  c.queries += 1;
}

std::vector<store::RouterCharge> RouterLedger::take() {
  std::lock_guard lock(mutex_);
  std::vector<store::RouterCharge> out;
  out.reserve(pending_.size());
  for (auto& [key, charge] : pending_) out.push_back(charge);
  pending_.clear();
  return out;
}

void RouterLedger::forget_known() {
  std::lock_guard lock(mutex_);
  known_.clear();
}

}  // namespace memos::kernel
