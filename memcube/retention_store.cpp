// Retention (store.h): tables `expiry` and `tombstones`, the time-ordered
// queues run_retention works through: items whose TTL passes get a
// tombstone, tombstones older than the retention period are purged.
#include <lmdb.h>

#include <optional>
#include <string>
#include <unordered_map>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

// Retention's time-ordered queues: when (u64) + cube + item.
std::string due_key(std::int64_t when, CubeId cube, ItemId id) {
  std::string k;
  put_be(k, static_cast<std::uint64_t>(when < 0 ? 0 : when), 8);
  put_be(k, cube, 8);
  put_be(k, id, 8);
  return k;
}

// Where a head version waits for retention: in `expiry` (live, unfrozen
// items with a TTL) or `tombstones` (deleted ones), under `key`.
struct QueueEntry {
  bool expiry;
  std::string key;
};

std::optional<QueueEntry> queue_entry(CubeId cube, const Item& head) {
  if (head.deleted()) return QueueEntry{false, due_key(head.recorded_at_ms, cube, head.id)};
  if (head.expires_at_ms != 0 && head.state != State::frozen) {
    return QueueEntry{true, due_key(head.expires_at_ms, cube, head.id)};
  }
  return std::nullopt;
}

}  // namespace

Status WriteTxn::queue_for_retention(CubeId cube, const Item& head, std::string_view what) {
  auto entry = queue_entry(cube, head);
  if (!entry) return {};
  return put_row(entry->expiry ? tables().expiry : tables().tombstones, entry->key, "", what);
}

Status WriteTxn::unqueue_from_retention(CubeId cube, const Item& previous_head) {
  auto entry = queue_entry(cube, previous_head);
  if (!entry) return {};
  return del_row(entry->expiry ? tables().expiry : tables().tombstones, entry->key,
                 "update retention queue");
}

Status WriteTxn::run_retention(std::int64_t now_ms, const PurgeDelays& purge_delays,
                               std::size_t max_items, RetentionResult* out) {
  // Collect due entries first: the loops below change the queues they read.
  struct Due {
    std::string key;
    CubeId cube;
    ItemId item;
  };
  // Only this shard's cubes' entries (another shard's owner runs its own
  // retention and sends it through its log).
  std::unordered_map<CubeId, bool> mine;
  auto due = [&](MDB_dbi dbi, std::int64_t until, std::vector<Due>* found) {
    Cursor cursor(txn_, dbi);
    if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
    MDB_val key, val;
    int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_FIRST);
    for (; rc == 0 && found->size() < max_items;
         rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_NEXT)) {
      std::string_view k = as_view(key);
      if (k.size() != 24) return Status{Errc::corrupt, "retention queue key has a bad length"};
      if (static_cast<std::int64_t>(get_be(k.data(), 8)) > until) break;
      const CubeId cube = get_be(k.data() + 8, 8);
      auto [at, fresh] = mine.try_emplace(cube, false);
      if (fresh) {
        if (Status s = writes_for_cube(cube, &at->second); !s.ok()) return s;
      }
      if (at->second) found->push_back({std::string(k), cube, get_be(k.data() + 16, 8)});
    }
    return rc == 0 || rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "scan retention queue");
  };

  std::vector<Due> expired, purgeable;
  Status s = due(tables().expiry, now_ms, &expired);
  if (!s.ok()) return s;
  for (const auto& e : expired) {
    Item tombstone;
    // Written by the daemon, not a tenant: the session says so.
    s = remove_item(e.cube, e.item, 0, now_ms, &tombstone, "retention");
    // An entry whose item went with its cube is simply dropped.
    if (s.code == Errc::not_found) s = del_row(tables().expiry, e.key, "drop retention entry");
    if (!s.ok()) return s;
    if (tombstone.id != 0) out->expired.emplace_back(e.cube, e.item);
  }
  // The queue is in deletion order, so it is read up to the shortest delay;
  // an entry whose tenant keeps deleted items longer moves to where that
  // tenant's delay ends, so that no scan meets it again before then (and a
  // tenant with a long delay never holds back the others' purges).
  const std::int64_t shortest = purge_delays.shortest();
  s = due(tables().tombstones, now_ms - shortest, &purgeable);
  if (!s.ok()) return s;
  for (const auto& e : purgeable) {
    Item head;
    Status h = read_head(e.cube, e.item, &head);
    if (h.code == Errc::not_found || (h.ok() && !head.deleted())) {
      // Gone with its cube, or brought back by a rollback after its entry
      // moved: nothing to purge.
      if (s = del_row(tables().tombstones, e.key, "drop retention entry"); !s.ok()) return s;
      continue;
    }
    if (!h.ok()) return h;
    Cube cube;
    if (s = view_.read_cube(e.cube, &cube); !s.ok() && s.code != Errc::not_found) return s;
    const std::int64_t delay = s.ok() ? purge_delays.of(cube.owner) : shortest;
    if (head.recorded_at_ms > now_ms - delay) {
      s = del_row(tables().tombstones, e.key, "move retention entry");
      if (s.ok()) {
        s = put_row(tables().tombstones,
                    due_key(head.recorded_at_ms + delay - shortest, e.cube, e.item), "",
                    "move retention entry");
      }
      if (!s.ok()) return s;
      continue;
    }
    // Every version, then the head, then the queue entry (a parametric
    // item's versions give back their blobs and its name first).
    if (head.param) {
      if (s = drop_param(e.cube, e.item); !s.ok()) return s;
    }
    std::string prefix = item_key(e.cube, e.item);
    if (s = delete_prefix(tables().versions, prefix, "purge versions"); !s.ok()) return s;
    MDB_val hk = as_val(prefix);
    int rc = del_raw(tables().access, &hk, nullptr);
    if (rc && rc != MDB_NOTFOUND) return from_mdb(rc, "purge access statistics");
    rc = del_raw(tables().items, &hk, nullptr);
    if (rc && rc != MDB_NOTFOUND) return from_mdb(rc, "purge item");
    if (s = del_row(tables().tombstones, e.key, "drop retention entry"); !s.ok()) return s;
    if (rc == 0) ++out->purged;  // not when its cube took the item first
  }
  // The states this shard's tenants kept in shared cubes another shard
  // removed (remove_cube).
  return drop_orphaned_activations(max_items, &out->orphaned_states);
}

}  // namespace memos::store
