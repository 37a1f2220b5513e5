// Tenant requests: policyShow, policyReload.
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "kernel/handlers/areas.h"
#include "kernel/tenant_registry.h"

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
    Peer self{ctx.uid, ctx.tenant, ctx.admin, ctx.policy};
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
    std::vector<std::string> warnings;
    Status st = s.tenants.load(&warnings);
    for (const auto& w : warnings) spdlog::warn("policy reload (uid {}): {}", ctx.uid, w);
    if (!st.ok()) {
      spdlog::error("policy reload (uid {}): refused, the running policies stay:\n{}", ctx.uid,
                    st.message);
      return ctx.fail(
          Status::bad_request("policies not reloaded, the running ones stay:\n" + st.message));
    }
    spdlog::info("policy reload (uid {}): {} tenants from {}", ctx.uid,
                 s.tenants.current()->tenants().size(), s.tenants.folder());
    // The caller's own policy as the new set has it.
    respond_policy(s, ctx, s.tenants.peer(ctx.uid, nullptr));
  });
}

}  // namespace

void add_tenant_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::POLICY_SHOW,
            [&s](const RequestContext& c, R::Reader r) { show(s, c, exact(r.getPolicyShow())); });
  table.add(R::POLICY_RELOAD, [&s](const RequestContext& c, R::Reader) { reload(s, c); });
}

}  // namespace memos::kernel
