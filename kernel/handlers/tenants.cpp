// Tenant requests: policyShow, policyReload, tenantUsage.
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "kernel/cluster_node.h"
#include "kernel/handlers/areas.h"
#include "kernel/router_ledger.h"
#include "kernel/tenant_registry.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

void respond_policy(const Services& s, const RequestContext& ctx, const Peer& peer) {
  auto set = s.tenants.current();
  std::string name = s.tenants.tenant_name(peer);
  std::string text = policies::to_toml(*peer.policy);
  ctx.respond([&](wire::Response::Builder r) {
    auto p = r.initPolicy();
    p.setTenant(name);
    p.setFile(peer.policy->file);
    p.setText(text);
    p.setFolder(set->folder());
    p.setTenants(static_cast<std::uint32_t>(set->tenants().size()));
    p.setAdmin(ctx.admin);
    p.setStoredUnder(peer.tenant);
  });
}

// Errors: permission_denied (another tenant's policy, for a member: it
// says who else uses this memosd and how they are bounded), not_found.
void show(const Services& s, const RequestContext& ctx, std::string tenant) {
  // Names are looked up through NSS: off the loop.
  s.run_on_worker([&s, ctx, tenant = std::move(tenant)] {
    const Peer self = ctx.peer();
    if (tenant.empty() || tenant == s.tenants.tenant_name(self)) {
      return respond_policy(s, ctx, self);
    }
    if (!ctx.admin) {
      return ctx.fail(Status::permission_denied(
          "another tenant's policy is for administrators (root, memosd's uid or role = "
          "\"admin\")"));
    }
    auto set = s.tenants.current();
    auto policy = set->tenant(tenant);
    if (!policy) {
      return ctx.fail(Status::not_found(
          "no tenant named '" + tenant + "' in " +
          (set->folder().empty() ? std::string("the built-in set") : set->folder())));
    }
    Peer other{policy->owner.value_or(0), policy->owner.value_or(0), false, policy};
    respond_policy(s, ctx, other);
  });
}

// Errors: permission_denied (not an admin), bad_request (the folder has an
// error: every diagnostic, one a line; the running policies stay).
void reload(const Services& s, const RequestContext& ctx) {
  if (!ctx.admin) {
    return ctx.fail(Status::permission_denied(
        "policy reload is for administrators (root, memosd's uid or role = \"admin\")"));
  }
  s.run_on_worker([&s, ctx] {
    Status st = s.tenants.reload("policy reload (uid " + std::to_string(ctx.uid) + ")");
    if (!st.ok()) {
      return ctx.fail(
          Status::bad_request("policies not reloaded, the running ones stay:\n" + st.message));
    }
    // The caller's own policy as the new set has it.
    respond_policy(s, ctx, s.tenants.peer(ctx.uid, nullptr));
    // Then, in a cluster, whether every node enforces the same set now
    // (logged; memos-cluster(7), "Policies").
    if (s.cluster) s.cluster->check_policies(ClusterNode::kPolicyCheckTimeout);
  });
}

std::uint64_t mib_up(std::uint64_t bytes) {
  return (bytes + (1u << 20) - 1) >> 20;
}

// What `peer`'s tenant holds, and each bound its policy sets.
void respond_usage(const Services& s, const RequestContext& ctx, const Peer& peer) {
  std::optional<store::ReadTxn> txn;
  store::TenantUsage usage;
  store::ActivationUsage activation;
  store::Status st = s.store.begin_read(&txn);
  if (st.ok()) st = txn->tenant_usage(peer.tenant, &usage);
  if (st.ok()) st = txn->activation_usage(peer.tenant, &activation);
  if (!st.ok()) return ctx.fail(Status::from(st));
  const std::uint64_t routed =
      s.router_ledger ? s.router_ledger->spent(peer.tenant, now_ms(), *txn) : 0;
  txn.reset();
  const policies::TenantPolicy& p = *peer.policy;
  struct Row {
    const char* name;
    std::optional<std::uint64_t> limit;
    std::uint64_t used;
  };
  const Row rows[] = {
      {"max_cubes", p.max_cubes, usage.cubes},
      {"max_items", p.max_items, usage.items},
      {"max_plaintext_mb", p.max_plaintext_mb, mib_up(usage.text_bytes)},
      {"activation.max_mb", p.activation_max_mb, mib_up(activation.bytes)},
      {"parametric.max_mb", p.parametric_max_mb, mib_up(usage.param_bytes)},
      // Blobs: activation states and adapters.
      {"max_blob_mb", p.max_blob_mb, mib_up(activation.bytes + usage.param_bytes)},
      {"router.tokens_per_day", p.router.tokens_per_day, routed},
  };
  std::string name = s.tenants.tenant_name(peer);
  ctx.respond([&](wire::Response::Builder r) {
    auto u = r.initUsage();
    u.setTenant(name);
    u.setStoredUnder(peer.tenant);
    u.setCubes(usage.cubes);
    u.setItems(usage.items);
    u.setTextBytes(usage.text_bytes);
    u.setActivationItems(activation.count);
    u.setActivationBytes(activation.bytes);
    u.setParamBytes(usage.param_bytes);
    u.setRouterTokens(routed);
    unsigned n = 0;
    for (const Row& row : rows) n += row.limit ? 1 : 0;
    auto bounds = u.initBounds(n);
    unsigned i = 0;
    for (const Row& row : rows) {
      if (!row.limit) continue;
      bounds[i].setName(row.name);
      bounds[i].setLimit(*row.limit);
      bounds[i].setUsed(row.used);
      ++i;
    }
  });
}

// Errors: permission_denied (another tenant's usage, for a member),
// not_found.
void usage(const Services& s, const RequestContext& ctx, std::string tenant) {
  s.run_on_worker([&s, ctx, tenant = std::move(tenant)] {
    const Peer self = ctx.peer();
    if (tenant.empty() || tenant == s.tenants.tenant_name(self)) {
      return respond_usage(s, ctx, self);
    }
    if (!ctx.admin) {
      return ctx.fail(Status::permission_denied(
          "another tenant's usage is for administrators (root, memosd's uid or role = "
          "\"admin\")"));
    }
    // A named tenant, or a user no file names (by user name or uid:N).
    auto other = s.tenants.find_tenant(tenant);
    if (!other) return ctx.fail(Status::not_found("no tenant named '" + tenant + "'"));
    return respond_usage(s, ctx, *other);
  });
}

}  // namespace

void add_tenant_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::POLICY_SHOW,
            [&s](const RequestContext& c, R::Reader r) { show(s, c, exact(r.getPolicyShow())); });
  table.add(R::POLICY_RELOAD, [&s](const RequestContext& c, R::Reader) { reload(s, c); });
  table.add(R::TENANT_USAGE,
            [&s](const RequestContext& c, R::Reader r) { usage(s, c, exact(r.getTenantUsage())); });
}

}  // namespace memos::kernel
