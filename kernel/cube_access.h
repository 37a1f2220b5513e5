// cube_access.h — which cube a request names, and whether its peer may use
// it for what the request does.
//
// A request names a cube of its own tenant ("notes") or one that another
// tenant has shared with it ("alice/notes": the owner's tenant name as
// `memctl tenant usage` prints it, i.e. its policy's name, else its user
// name, else uid:N; then the cube's own name). Isolation is the default: a
// cube is found for a peer of another tenant only through a grant
// (store::CubeShare, made by `memctl cube share`), and only for the use
// the grant allows. A cube that exists but is not shared with the peer is
// answered exactly like one that does not exist, so that a name tells a
// tenant nothing about another's cubes.
//
// Every request that names a cube finds it through find_cube_for(), on a
// worker or, for writes, inside the write transaction: there is no other
// path from a client's name to a cube.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/handlers/request_context.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "kernel/tenant_registry.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

// What a request does with the cube it names.
enum class CubeUse {
  read,   // get, history, diff, search, snapshot list and diff, export,
          // kv list, a chat's memories
  write,  // add, update, remove, setState, rollback
  owner,  // the cube itself and its activation states: show its grants,
          // share, unshare, snapshot create, kv prefill and remove
};

// A cube name resolved to its owner.
struct CubeRef {
  store::TenantId owner = 0;  // the tenant the cube is stored under
  std::string name;           // the cube's own name
  bool shared = false;        // named as owner/cube, by another tenant
  // The owner's policy: a write to a shared cube counts against its owner.
  std::shared_ptr<const policies::TenantPolicy> owner_policy;
  std::string text;  // as the request wrote it (replies name the cube so)
};

// Whether `text` names another tenant's cube (owner/cube).
bool names_shared_cube(std::string_view text);

// Checks the syntax of "cube" or "owner/cube", without any lookup (the
// loop may call it). Errors: bad_request.
Status check_cube_text(std::string_view text);

// `text` as the peer's own cube (no lookup; the loop may call it).
CubeRef own_cube(const RequestContext& ctx, std::string_view text);

// What only a cube's owner does (`what`: "make its snapshots") asked of
// owner/cube: refused without a lookup, so the answer tells nothing of the
// cube. Errors: permission_denied.
Status check_owners_cube(std::string_view text, std::string_view what);

// Resolves `text` for the request's peer: its own cube, or the named
// owner's. Looks the owner up through NSS: never on the loop.
// Errors: bad_request (syntax), not_found (no tenant by that name).
Status resolve_cube(const TenantRegistry& tenants, const RequestContext& ctx, std::string_view text,
                    CubeRef* out);

// Finds the cube `ref` names for a peer of `tenant` that wants to `use`
// it. Errors: not_found (no such cube, or not shared with `tenant`: the
// same answer), permission_denied (shared read-only and `use` writes, or
// `use` is the owner's), the store's.
store::Status find_cube_for(const store::ReadTxn& txn, const CubeRef& ref, store::TenantId tenant,
                            CubeUse use, store::Cube* cube);

// resolve_cube, a read transaction and find_cube_for: what a handler on a
// worker calls. Errors: those three's.
Status open_cube(const Services& s, const RequestContext& ctx, std::string_view text, CubeUse use,
                 std::optional<store::ReadTxn>* txn, store::Cube* cube, CubeRef* ref = nullptr);

}  // namespace memos::kernel
