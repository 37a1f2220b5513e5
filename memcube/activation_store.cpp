// The activation tier's part of the store (store.h, "activation tier").
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"

namespace memos::store {
namespace {

std::string tenant_key(TenantId tenant) {
  std::string k;
  put_be(k, tenant, 4);
  return k;
}

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

std::string encode_usage(const ActivationUsage& u) {
  std::string v;
  put_be(v, u.count, 8);
  put_be(v, u.bytes, 8);
  return v;
}

Status decode_usage(std::string_view v, ActivationUsage* out) {
  if (v.size() != 16) return {Errc::corrupt, "activation usage row has a bad length"};
  out->count = get_be(v.data(), 8);
  out->bytes = get_be(v.data() + 8, 8);
  return {};
}

Status put_row(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
               const char* what) {
  MDB_val k = as_val(key), v = as_val(value);
  return from_mdb(mdb_put(txn, dbi, &k, &v, 0), what);
}

Status del_row(MDB_txn* txn, MDB_dbi dbi, std::string_view key, const char* what) {
  MDB_val k = as_val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, what);
}

}  // namespace

// ---- ReadTxn -----------------------------------------------------------------

Status ReadTxn::tenant_salt(TenantId tenant, Digest* out) const {
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->tenant_salts_, &key, &val);
  if (rc) return from_mdb(rc, "read tenant salt");
  if (val.mv_size != out->size()) return {Errc::corrupt, "tenant salt has a bad length"};
  std::memcpy(out->data(), val.mv_data, out->size());
  return {};
}

Status ReadTxn::get_activation(CubeId cube, ItemId id, Activation* out) const {
  std::string k = item_key(cube, id);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->activations_, &key, &val);
  if (rc) return from_mdb(rc, "read activation");
  return decode_activation(as_view(val), out);
}

Status ReadTxn::list_activations(CubeId cube,
                                 const std::function<void(const Activation&)>& fn) const {
  Cursor cursor(txn_, store_->activations_);
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
  Cursor cursor(txn_, store_->activation_prefixes_);
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

Status ReadTxn::activation_usage(TenantId tenant, ActivationUsage* out) const {
  *out = {};
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->activation_usage_, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read activation usage");
  return decode_usage(as_view(val), out);
}

Status ReadTxn::least_recent_activations(TenantId tenant, std::size_t max,
                                         std::vector<std::pair<CubeId, ItemId>>* out) const {
  out->clear();
  Cursor cursor(txn_, store_->activation_lru_);
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
  return put_row(txn_, store_->tenant_salts_, tenant_key(tenant), salt, "write tenant salt");
}

Status WriteTxn::put_activation(const Activation& a) {
  std::string k = item_key(a.cube, a.id);
  std::string ck = u64_key(a.cube);
  MDB_val cube_key = as_val(ck), cube_val;
  int rc = mdb_get(txn_, store_->cubes_, &cube_key, &cube_val);
  if (rc) return from_mdb(rc, "read cube");
  std::string record = encode_activation(a);
  MDB_val key = as_val(k), val = as_val(record);
  rc = mdb_put(txn_, store_->activations_, &key, &val, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return {Errc::already_exists, "activation item exists"};
  Status s = from_mdb(rc, "write activation");
  if (!s.ok()) return s;
  for (const Digest& d : a.prefixes) {
    if (s = put_row(txn_, store_->activation_prefixes_, prefix_key(d, a.cube, a.id), "",
                    "write activation prefix");
        !s.ok()) {
      return s;
    }
  }
  if (s = put_row(txn_, store_->activation_lru_, lru_key(a.tenant, a.last_used_ms, a.cube, a.id),
                  "", "write activation LRU");
      !s.ok()) {
    return s;
  }
  if (s = blob_ref(a.blob, a.size); !s.ok()) return s;
  ActivationUsage usage;
  if (s = view_.activation_usage(a.tenant, &usage); !s.ok()) return s;
  usage.count += 1;
  usage.bytes += a.size;
  return put_row(txn_, store_->activation_usage_, tenant_key(a.tenant), encode_usage(usage),
                 "write activation usage");
}

Status WriteTxn::remove_activation(CubeId cube, ItemId id, Activation* removed) {
  Activation a;
  Status s = view_.get_activation(cube, id, &a);
  if (!s.ok()) return s;
  for (const Digest& d : a.prefixes) {
    if (s = del_row(txn_, store_->activation_prefixes_, prefix_key(d, cube, id),
                    "remove activation prefix");
        !s.ok()) {
      return s;
    }
  }
  if (s = del_row(txn_, store_->activation_lru_, lru_key(a.tenant, a.last_used_ms, cube, id),
                  "remove activation LRU");
      !s.ok()) {
    return s;
  }
  if (s = del_row(txn_, store_->activations_, item_key(cube, id), "remove activation"); !s.ok()) {
    return s;
  }
  if (s = blob_unref(a.blob); !s.ok() && s.code != Errc::not_found) return s;
  ActivationUsage usage;
  if (s = view_.activation_usage(a.tenant, &usage); !s.ok()) return s;
  usage.count -= std::min<std::uint64_t>(usage.count, 1);
  usage.bytes -= std::min(usage.bytes, a.size);
  if (s = put_row(txn_, store_->activation_usage_, tenant_key(a.tenant), encode_usage(usage),
                  "write activation usage");
      !s.ok()) {
    return s;
  }
  if (removed) *removed = std::move(a);
  return {};
}

Status WriteTxn::touch_activation(CubeId cube, ItemId id, std::int64_t now_ms) {
  Activation a;
  Status s = view_.get_activation(cube, id, &a);
  if (!s.ok()) return s;
  if (s = del_row(txn_, store_->activation_lru_, lru_key(a.tenant, a.last_used_ms, cube, id),
                  "remove activation LRU");
      !s.ok()) {
    return s;
  }
  a.last_used_ms = std::max(a.last_used_ms, now_ms);
  a.uses += 1;
  if (s = put_row(txn_, store_->activation_lru_, lru_key(a.tenant, a.last_used_ms, cube, id), "",
                  "write activation LRU");
      !s.ok()) {
    return s;
  }
  return put_row(txn_, store_->activations_, item_key(cube, id), encode_activation(a),
                 "write activation");
}

}  // namespace memos::store
