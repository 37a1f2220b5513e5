// Cube manifests (store.h): tables `cube_names` and `cubes`. Removing a cube
// removes its rows from every table keyed by cube.
#include <lmdb.h>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {

// ---- ReadTxn ----------------------------------------------------------------

Status ReadTxn::find_cube(TenantId tenant, std::string_view name, Cube* out) const {
  std::string k = cube_name_key(tenant, name);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().cube_names, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no cube named '" + std::string(name) + "'"};
  if (rc) return from_mdb(rc, "find cube");
  if (val.mv_size != 8) return {Errc::corrupt, "cube name index entry has a bad length"};
  std::string id_key(static_cast<char*>(val.mv_data), 8);
  MDB_val ck = as_val(id_key), cv;
  rc = mdb_get(txn_, tables().cubes, &ck, &cv);
  if (rc == MDB_NOTFOUND) return {Errc::corrupt, "cube name points to a missing cube"};
  if (rc) return from_mdb(rc, "read cube");
  return decode_cube(as_view(cv), out);
}

Status ReadTxn::read_cube(CubeId cube, Cube* out) const {
  std::string k = u64_key(cube);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().cubes, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no such cube"};
  if (rc) return from_mdb(rc, "read cube");
  return decode_cube(as_view(val), out);
}

Status ReadTxn::list_cubes(TenantId tenant, std::vector<Cube>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().cube_names);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(tenant_key(tenant), [&](std::string_view k, std::string_view) {
    Cube cube;
    Status s = find_cube(tenant, k.substr(4), &cube);
    if (!s.ok()) return s.code == Errc::not_found ? Status{Errc::corrupt, s.message} : s;
    out->push_back(std::move(cube));
    return Status{};
  });
}

Status ReadTxn::list_all_cubes(std::vector<Cube>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().cubes);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view, std::string_view v) -> Status {
    Cube cube;
    Status s = decode_cube(v, &cube);
    if (s.ok()) out->push_back(std::move(cube));
    return s;
  });
}

// ---- WriteTxn ---------------------------------------------------------------

Status WriteTxn::update_cube(CubeId cube, const std::function<void(Cube&)>& change) {
  Cube c;
  if (Status s = view_.read_cube(cube, &c); !s.ok()) return s;
  change(c);
  return put_row(tables().cubes, u64_key(cube), encode_cube(c), "update cube");
}

Status WriteTxn::create_cube(TenantId tenant, std::string_view name, std::string_view embedder,
                             std::uint32_t dimension, std::int64_t now_ms, Cube* out,
                             std::string_view default_retriever, std::string_view language) {
  Cube existing;
  Status s = view_.find_cube(tenant, name, &existing);
  if (s.ok()) return {Errc::already_exists, "cube '" + std::string(name) + "' already exists"};
  if (s.code != Errc::not_found) return s;

  Cube cube;
  cube.id = next_id(now_ms);
  cube.name = name;
  cube.owner = tenant;
  cube.created_at_ms = now_ms;
  cube.embedder = embedder;
  cube.dimension = dimension;
  cube.default_retriever = default_retriever;
  cube.language = language;
  std::string nk = cube_name_key(tenant, name), idk = u64_key(cube.id), rec = encode_cube(cube);
  MDB_val k1 = as_val(nk), v1 = as_val(idk), k2 = as_val(idk), v2 = as_val(rec);
  int rc = put_raw(tables().cube_names, &k1, &v1, MDB_NOOVERWRITE);
  if (rc) return from_mdb(rc, "create cube");
  rc = put_raw(tables().cubes, &k2, &v2, 0);
  if (rc) return from_mdb(rc, "create cube");
  if (s = add_tenant_usage(tenant, 1, 0, 0); !s.ok()) return s;
  *out = std::move(cube);
  return {};
}

