// Snapshots (store.h): table `snapshots`, named cube-wide versions, and the
// diff of a cube between two of its versions.
#include <lmdb.h>

#include <algorithm>
#include <optional>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string snapshot_key(CubeId cube, std::string_view tag) {
  std::string k = u64_key(cube);
  k.append(tag);
  return k;
}

}  // namespace

// ---- ReadTxn ----------------------------------------------------------------

Status ReadTxn::list_snapshots(CubeId cube, std::vector<Snapshot>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().snapshots);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  Status s = cursor.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    Snapshot snap;
    Status d = decode_snapshot(v, &snap);
    if (d.ok()) out->push_back(std::move(snap));
    return d;
  });
  std::sort(out->begin(), out->end(),
            [](const Snapshot& a, const Snapshot& b) { return a.cube_version < b.cube_version; });
  return s;
}

Status ReadTxn::find_snapshot(CubeId cube, std::string_view tag, Snapshot* out) const {
  std::string k = snapshot_key(cube, tag);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().snapshots, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no snapshot named '" + std::string(tag) + "'"};
  if (rc) return from_mdb(rc, "read snapshot");
  return decode_snapshot(as_view(val), out);
}

Status ReadTxn::diff_cube_versions(CubeId cube, std::uint64_t from, std::uint64_t to,
                                   std::vector<SnapshotChange>* out) const {
  out->clear();
  // Versions are keyed cube + item + version, so each item's versions come
  // together and in order: keep the last one at or below each cube version.
  std::optional<Item> at_from, at_to;
  ItemId current = 0;
  auto flush = [&] {
    bool was = at_from && !at_from->deleted(), is = at_to && !at_to->deleted();
    SnapshotChange c;
    c.item = current;
    c.from_version = was ? at_from->version : 0;
    c.to_version = is ? at_to->version : 0;
    if (!was && is) {
      c.kind = SnapshotChange::Kind::added;
      c.text = at_to->text;
    } else if (was && !is) {
      c.kind = SnapshotChange::Kind::removed;
      c.text = at_from->text;
    } else if (was && is && at_from->version != at_to->version) {
      c.kind = SnapshotChange::Kind::changed;
      c.text = at_to->text;
    } else {
      return;
    }
    out->push_back(std::move(c));
  };
  Cursor cursor(txn_, tables().versions);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  Status s = cursor.scan_prefix(u64_key(cube), [&](std::string_view k, std::string_view v) {
    Item item;
    Status d = decode_item(v, &item);
    if (!d.ok()) return d;
    ItemId id = get_be(k.data() + 8, 8);
    if (id != current) {
      if (current != 0) flush();
      current = id;
      at_from.reset();
      at_to.reset();
    }
    if (item.cube_version <= from) at_from = item;
    if (item.cube_version <= to) at_to = std::move(item);
    return Status{};
  });
  if (s.ok() && current != 0) flush();
  return s;
}

// ---- WriteTxn ---------------------------------------------------------------

Status WriteTxn::create_snapshot(CubeId cube, std::string_view tag, TenantId by,
                                 std::int64_t now_ms, Snapshot* out) {
  Snapshot existing;
  Status s = view_.find_snapshot(cube, tag, &existing);
  if (s.ok()) return {Errc::already_exists, "snapshot '" + std::string(tag) + "' already exists"};
  if (s.code != Errc::not_found) return s;
  Cube c;
  if ((s = view_.read_cube(cube, &c)); !s.ok()) return s;
  Snapshot snap{std::string(tag), c.head_version, now_ms, c.live_items, by};
  std::string k = snapshot_key(cube, tag), v = encode_snapshot(snap);
  MDB_val key = as_val(k), val = as_val(v);
  if (int rc = put_raw(tables().snapshots, &key, &val, MDB_NOOVERWRITE)) {
    return from_mdb(rc, "write snapshot");
  }
  *out = std::move(snap);
  return {};
}

Status WriteTxn::finish_import(CubeId cube, std::uint64_t head_version,
                               const std::vector<Snapshot>& snapshots) {
  for (const Snapshot& snap : snapshots) {
    std::string k = snapshot_key(cube, snap.tag), v = encode_snapshot(snap);
    MDB_val key = as_val(k), val = as_val(v);
    int rc = put_raw(tables().snapshots, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return {Errc::already_exists, "snapshot '" + snap.tag + "' twice"};
    if (rc) return from_mdb(rc, "import snapshot");
  }
  return update_cube(cube,
                     [&](Cube& c) { c.head_version = std::max(c.head_version, head_version); });
}

}  // namespace memos::store
