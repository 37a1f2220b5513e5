// Cubes shared with other tenants (tenancy.h): tables `cube_shares` (cube +
// tenant) and `shared_cubes` (tenant + cube), one row per grant in each,
// written together.
#include <lmdb.h>

#include <algorithm>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string grant_key(CubeId cube, TenantId tenant) {
  std::string k = u64_key(cube);
  put_be(k, tenant, 4);
  return k;
}

std::string shared_key(TenantId tenant, CubeId cube) {
  std::string k = tenant_key(tenant);
  put_be(k, cube, 8);
  return k;
}

std::string encode_grant(const CubeShare& share) {
  std::string v(1, static_cast<char>(share.access));
  put_be(v, static_cast<std::uint64_t>(std::max<std::int64_t>(share.granted_at_ms, 0)), 8);
  return v;
}

// `share` has its cube and tenant already. Errors: corrupt.
Status decode_grant(std::string_view v, CubeShare* share) {
  if (v.size() != 9) return {Errc::corrupt, "cube share row has a bad length"};
  const auto access = static_cast<std::uint8_t>(v[0]);
  if (access != static_cast<std::uint8_t>(ShareAccess::read) &&
      access != static_cast<std::uint8_t>(ShareAccess::write)) {
    return {Errc::corrupt, "cube share row has an unknown access"};
  }
  share->access = static_cast<ShareAccess>(access);
  share->granted_at_ms = static_cast<std::int64_t>(get_be(v.data() + 1, 8));
  return {};
}

}  // namespace

const char* to_string(ShareAccess access) {
  return access == ShareAccess::write ? "write" : "read";
}

Status ReadTxn::find_share(CubeId cube, TenantId tenant, CubeShare* out) const {
  std::string k = grant_key(cube, tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().cube_shares, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "the cube is not shared with that tenant"};
  if (rc) return from_mdb(rc, "read cube share");
  out->cube = cube;
  out->tenant = tenant;
  return decode_grant(as_view(val), out);
}

Status ReadTxn::list_shares(CubeId cube, std::vector<CubeShare>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().cube_shares);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(u64_key(cube), [&](std::string_view k, std::string_view v) -> Status {
    if (k.size() != 12) return {Errc::corrupt, "cube share key has a bad length"};
    CubeShare share;
    share.cube = cube;
    share.tenant = static_cast<TenantId>(get_be(k.data() + 8, 4));
    if (Status d = decode_grant(v, &share); !d.ok()) return d;
    out->push_back(share);
    return {};
  });
}

Status ReadTxn::shared_with(TenantId tenant, std::vector<CubeShare>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().shared_cubes);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(tenant_key(tenant),
                            [&](std::string_view k, std::string_view v) -> Status {
                              if (k.size() != 12)
                                return {Errc::corrupt, "shared cube key has a bad length"};
                              CubeShare share;
                              share.tenant = tenant;
                              share.cube = get_be(k.data() + 4, 8);
                              if (Status d = decode_grant(v, &share); !d.ok()) return d;
                              out->push_back(share);
                              return {};
                            });
}

Status WriteTxn::put_share(const CubeShare& share) {
  Cube cube;
  if (Status s = view_.read_cube(share.cube, &cube); !s.ok()) return s;
  if (share.tenant == cube.owner) {
    return {Errc::conflict, "a cube is not shared with its own owner"};
  }
  const std::string row = encode_grant(share);
  Status s =
      put_row(tables().cube_shares, grant_key(share.cube, share.tenant), row, "write cube share");
  if (s.ok()) {
    s = put_row(tables().shared_cubes, shared_key(share.tenant, share.cube), row,
                "write shared cube");
  }
  return s;
}

Status WriteTxn::remove_share(CubeId cube, TenantId tenant, CubeShare* removed) {
  CubeShare found;
  if (Status s = view_.find_share(cube, tenant, &found); !s.ok()) return s;
  Status s = del_row(tables().cube_shares, grant_key(cube, tenant), "remove cube share");
  if (s.ok()) s = del_row(tables().shared_cubes, shared_key(tenant, cube), "remove shared cube");
  if (s.ok() && removed) *removed = found;
  return s;
}

Status WriteTxn::remove_shares_of(CubeId cube) {
  std::vector<CubeShare> shares;
  if (Status s = view_.list_shares(cube, &shares); !s.ok()) return s;
  for (const auto& share : shares) {
    if (Status s = remove_share(cube, share.tenant, nullptr); !s.ok()) return s;
  }
  return {};
}

}  // namespace memos::store
