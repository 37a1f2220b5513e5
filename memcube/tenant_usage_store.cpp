// Per-tenant usage (store.h), so that eviction and quotas read one row,
// not a scan:
//   `activation_usage`, the count and bytes of each tenant's activation
//   items, kept in step by put_activation and remove_activation;
//   `tenant_usage`, its cubes, live items, their text bytes and its
//   parametric items' blob bytes, kept in step
//   by create_cube, remove_cube, put_item and import_item.
#include <lmdb.h>

#include <map>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

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

std::string encode_tenant_usage(const TenantUsage& u) {
  std::string v;
  put_be(v, u.cubes, 8);
  put_be(v, u.items, 8);
  put_be(v, u.text_bytes, 8);
  put_be(v, u.param_bytes, 8);
  return v;
}

// 24 bytes before the parametric tier (schema 5), 32 since.
Status decode_tenant_usage(std::string_view v, TenantUsage* out) {
  if (v.size() != 24 && v.size() != 32) return {Errc::corrupt, "tenant usage row has a bad length"};
  out->cubes = get_be(v.data(), 8);
  out->items = get_be(v.data() + 8, 8);
  out->text_bytes = get_be(v.data() + 16, 8);
  out->param_bytes = v.size() == 32 ? get_be(v.data() + 24, 8) : 0;
  return {};
}

// `count` + `delta`, refused below 0: a count that would go negative means
// the counters and the rows they count disagree.
Status shift(std::uint64_t* count, std::int64_t delta, const char* what) {
  if (delta < 0 && static_cast<std::uint64_t>(-delta) > *count) {
    return {Errc::corrupt, std::string("tenant usage: ") + what + " would go below 0"};
  }
  *count = static_cast<std::uint64_t>(static_cast<std::int64_t>(*count) + delta);
  return {};
}

}  // namespace

Status ReadTxn::tenant_usage(TenantId tenant, TenantUsage* out) const {
  *out = {};
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().tenant_usage, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read tenant usage");
  return decode_tenant_usage(as_view(val), out);
}

Status ReadTxn::for_each_tenant_usage(
    const std::function<void(TenantId, const TenantUsage&)>& fn) const {
  Cursor cursor(txn_, tables().tenant_usage);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view k, std::string_view v) -> Status {
    if (k.size() != 4) return {Errc::corrupt, "tenant usage key has a bad length"};
    TenantUsage usage;
    if (Status d = decode_tenant_usage(v, &usage); !d.ok()) return d;
    fn(static_cast<TenantId>(get_be(k.data(), 4)), usage);
    return {};
  });
}

Status WriteTxn::add_tenant_usage(TenantId tenant, std::int64_t cubes, std::int64_t items,
                                  std::int64_t text_bytes, std::int64_t param_bytes) {
  if (cubes == 0 && items == 0 && text_bytes == 0 && param_bytes == 0) return {};
  TenantUsage usage;
  if (Status s = view_.tenant_usage(tenant, &usage); !s.ok()) return s;
  if (Status s = shift(&usage.cubes, cubes, "cubes"); !s.ok()) return s;
  if (Status s = shift(&usage.items, items, "items"); !s.ok()) return s;
  if (Status s = shift(&usage.text_bytes, text_bytes, "text bytes"); !s.ok()) return s;
  if (Status s = shift(&usage.param_bytes, param_bytes, "parametric bytes"); !s.ok()) return s;
  return put_row(tables().tenant_usage, tenant_key(tenant), encode_tenant_usage(usage),
                 "write tenant usage");
}

Status Store::build_tenant_usage(MDB_txn* txn, const Tables& tables) {
  std::map<CubeId, TenantId> owner_of;
  std::map<TenantId, TenantUsage> usage;
  {
    Cursor cubes(txn, tables.cubes);
    if (cubes.open_rc()) return from_mdb(cubes.open_rc(), "cursor");
    Status s = cubes.scan_prefix("", [&](std::string_view, std::string_view v) -> Status {
      Cube c;
      if (Status d = decode_cube(v, &c); !d.ok()) return d;
      owner_of[c.id] = c.owner;
      TenantUsage& u = usage[c.owner];
      u.cubes += 1;
      u.items += c.live_items;
      return {};
    });
    if (!s.ok()) return s;
  }
  Cursor heads(txn, tables.items);
  if (heads.open_rc()) return from_mdb(heads.open_rc(), "cursor");
  Status s = heads.scan_prefix("", [&](std::string_view k, std::string_view v) -> Status {
    if (k.size() != 16) return {Errc::corrupt, "item key has a bad length"};
    auto owner = owner_of.find(get_be(k.data(), 8));
    if (owner == owner_of.end()) return {};  // a removed cube's leftovers
    Item head;
    if (Status d = decode_item(v, &head); !d.ok()) return d;
    if (!head.deleted()) usage[owner->second].text_bytes += head.text.size();
    return {};
  });
  if (!s.ok()) return s;
  for (const auto& [tenant, u] : usage) {
    if (Status w = put_row(txn, tables.tenant_usage, tenant_key(tenant), encode_tenant_usage(u),
                           "building tenant usage");
        !w.ok()) {
      return w;
    }
  }
  return {};
}

Status ReadTxn::activation_usage(TenantId tenant, ActivationUsage* out) const {
  *out = {};
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().activation_usage, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read activation usage");
  return decode_usage(as_view(val), out);
}

Status WriteTxn::add_activation_usage(TenantId tenant, std::int64_t count, std::int64_t bytes) {
  ActivationUsage usage;
  if (Status s = view_.activation_usage(tenant, &usage); !s.ok()) return s;
  auto add = [](std::uint64_t& value, std::int64_t delta) {
    const std::uint64_t magnitude =
        delta < 0 ? 0 - static_cast<std::uint64_t>(delta) : static_cast<std::uint64_t>(delta);
    value = delta >= 0 ? value + magnitude : value - std::min(value, magnitude);
  };
  add(usage.count, count);
  add(usage.bytes, bytes);
  // Written past the recording helpers: the change is recorded as the
  // deltas, which commute with another shard's changes to the same row.
  const std::string k = tenant_key(tenant), row = encode_usage(usage);
  MDB_val key = as_val(k), val = as_val(row);
  if (int rc = mdb_put(txn_, tables().activation_usage, &key, &val, 0); rc) {
    return from_mdb(rc, "write activation usage");
  }
  if (changes_ && (count != 0 || bytes != 0)) changes_->activation_usage(tenant, count, bytes);
  return {};
}

}  // namespace memos::store
