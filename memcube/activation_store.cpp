// The activation tier's part of the store (store.h, "activation tier"):
// tables `activations`, `activation_prefixes`, `activation_lru` and
// `tenant_salts`. The tenant's usage row is tenant_usage_store.cpp's.
#include <lmdb.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string prefix_key(const Digest& digest, CubeId cube, ItemId id) {
  std::string k(reinterpret_cast<const char*>(digest.data()), digest.size());
  put_be(k, cube, 8);
  put_be(k, id, 8);
  return k;
}

std::string lru_key(TenantId tenant, std::int64_t used_ms, CubeId cube, ItemId id) {
  std::string k = tenant_key(tenant);
  put_be(k, static_cast<std::uint64_t>(used_ms < 0 ? 0 : used_ms), 8);
  put_be(k, cube, 8);
  put_be(k, id, 8);
  return k;
}

}  // namespace

// ---- ReadTxn -----------------------------------------------------------------

Status ReadTxn::tenant_salt(TenantId tenant, Digest* out) const {
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().tenant_salts, &key, &val);
  if (rc) return from_mdb(rc, "read tenant salt");
  if (val.mv_size != out->size()) return {Errc::corrupt, "tenant salt has a bad length"};
  std::memcpy(out->data(), val.mv_data, out->size());
  return {};
}

Status ReadTxn::get_activation(CubeId cube, ItemId id, Activation* out) const {
  std::string k = item_key(cube, id);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().activations, &key, &val);
  if (rc) return from_mdb(rc, "read activation");
  return decode_activation(as_view(val), out);
}

Status ReadTxn::list_activations(CubeId cube,
                                 const std::function<void(const Activation&)>& fn) const {
  Cursor cursor(txn_, tables().activations);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    Activation a;
    Status s = decode_activation(v, &a);
    if (s.ok()) fn(a);
    return s;
  });
}

Status ReadTxn::activations_under(const Digest& prefix,
                                  const std::function<bool(CubeId, ItemId)>& fn) const {
  Cursor cursor(txn_, tables().activation_prefixes);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  std::string_view p(reinterpret_cast<const char*>(prefix.data()), prefix.size());
  bool more = true;
  return cursor.scan_prefix(p, [&](std::string_view k, std::string_view) -> Status {
    if (!more) return {};
    if (k.size() != 48) return {Errc::corrupt, "activation prefix row has a bad key"};
    more = fn(get_be(k.data() + 32, 8), get_be(k.data() + 40, 8));
    return {};
  });
}

Status ReadTxn::least_recent_activations(TenantId tenant, std::size_t max,
                                         std::vector<std::pair<CubeId, ItemId>>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().activation_lru);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(tenant_key(tenant), [&](std::string_view k, std::string_view) {
    if (out->size() >= max) return Status{};
    if (k.size() != 28) return Status{Errc::corrupt, "activation LRU row has a bad key"};
    out->emplace_back(get_be(k.data() + 12, 8), get_be(k.data() + 20, 8));
    return Status{};
  });
}

// ---- WriteTxn ----------------------------------------------------------------

Status WriteTxn::ensure_tenant_salt(TenantId tenant, Digest* out) {
  Status s = view_.tenant_salt(tenant, out);
  if (s.code != Errc::not_found) return s;
  if (RAND_bytes(out->data(), static_cast<int>(out->size())) != 1) {
    return {Errc::io, "no random bytes for the tenant's salt"};
  }
  std::string_view salt(reinterpret_cast<const char*>(out->data()), out->size());
  return put_row(tables().tenant_salts, tenant_key(tenant), salt, "write tenant salt");
}

