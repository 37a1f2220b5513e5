// Memory items and their versions (store.h): tables `items` (heads) and
// `versions` (every version, immutable). Lifecycle transitions, bi-temporal
// supersession, rollback and exact import.
#include <lmdb.h>

#include <algorithm>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {

// ---- ReadTxn ----------------------------------------------------------------

Status ReadTxn::get_item(CubeId cube, ItemId id, std::uint32_t version, Item* out) const {
  MDB_val val;
  int rc;
  if (version == 0) {
    std::string k = item_key(cube, id);
    MDB_val key = as_val(k);
    rc = mdb_get(txn_, tables().items, &key, &val);
  } else {
    std::string k = version_key(cube, id, version);
    MDB_val key = as_val(k);
    rc = mdb_get(txn_, tables().versions, &key, &val);
  }
  if (rc == MDB_NOTFOUND) {
    return {Errc::not_found,
            version == 0 ? "no such item" : "item has no version " + std::to_string(version)};
  }
  if (rc) return from_mdb(rc, "read item");
  Status s = decode_item(as_view(val), out);
  if (!s.ok()) return s;
  if (out->id != id || (version != 0 && out->version != version)) {
    return {Errc::corrupt, "item record does not match its key"};
  }
  if (version == 0 && out->deleted()) {
    return {Errc::not_found, "item was deleted at version " + std::to_string(out->version)};
  }
  return {};
}

Status ReadTxn::history(CubeId cube, ItemId id, std::vector<Item>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().versions);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  Status s = cursor.scan_prefix(item_key(cube, id), [&](std::string_view, std::string_view v) {
    Item item;
    Status d = decode_item(v, &item);
    if (d.ok()) out->push_back(std::move(item));
    return d;
  });
  if (s.ok() && out->empty()) return {Errc::not_found, "no such item"};
  return s;
}

Status ReadTxn::history_page(CubeId cube, ItemId id, std::uint32_t after, std::size_t max_bytes,
                             std::vector<Item>* out, bool* more) const {
  out->clear();
  *more = false;
  Cursor cursor(txn_, tables().versions);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  const std::string prefix = item_key(cube, id), start = version_key(cube, id, after + 1);
  MDB_val key = as_val(start), val;
  std::size_t bytes = 0;
  int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
  for (; rc == 0; rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT)) {
    if (!as_view(key).starts_with(prefix)) break;
    // The record's size stands for the reply's: both are the item's fields.
    if (!out->empty() && bytes + val.mv_size > max_bytes) {
      *more = true;
      break;
    }
    Item item;
    if (Status d = decode_item(as_view(val), &item); !d.ok()) return d;
    bytes += val.mv_size;
    out->push_back(std::move(item));
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "history page");
  if (out->empty() && after == 0) return {Errc::not_found, "no such item"};
  return {};
}

Status ReadTxn::neighbours(CubeId cube, ItemId id, std::size_t before, std::size_t after,
                           std::vector<Item>* earlier, std::vector<Item>* later) const {
  earlier->clear();
  later->clear();
  const std::string prefix = u64_key(cube), at = item_key(cube, id);
  // One direction at a time: from `id`, step with `op` while keys are the
  // cube's, until `want` live heads are read. Tombstones cost a step each;
  // a run of them is bounded by what a purge has not yet swept.
  auto walk = [&](MDB_cursor_op op, std::size_t want, std::vector<Item>* out) -> Status {
    if (want == 0) return {};
    Cursor cursor(txn_, tables().items);
    if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
    MDB_val key = as_val(at), val;
    int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
    // SET_RANGE lands on the first key at or above `at`.
    if (op == MDB_PREV) {
      rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cursor.get(), &key, &val, MDB_LAST)
           : rc == 0          ? mdb_cursor_get(cursor.get(), &key, &val, MDB_PREV)
                              : rc;
    } else if (rc == 0 && as_view(key) == at) {
      rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT);
    }
    for (; rc == 0 && out->size() < want; rc = mdb_cursor_get(cursor.get(), &key, &val, op)) {
      if (!as_view(key).starts_with(prefix)) return {};
      Item item;
      if (Status d = decode_item(as_view(val), &item); !d.ok()) return d;
      if (!item.deleted()) out->push_back(std::move(item));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "neighbours");
    return {};
  };
  if (Status s = walk(MDB_PREV, before, earlier); !s.ok()) return s;
  return walk(MDB_NEXT, after, later);
}

