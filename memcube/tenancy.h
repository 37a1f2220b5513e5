// tenancy.h — what the store keeps per tenant beside its cubes: what it
// holds (usage, which quotas are checked against) and the cubes other
// tenants have shared with it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>

#include "memcube/ids.h"

namespace memos::store {

// A tenant's activation items: how many, and the bytes of their states.
struct ActivationUsage {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
};

// What the router has spent of a tenant's day (policy [router]
// tokens_per_day): the context tokens of its routed queries on `day`, days
// since 1970-01-01 UTC. A row of an earlier day means nothing spent today.
struct RouterUsage {
  std::uint32_t day = 0;
  std::uint64_t tokens = 0;
  std::uint64_t queries = 0;
};

// Spending to add to a tenant's day (WriteTxn::add_router_usage).
struct RouterCharge {
  TenantId tenant = 0;
  std::uint32_t day = 0;
  std::uint64_t tokens = 0;
  std::uint64_t queries = 0;
};

// What a tenant holds of the plaintext tier: its cubes, the items whose
// head is not a tombstone (archived and frozen ones included), and the bytes
// of those heads' texts. Kept in step by every write that changes them. A
// cube shared with other tenants counts here, against its owner, whoever
// writes to it.
struct TenantUsage {
  std::uint64_t cubes = 0;
  std::uint64_t items = 0;
  std::uint64_t text_bytes = 0;
  // The parametric tier: blob bytes of the parametric items whose head is
  // not a tombstone (what parametric.max_mb bounds).
  std::uint64_t param_bytes = 0;
};

// What a tenant a cube is shared with may do with it. Read: get, history,
// diff, search, snapshots (list, diff), export, kv list and a chat's memory
// block. Write: that, and adds, updates, removals, state changes and
// rollbacks. The cube itself (removal, renaming, sharing, its activation
// states) stays its owner's.
enum class ShareAccess : std::uint8_t { read = 1, write = 2 };
const char* to_string(ShareAccess access);

// One grant: `cube` shared with `tenant`.
struct CubeShare {
  CubeId cube = 0;
  TenantId tenant = 0;  // the grantee (the uid its memory is stored under)
  ShareAccess access = ShareAccess::read;
  std::int64_t granted_at_ms = 0;
  bool operator==(const CubeShare&) const = default;
};

// How long deleted items are kept before WriteTxn::run_retention purges
// them: a tenant's own delay (its policy's retention.purge_delay_s), else
// the default (store.tombstone_retention_s). A plain number is one delay
// for every tenant.
struct PurgeDelays {
  PurgeDelays(std::int64_t every_tenant_ms = 0)
      : default_ms(every_tenant_ms) {}  // NOLINT: one for all
  std::int64_t default_ms = 0;
  std::map<TenantId, std::int64_t> by_tenant;

  std::int64_t of(TenantId tenant) const {
    auto it = by_tenant.find(tenant);
    return it == by_tenant.end() ? default_ms : it->second;
  }
  std::int64_t shortest() const {
    std::int64_t least = default_ms;
    for (const auto& [tenant, ms] : by_tenant) least = std::min(least, ms);
    return least;
  }
};

}  // namespace memos::store
