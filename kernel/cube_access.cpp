#include "kernel/cube_access.h"

#include "kernel/request_checks.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

// A tenant's name: a policy's tenant name, a user name or uid:N. Checked
// here only for shape; whether it names a tenant is resolve_cube's.
Status check_owner_text(std::string_view owner) {
  if (owner.empty()) return Status::bad_request("the owner before '/' is empty");
  if (owner.size() > 64) return Status::bad_request("the owner before '/' is over 64 characters");
  if (owner[0] == '-' || owner[0] == '.') {
    return Status::bad_request("the owner before '/' must not start with '-' or '.'");
  }
  for (unsigned char c : owner) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@' || c == '$';
    if (!ok) {
      return Status::bad_request(
          "the owner before '/' may hold only letters, digits and '.', '_', '-', ':', '@', '$'");
    }
  }
  return {};
}

}  // namespace

bool names_shared_cube(std::string_view text) {
  return text.find('/') != std::string_view::npos;
}

Status check_cube_text(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return check_cube_name(text);
  if (Status st = check_owner_text(text.substr(0, slash)); !st.ok()) return st;
  return check_cube_name(text.substr(slash + 1));
}

Status check_owners_cube(std::string_view text, std::string_view what) {
  if (!names_shared_cube(text)) return {};
  return Status::permission_denied("'" + std::string(text.substr(0, 130)) +
                                   "' names another tenant's cube: only its owner may " +
                                   std::string(what));
}

CubeRef own_cube(const RequestContext& ctx, std::string_view text) {
  CubeRef ref;
  ref.owner = ctx.tenant;
  ref.name = std::string(text);
  ref.owner_policy = ctx.policy;
  ref.text = std::string(text);
  return ref;
}

Status resolve_cube(const TenantRegistry& tenants, const RequestContext& ctx, std::string_view text,
                    CubeRef* out) {
  if (!names_shared_cube(text)) {
    *out = own_cube(ctx, text);
    return {};
  }
  if (Status st = check_cube_text(text); !st.ok()) return st;
  const std::size_t slash = text.find('/');
  const std::string owner(text.substr(0, slash));
  std::optional<Peer> found = tenants.find_tenant(owner);
  // Unknown owners and cubes not shared with the peer get one answer
  // (find_cube_for's), so a name does not tell whether a tenant exists.
  if (!found) {
    return Status::not_found("no cube named '" + std::string(text) + "' is shared with you");
  }
  out->owner = found->tenant;
  out->name = std::string(text.substr(slash + 1));
  out->owner_policy = found->policy;
  out->text = std::string(text);
  // "me/notes" names the peer's own cube: no grant needed.
  out->shared = found->tenant != ctx.tenant;
  if (!out->shared) out->owner_policy = ctx.policy;
  return {};
}

store::Status find_cube_for(const store::ReadTxn& txn, const CubeRef& ref, store::TenantId tenant,
                            CubeUse use, store::Cube* cube) {
  if (ref.owner == tenant) return find_client_cube(txn, tenant, ref.name, cube);
  const store::Status hidden{store::Errc::not_found,
                             "no cube named '" + ref.text + "' is shared with you"};
  store::Status st = find_client_cube(txn, ref.owner, ref.name, cube);
  if (st.code == store::Errc::not_found) return hidden;
  if (!st.ok()) return st;
  store::CubeShare grant;
  st = txn.find_share(cube->id, tenant, &grant);
  if (st.code == store::Errc::not_found) return hidden;
  if (!st.ok()) return st;
  if (use == CubeUse::owner) {
    return {store::Errc::permission_denied,
            "cube '" + ref.text + "' is shared with you; only its owner may do this"};
  }
  if (use == CubeUse::write && grant.access != store::ShareAccess::write) {
    return {store::Errc::permission_denied, "cube '" + ref.text + "' is shared with you read-only"};
  }
  return {};
}

Status open_cube(const Services& s, const RequestContext& ctx, std::string_view text, CubeUse use,
                 std::optional<store::ReadTxn>* txn, store::Cube* cube, CubeRef* ref) {
  CubeRef resolved;
  if (Status st = resolve_cube(s.tenants, ctx, text, &resolved); !st.ok()) return st;
  store::Status st = s.store.begin_read(txn);
  if (st.ok()) st = find_cube_for(**txn, resolved, ctx.tenant, use, cube);
  if (ref) *ref = std::move(resolved);
  return Status::from(st);
}

}  // namespace memos::kernel
