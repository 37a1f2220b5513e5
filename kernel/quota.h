// quota.h — a tenant's bounds on what it holds (memos-policy(5): max_cubes,
// max_items, max_item_bytes, max_plaintext_mb), checked inside the write
// transaction that would cross them.
//
// within_quota() reads the tenant's usage (store::TenantUsage, kept in step
// by the store in the same transaction), applies the write, reads it again
// and compares with the policy: a write that grows a count past its bound,
// or grows one already over it, fails with store::Errc::quota_exceeded, and
// the commit queue undoes that write alone. The writer thread runs one
// write at a time, each seeing the ones before, so concurrent writers can
// never overshoot by even one item. A write that grows nothing that is over
// its bound (a remove, a shorter text) passes: lowering a bound below what a
// tenant holds refuses its new writes and never deletes anything.
//
// max_item_bytes needs no usage: check_item_bytes() refuses one text before
// the write is queued.
//
// Errors: quota_exceeded, naming the bound, its value, the usage and the
// policy file; the store's own.
#pragma once

#include <cstddef>
#include <functional>

#include "kernel/status.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

store::Status within_quota(store::WriteTxn& txn, store::TenantId tenant,
                           const policies::TenantPolicy& policy,
                           const std::function<store::Status()>& apply);

// Compares usage after a write with the policy (within_quota's check).
store::Status check_quota(const policies::TenantPolicy& policy, const store::TenantUsage& before,
                          const store::TenantUsage& after);

// A text of `bytes` against max_item_bytes. Errors: quota_exceeded.
Status check_item_bytes(const policies::TenantPolicy& policy, std::size_t bytes);

}  // namespace memos::kernel