Status ReadTxn::for_each_live_item(CubeId cube, const std::function<void(const Item&)>& fn) const {
  Cursor cursor(txn_, tables().items);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    Item item;
    Status d = decode_item(v, &item);
    if (d.ok() && !item.deleted()) fn(item);
    return d;
  });
}

Status ReadTxn::for_each_item_changed_after(CubeId cube, std::uint64_t after,
                                            const std::function<void(const Item&)>& fn) const {
  Cursor cursor(txn_, tables().items);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    Item item;
    Status d = decode_item(v, &item);
    if (d.ok() && item.cube_version > after) fn(item);
    return d;
  });
}

Status ReadTxn::scan_versions(CubeId cube, std::string_view after, std::uint64_t until,
                              const std::function<bool(const Item&)>& fn, std::string* position,
                              bool* done) const {
  *done = false;
  std::string prefix = u64_key(cube);
  // A position is item (u64) + version (u32), the rest of a versions key.
  if (!after.empty() && after.size() != 12) return {Errc::corrupt, "bad export position"};
  std::string start = prefix + std::string(after);
  Cursor cursor(txn_, tables().versions);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  MDB_val key = as_val(start), val;
  int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
  // The position names the last version handed over: start after it.
  if (rc == 0 && !after.empty() && as_view(key) == start) {
    rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT);
  }
  for (; rc == 0; rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT)) {
    std::string_view k = as_view(key);
    if (k.substr(0, 8) != prefix) break;
    Item item;
    if (Status s = decode_item(as_view(val), &item); !s.ok()) return s;
    *position = std::string(k.substr(8));
    if (item.cube_version > until) continue;
    if (!fn(item)) return {};
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "scan versions");
  *done = true;
  return {};
}

// ---- WriteTxn ---------------------------------------------------------------

Status WriteTxn::read_head(CubeId cube, ItemId id, Item* out) const {
  std::string k = item_key(cube, id);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().items, &key, &val);
  if (rc) return from_mdb(rc, "read item head");
  return decode_item(as_view(val), out);
}

Status WriteTxn::head_for_change(CubeId cube, ItemId id, Item* out) {
  Status s = view_.get_item(cube, id, 0, out);
  if (!s.ok()) return s;
  if (out->state == State::frozen) {
    return {Errc::conflict, "item is frozen; make it active before changing it"};
  }
  return {};
}