Status WriteTxn::put_activation(const Activation& a) {
  std::string k = item_key(a.cube, a.id);
  // The cube must exist: removing it is what removes its activation items.
  Cube cube;
  if (Status s = view_.read_cube(a.cube, &cube); !s.ok()) return s;
  std::string record = encode_activation(a);
  MDB_val key = as_val(k), val = as_val(record);
  int rc = put_raw(tables().activations, &key, &val, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return {Errc::already_exists, "activation item exists"};
  Status s = from_mdb(rc, "write activation");
  if (!s.ok()) return s;
  for (const Digest& d : a.prefixes) {
    if (s = put_row(tables().activation_prefixes, prefix_key(d, a.cube, a.id), "",
                    "write activation prefix");
        !s.ok()) {
      return s;
    }
  }
  if (s = put_row(tables().activation_lru, lru_key(a.tenant, a.last_used_ms, a.cube, a.id), "",
                  "write activation LRU");
      !s.ok()) {
    return s;
  }
  if (s = blob_ref(a.blob, a.size); !s.ok()) return s;
  return add_activation_usage(a.tenant, 1, static_cast<std::int64_t>(a.size));
}

Status WriteTxn::remove_activation(CubeId cube, ItemId id, Activation* removed) {
  Activation a;
  Status s = view_.get_activation(cube, id, &a);
  if (!s.ok()) return s;
  for (const Digest& d : a.prefixes) {
    if (s = del_row(tables().activation_prefixes, prefix_key(d, cube, id),
                    "remove activation prefix");
        !s.ok()) {
      return s;
    }
  }
  if (s = del_row(tables().activation_lru, lru_key(a.tenant, a.last_used_ms, cube, id),
                  "remove activation LRU");
      !s.ok()) {
    return s;
  }
  if (s = del_row(tables().activations, item_key(cube, id), "remove activation"); !s.ok()) {
    return s;
  }
  if (s = blob_unref(a.blob); !s.ok() && s.code != Errc::not_found) return s;
  // Saturating: a usage row that undercounts must not wrap around.
  if (s = add_activation_usage(a.tenant, -1, -static_cast<std::int64_t>(a.size)); !s.ok()) return s;
  if (removed) *removed = std::move(a);
  return {};
}

Status WriteTxn::drop_orphaned_activations(std::size_t max_items, std::size_t* dropped) {
  *dropped = 0;
  // Collected first: removing rows would move the cursor.
  std::vector<std::pair<CubeId, ItemId>> orphans;
  {
    Cursor cursor(txn_, tables().activations);
    if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
    MDB_val key, val;
    int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_FIRST);
    while (rc == 0 && orphans.size() < max_items) {
      const std::string_view k = as_view(key);
      if (k.size() != 16) return {Errc::corrupt, "activation row has a bad key"};
      const CubeId cube = get_be(k.data(), 8);
      Cube live;
      Status s = view_.read_cube(cube, &live);
      if (s.ok()) {
        // A cube that is there: over its states to the next cube's, one
        // lookup per cube rather than a read of each state.
        if (cube == std::numeric_limits<CubeId>::max()) break;
        const std::string next = u64_key(cube + 1);
        key = as_val(next);
        rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
        continue;
      }
      if (s.code != Errc::not_found) return s;
      Activation a;
      if (s = decode_activation(as_view(val), &a); !s.ok()) return s;
      if (writes_for(a.tenant)) orphans.emplace_back(cube, get_be(k.data() + 8, 8));
      rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "scan activations");
  }
  for (const auto& [cube, id] : orphans) {
    if (Status s = remove_activation(cube, id); !s.ok()) return s;
  }
  *dropped = orphans.size();
  return {};
}

Status WriteTxn::touch_activation(CubeId cube, ItemId id, std::int64_t now_ms) {
  Activation a;
  Status s = view_.get_activation(cube, id, &a);
  if (!s.ok()) return s;
  if (s = del_row(tables().activation_lru, lru_key(a.tenant, a.last_used_ms, cube, id),
                  "remove activation LRU");
      !s.ok()) {
    return s;
  }
  a.last_used_ms = std::max(a.last_used_ms, now_ms);
  a.uses += 1;
  if (s = put_row(tables().activation_lru, lru_key(a.tenant, a.last_used_ms, cube, id), "",
                  "write activation LRU");
      !s.ok()) {
    return s;
  }
  return put_row(tables().activations, item_key(cube, id), encode_activation(a),
                 "write activation");
}

}  // namespace memos::store
