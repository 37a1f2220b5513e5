#include "kernel/quota.h"

#include <cstdio>
#include <string>

namespace memos::kernel {
namespace {

std::string source(const policies::TenantPolicy& policy) {
  return policy.file.empty() ? "" : " (" + policy.file + ")";
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

store::Status check_quota(const policies::TenantPolicy& p, const store::TenantUsage& before,
                          const store::TenantUsage& after) {
  auto refused = [&](std::string message) {
    return store::Status{store::Errc::quota_exceeded, message + source(p)};
  };
  if (p.max_cubes && after.cubes > before.cubes && after.cubes > *p.max_cubes) {
    return refused("max_cubes = " + std::to_string(*p.max_cubes) + " reached: the tenant holds " +
                   std::to_string(before.cubes) + " cubes");
  }
  if (p.max_items && after.items > before.items && after.items > *p.max_items) {
    return refused("max_items = " + std::to_string(*p.max_items) + " reached: the tenant holds " +
                   std::to_string(before.items) + " items");
  }
  if (p.max_plaintext_mb && after.text_bytes > before.text_bytes &&
      after.text_bytes > (*p.max_plaintext_mb << 20)) {
    return refused("max_plaintext_mb = " + std::to_string(*p.max_plaintext_mb) +
                   " reached: the tenant's texts take " + mib(before.text_bytes) +
                   ", and this write would take them to " + mib(after.text_bytes));
  }
  // Adapters are blobs too; activation states, which the tier evicts to
  // make room, are bounded by max_blob_mb on their own (policy_use.h).
  if (p.max_blob_mb && after.param_bytes > before.param_bytes &&
      after.param_bytes > (*p.max_blob_mb << 20)) {
    return refused("max_blob_mb = " + std::to_string(*p.max_blob_mb) +
                   " reached: the tenant's adapters take " + mib(before.param_bytes) +
                   ", and this write would take them to " + mib(after.param_bytes));
  }
  if (p.parametric_max_mb && after.param_bytes > before.param_bytes &&
      after.param_bytes > (*p.parametric_max_mb << 20)) {
    return refused("parametric.max_mb = " + std::to_string(*p.parametric_max_mb) +
                   " reached: the tenant's adapters take " + mib(before.param_bytes) +
                   ", and this write would take them to " + mib(after.param_bytes));
  }
  return {};
}

store::Status within_quota(store::WriteTxn& txn, store::TenantId tenant,
                           const policies::TenantPolicy& policy,
                           const std::function<store::Status()>& apply) {
  const bool bounded = policy.max_cubes || policy.max_items || policy.max_plaintext_mb ||
                       policy.parametric_max_mb || policy.max_blob_mb;
  if (!bounded) return apply();
  store::TenantUsage before, after;
  if (store::Status s = txn.reader().tenant_usage(tenant, &before); !s.ok()) return s;
  if (store::Status s = apply(); !s.ok()) return s;
  if (store::Status s = txn.reader().tenant_usage(tenant, &after); !s.ok()) return s;
  return check_quota(policy, before, after);
}

Status check_item_bytes(const policies::TenantPolicy& policy, std::size_t bytes) {
  if (!policy.max_item_bytes || bytes <= *policy.max_item_bytes) return {};
  return {Code::quota_exceeded,
          "max_item_bytes = " + std::to_string(*policy.max_item_bytes) + ": the text is " +
              std::to_string(bytes) + " bytes" + source(policy),
          false};
}

}  // namespace memos::kernel
