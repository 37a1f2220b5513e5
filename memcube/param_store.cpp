// The parametric tier's part of the store (store.h, "parametric tier"):
// table `param_names` (cube + name -> item). A parametric item is an item
// like any other (versions, lifecycle, retention), with an adapter in its
// record (ItemRecord.param) whose blob each version references; put_item
// takes those references and the tenant's parametric bytes, and what
// deletes versions (a purge, a cube's removal) calls drop_param first; an
// import writes an item's versions whole (import_item) and its name here.
#include <lmdb.h>

#include <algorithm>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string name_key(CubeId cube, std::string_view name) {
  std::string k = u64_key(cube);
  k.append(name);
  return k;
}

Status decode_item_id(std::string_view v, ItemId* out) {
  if (v.size() != 8) return {Errc::corrupt, "param_names row has a bad length"};
  *out = get_be(v.data(), 8);
  return {};
}

}  // namespace

Status ReadTxn::find_param(CubeId cube, std::string_view name, Item* out) const {
  std::string k = name_key(cube, name);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().param_names, &key, &val);
  if (rc == MDB_NOTFOUND) {
    return {Errc::not_found, "no adapter named '" + std::string(name) + "' in the cube"};
  }
  if (rc) return from_mdb(rc, "read param name");
  ItemId id = 0;
  if (Status s = decode_item_id(as_view(val), &id); !s.ok()) return s;
  std::string hk = item_key(cube, id);
  MDB_val head_key = as_val(hk), head;
  rc = mdb_get(txn_, tables().items, &head_key, &head);
  if (rc == MDB_NOTFOUND) return {Errc::corrupt, "param_names names a missing item"};
  if (rc) return from_mdb(rc, "read item head");
  return decode_item(as_view(head), out);
}

Status ReadTxn::param_items(CubeId cube, std::vector<ItemId>* out) const {
  out->clear();
  Cursor names(txn_, tables().param_names);
  if (names.open_rc()) return from_mdb(names.open_rc(), "cursor");
  Status s = names.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    ItemId id = 0;
    Status d = decode_item_id(v, &id);
    if (d.ok()) out->push_back(id);
    return d;
  });
  std::sort(out->begin(), out->end());
  return s;
}

Status ReadTxn::list_params(CubeId cube, std::vector<Item>* out) const {
  out->clear();
  Cursor names(txn_, tables().param_names);
  if (names.open_rc()) return from_mdb(names.open_rc(), "cursor");
  return names.scan_prefix(u64_key(cube), [&](std::string_view k, std::string_view) -> Status {
    Item head;
    Status s = find_param(cube, k.substr(8), &head);
    if (!s.ok()) return s;
    if (!head.deleted()) out->push_back(std::move(head));
    return {};
  });
}

Status WriteTxn::put_param(CubeId cube, const Parametric& param, std::string text,
                           const Provenance& provenance, std::int64_t now_ms, Item* out,
                           bool* created) {
  Item item;
  Status s = view_.find_param(cube, param.name, &item);
  if (s.code == Errc::not_found) {
    *created = true;
    item = Item{};
    item.id = next_id(now_ms);
    item.version = 1;
    item.created_at_ms = now_ms;
    item.valid_from_ms = now_ms;
    std::string k = name_key(cube, param.name), id = u64_key(item.id);
    if (s = put_row(tables().param_names, k, id, "write param name"); !s.ok()) return s;
  } else if (!s.ok()) {
    return s;
  } else if (item.state == State::frozen) {
    return {Errc::conflict, "adapter '" + param.name + "' is frozen; make it active first"};
  } else {
    *created = false;
    item.version += 1;
  }
  const bool revived = !*created && item.deleted();
  if (*created || revived) item.state = State::active;
  item.tier = Tier::parametric;
  item.text = std::move(text);
  item.recorded_at_ms = now_ms;
  item.provenance = provenance;
  item.param = param;
  s = put_item(cube, item, *created || revived ? +1 : 0);
  if (!s.ok()) return s;
  *out = std::move(item);
  return {};
}

Status WriteTxn::import_param_name(CubeId cube, const Item& head) {
  std::string k = name_key(cube, head.param->name), id = u64_key(head.id);
  MDB_val key = as_val(k), val = as_val(id);
  int rc = put_raw(tables().param_names, &key, &val, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) {
    return {Errc::corrupt, "two adapters are named '" + head.param->name + "'"};
  }
  return from_mdb(rc, "write param name");
}

Status WriteTxn::drop_param(CubeId cube, ItemId id) {
  std::string name;
  {
    Cursor versions(txn_, tables().versions);
    if (versions.open_rc()) return from_mdb(versions.open_rc(), "cursor");
    Status s = versions.scan_prefix(item_key(cube, id),
                                    [&](std::string_view, std::string_view v) -> Status {
                                      Item version;
                                      if (Status d = decode_item(v, &version); !d.ok()) return d;
                                      if (!version.param) return {};
                                      name = version.param->name;
                                      return blob_unref(version.param->blob);
                                    });
    if (!s.ok()) return s;
  }
  if (name.empty()) return {};
  return del_row(tables().param_names, name_key(cube, name), "drop param name");
}

Status WriteTxn::drop_params_of(CubeId cube) {
  std::vector<ItemId> ids;
  {
    Cursor names(txn_, tables().param_names);
    if (names.open_rc()) return from_mdb(names.open_rc(), "cursor");
    Status s = names.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
      ItemId id = 0;
      Status d = decode_item_id(v, &id);
      if (d.ok()) ids.push_back(id);
      return d;
    });
    if (!s.ok()) return s;
  }
  for (ItemId id : ids) {
    if (Status s = drop_param(cube, id); !s.ok()) return s;
  }
  return {};
}

}  // namespace memos::store