Status WriteTxn::put_item(CubeId cube, Item& item, std::int64_t live_delta) {
  // Every version advances the cube's head version (what snapshots name)
  // and may change its count of live items.
  TenantId owner = 0;
  Status s = update_cube(cube, [&](Cube& c) {
    owner = c.owner;
    c.head_version += 1;
    c.live_items = static_cast<std::uint64_t>(static_cast<std::int64_t>(c.live_items) + live_delta);
    item.cube_version = c.head_version;
  });
  if (!s.ok()) return s;
  // A counter at its end (only a crafted archive could bring it near) must
  // not wrap to 0: snapshots and diffs order versions by it.
  if (item.cube_version == 0) return {Errc::conflict, "the cube's version counter is exhausted"};

  // Keep the retention queues in step with the head.
  // Keep the exact-text index in step with the head as well.
  Item previous;
  s = read_head(cube, item.id, &previous);
  const bool had_head = s.ok();
  if (had_head) {
    if (s = unqueue_from_retention(cube, previous); !s.ok()) return s;
  } else if (s.code != Errc::not_found) {
    return s;
  }
  if (s = queue_for_retention(cube, item, "update retention queue"); !s.ok()) return s;
  if (s = reindex_text(cube, had_head ? &previous : nullptr, item); !s.ok()) return s;
  // And the tenant's usage, which quotas are checked against.
  auto live_bytes = [](const Item& i) {
    return i.deleted() ? std::int64_t{0} : static_cast<std::int64_t>(i.text.size());
  };
  auto live_param_bytes = [](const Item& i) {
    return i.deleted() || !i.param ? std::int64_t{0} : static_cast<std::int64_t>(i.param->size);
  };
  if (s = add_tenant_usage(owner, 0, live_delta,
                           live_bytes(item) - (had_head ? live_bytes(previous) : 0),
                           live_param_bytes(item) - (had_head ? live_param_bytes(previous) : 0));
      !s.ok()) {
    return s;
  }
  // Each version of a parametric item holds a reference to its blob.
  if (item.param) {
    if (s = blob_ref(item.param->blob, item.param->size); !s.ok()) return s;
  }

  std::string rec = encode_item(item);
  std::string hk = item_key(cube, item.id), vk = version_key(cube, item.id, item.version);
  MDB_val k1 = as_val(hk), v1 = as_val(rec), k2 = as_val(vk), v2 = as_val(rec);
  int rc = put_raw(tables().versions, &k2, &v2, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return {Errc::corrupt, "version already exists"};
  if (rc) return from_mdb(rc, "write version");
  rc = put_raw(tables().items, &k1, &v1, 0);
  return from_mdb(rc, "write item");
}

Status WriteTxn::add_item(CubeId cube, ItemDraft draft, ItemId supersedes, std::int64_t now_ms,
                          Item* out, Item* superseded) {
  Item item;
  item.id = next_id(now_ms);
  item.version = 1;
  item.tier = draft.tier;
  item.text = std::move(draft.text);
  item.tags = std::move(draft.tags);
  item.meta = std::move(draft.meta);
  item.importance = draft.importance;
  item.expires_at_ms = draft.expires_at_ms;
  item.valid_from_ms = draft.valid_from_ms != 0 ? draft.valid_from_ms : now_ms;
  item.valid_to_ms = draft.valid_to_ms;
  item.created_at_ms = now_ms;
  item.recorded_at_ms = now_ms;
  item.provenance = std::move(draft.provenance);
  if (item.valid_to_ms != 0 && item.valid_to_ms <= item.valid_from_ms) {
    return {Errc::conflict, "valid_to must be later than valid_from"};
  }
  if (supersedes != 0) {
    Item old;
    Status s = head_for_change(cube, supersedes, &old);
    if (s.code == Errc::not_found) return {Errc::not_found, "superseded item: " + s.message};
    if (!s.ok()) return s;
    if (old.valid_to_ms != 0 && old.valid_to_ms <= item.valid_from_ms) {
      return {Errc::conflict, "the superseded fact already stopped holding before this one starts"};
    }
    if (item.valid_from_ms <= old.valid_from_ms) {
      return {Errc::conflict, "a superseding fact must start after the fact it replaces"};
    }
    old.version += 1;
    old.valid_to_ms = item.valid_from_ms;
    old.recorded_at_ms = now_ms;
    old.provenance.writer = item.provenance.writer;
    old.provenance.session = item.provenance.session;
    if ((s = put_item(cube, old)); !s.ok()) return s;
    if (superseded) *superseded = old;
  }
  Status s = put_item(cube, item, +1);
  if (!s.ok()) return s;
  *out = std::move(item);
  return {};
}

Status WriteTxn::update_item(CubeId cube, ItemId id, ItemPatch patch, std::int64_t now_ms,
                             Item* out) {
  Item item;
  Status s = head_for_change(cube, id, &item);
  if (!s.ok()) return s;
  item.version += 1;
  if (patch.text) item.text = std::move(*patch.text);
  if (patch.tags) item.tags = std::move(*patch.tags);
  if (patch.meta) item.meta = std::move(*patch.meta);
  item.recorded_at_ms = now_ms;
  item.provenance.writer = patch.writer;
  item.provenance.session = std::move(patch.session);
  s = put_item(cube, item);
  if (!s.ok()) return s;
  *out = std::move(item);
  return {};
}

Status WriteTxn::set_state(CubeId cube, ItemId id, State to, TenantId writer, std::int64_t now_ms,
                           Item* out, std::string_view session) {
  if (to == State::deleted)
    return {Errc::conflict, "delete an item with remove, not a state change"};
  Item item;
  Status s = view_.get_item(cube, id, 0, &item);
  if (!s.ok()) return s;
  if (item.state == to) return {Errc::conflict, std::string("item is already ") + to_string(to)};
  item.version += 1;
  item.state = to;
  item.recorded_at_ms = now_ms;
  item.provenance.writer = writer;
  item.provenance.session = std::string(session);
  s = put_item(cube, item);
  if (!s.ok()) return s;
  *out = std::move(item);
  return {};
}

Status WriteTxn::rollback_item(CubeId cube, ItemId id, std::uint32_t version, TenantId writer,
                               std::int64_t now_ms, Item* out) {
  std::vector<Item> versions;
  Status s = view_.history(cube, id, &versions);
  if (!s.ok()) return s;
  const Item& head = versions.back();
  if (head.state == State::frozen) {
    return {Errc::conflict, "item is frozen; make it active before changing it"};
  }
  if (version == 0 || version > versions.size()) {
    return {Errc::not_found, "item has no version " + std::to_string(version)};
  }
  const Item& old = versions[version - 1];
  if (old.deleted()) return {Errc::conflict, "cannot roll back to a tombstone; use remove"};
  Item item = old;
  item.version = head.version + 1;
  item.state = head.deleted() ? State::active : head.state;
  item.created_at_ms = head.created_at_ms;
  item.recorded_at_ms = now_ms;
  item.provenance.writer = writer;
  item.provenance.session.clear();
  s = put_item(cube, item, head.deleted() ? +1 : 0);
  if (!s.ok()) return s;
  *out = std::move(item);
  return {};
}

Status WriteTxn::remove_item(CubeId cube, ItemId id, TenantId writer, std::int64_t now_ms,
                             Item* tombstone, std::string_view session) {
  Item item;
  Status s = head_for_change(cube, id, &item);
  if (!s.ok()) return s;
  item.version += 1;
  item.state = State::deleted;
  item.recorded_at_ms = now_ms;
  item.provenance.writer = writer;
  item.provenance.session = session;
  s = put_item(cube, item, -1);
  if (!s.ok()) return s;
  *tombstone = std::move(item);
  return {};
}

Status WriteTxn::import_item(CubeId cube, std::vector<Item>* versions, std::int64_t now_ms) {
  if (versions->empty()) return {};
  // A fresh id, as an add gets: ids stay unique across cubes (importing one
  // archive twice must not give two cubes the same ids).
  const ItemId id = next_id(now_ms);
  for (Item& v : *versions) v.id = id;
  const Item& head = versions->back();
  for (const Item& v : *versions) {
    if (v.tier != head.tier || v.param.has_value() != head.param.has_value() ||
        (v.param && v.param->name != head.param->name)) {
      return {Errc::corrupt, "an item's versions differ in tier or adapter name"};
    }
    std::string rec = encode_item(v), vk = version_key(cube, v.id, v.version);
    MDB_val k = as_val(vk), val = as_val(rec);
    int rc = put_raw(tables().versions, &k, &val, MDB_NOOVERWRITE);
    if (rc) return from_mdb(rc, "import version");
    // Each version of a parametric item holds a reference to its blob,
    // which the caller has put in the blob store.
    if (v.param) {
      if (Status s = blob_ref(v.param->blob, v.param->size); !s.ok()) return s;
    }
  }
  std::string rec = encode_item(head), hk = item_key(cube, head.id);
  MDB_val k = as_val(hk), val = as_val(rec);
  int rc = put_raw(tables().items, &k, &val, 0);
  if (rc) return from_mdb(rc, "import item");
  if (Status s = queue_for_retention(cube, head, "import retention entry"); !s.ok()) return s;
  if (Status s = reindex_text(cube, nullptr, head); !s.ok()) return s;
  if (head.param) {
    if (Status s = import_param_name(cube, head); !s.ok()) return s;
  }
  TenantId owner = 0;
  Status s = update_cube(cube, [&](Cube& c) {
    owner = c.owner;
    if (!head.deleted()) c.live_items += 1;
  });
  if (!s.ok() || head.deleted()) return s;
  return add_tenant_usage(owner, 0, 1, static_cast<std::int64_t>(head.text.size()),
                          head.param ? static_cast<std::int64_t>(head.param->size) : 0);
}

}  // namespace memos::store