Status WriteTxn::remove_cube(TenantId tenant, std::string_view name, bool force, Cube* removed) {
  Status s = view_.find_cube(tenant, name, removed);
  if (!s.ok()) return s;
  if (removed->live_items > 0 && !force) {
    return {Errc::conflict, "cube '" + std::string(name) + "' holds " +
                                std::to_string(removed->live_items) +
                                " live items (--force removes it anyway; force in the SDK)"};
  }
  // Activation items also hold blob references and their tenant's usage:
  // each goes through remove_activation, not a bare delete. Only those of
  // this shard's tenants: a grantee's states in a shared cube are its own
  // shard's rows, which its chats may be using on another node right now,
  // so that shard's owner removes them (drop_orphaned_activations, in its
  // retention) rather than two shards writing the same rows. With one
  // shard every state goes now.
  std::vector<ItemId> activations;
  s = view_.list_activations(removed->id, [&](const Activation& a) {
    if (writes_for(a.tenant)) activations.push_back(a.id);
  });
  if (!s.ok()) return s;
  for (ItemId id : activations) {
    if (s = remove_activation(removed->id, id); !s.ok()) return s;
  }
  // Retention queue entries are left behind: run_retention drops those whose
  // item is gone (their keys lead with a time, not the cube).
  std::string prefix = u64_key(removed->id);
  // Parametric items give back their blob references and names.
  if (s = drop_params_of(removed->id); !s.ok()) return s;
  // The tenant gives back the cube, its live items, their texts and adapters.
  std::int64_t text_bytes = 0, param_bytes = 0;
  {
    Cursor heads(txn_, tables().items);
    if (heads.open_rc()) return from_mdb(heads.open_rc(), "cursor");
    s = heads.scan_prefix(prefix, [&](std::string_view, std::string_view v) -> Status {
      Item head;
      if (Status d = decode_item(v, &head); !d.ok()) return d;
      if (!head.deleted()) text_bytes += static_cast<std::int64_t>(head.text.size());
      if (!head.deleted() && head.param) param_bytes += static_cast<std::int64_t>(head.param->size);
      return {};
    });
    if (!s.ok()) return s;
  }
  if (s = add_tenant_usage(tenant, -1, -static_cast<std::int64_t>(removed->live_items), -text_bytes,
                           -param_bytes);
      !s.ok()) {
    return s;
  }
  if (s = remove_shares_of(removed->id); !s.ok()) return s;
  if (s = remove_working_set(removed->id); !s.ok()) return s;
  for (MDB_dbi dbi : {tables().items, tables().versions, tables().snapshots, tables().access,
                      tables().text_hashes}) {
    if (s = delete_prefix(dbi, prefix, "remove cube items"); !s.ok()) return s;
  }
  std::string nk = cube_name_key(tenant, name);
  MDB_val k1 = as_val(nk), k2 = as_val(prefix);
  int rc = del_raw(tables().cube_names, &k1, nullptr);
  if (rc) return from_mdb(rc, "remove cube name");
  rc = del_raw(tables().cubes, &k2, nullptr);
  return from_mdb(rc, "remove cube");
}

Status WriteTxn::rename_cube(TenantId tenant, std::string_view from, std::string_view to,
                             Cube* out) {
  Cube taken;
  Status s = view_.find_cube(tenant, to, &taken);
  if (s.ok()) return {Errc::already_exists, "cube '" + std::string(to) + "' already exists"};
  if (s.code != Errc::not_found) return s;
  if ((s = view_.find_cube(tenant, from, out)); !s.ok()) return s;
  std::string old_key = cube_name_key(tenant, from), new_key = cube_name_key(tenant, to);
  std::string id = u64_key(out->id);
  MDB_val ok = as_val(old_key), nk = as_val(new_key), iv = as_val(id);
  int rc = del_raw(tables().cube_names, &ok, nullptr);
  if (rc == 0) rc = put_raw(tables().cube_names, &nk, &iv, MDB_NOOVERWRITE);
  if (rc) return from_mdb(rc, "rename cube");
  s = update_cube(out->id, [&](Cube& c) { c.name = to; });
  if (s.ok()) out->name = to;
  return s;
}

Status WriteTxn::set_cube_embedder(CubeId cube, std::string_view embedder,
                                   std::uint32_t dimension) {
  return update_cube(cube, [&](Cube& c) {
    c.embedder = embedder;
    c.dimension = dimension;
  });
}

}  // namespace memos::store
