// store.h — the LMDB-backed MemCube store.
//
// The tables, their keys and their rows are listed in memcube/store_tables.h,
// beside their handles.
//
// Every change writes a new immutable row in `versions` and replaces the head in
// `items`; deletion writes a tombstone version. Durability: the environment is
// opened without MDB_NOSYNC, MDB_NOMETASYNC or MDB_WRITEMAP, so a committed
// write transaction is on disk when mdb_txn_commit returns.
//
// Threading: Store is shared by all threads. ReadTxn may be used on any thread
// (MDB_NOTLS) but by one thread at a time. WriteTxn exists only on the writer
// thread (see commit_queue.h); LMDB allows one writer at a time. The writer
// thread binds itself (bind_writer_thread), and the writer-only methods
// assert it in debug builds.
//
// The table handles live in memcube/store_tables.h, which only the store's
// own files include: users of this header need not see <lmdb.h>. The values
// the operations take and return are in memcube/store_types.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/activation.h"
#include "memcube/change_set.h"
#include "memcube/ids.h"
#include "memcube/shard.h"
#include "memcube/store_types.h"
#include "memcube/tenancy.h"
#include "memcube/thread_affinity.h"
#include "memcube/working_set.h"

// LMDB's handles, as <lmdb.h> declares them (typedef struct MDB_txn MDB_txn).
struct MDB_env;
struct MDB_txn;
struct MDB_val;

namespace memos::store {

class ReadTxn;
class WriteTxn;

class Store {
 public:
  // Opens (creating if needed) the environment in folder `dir`, which must
  // exist. A store keeps the shards it was made for (meta "shards"): a
  // tenant's rows belong to shard_of(tenant, shards), so a store is never
  // opened for another count; one that issued ids with one shard is not
  // opened for several (its tenants' rows would change hands). Errors: io
  // (permissions, version mismatch, options.shards out of range or not
  // the store's), corrupt.
  static std::unique_ptr<Store> open(const std::string& dir, const StoreOptions& options,
                                     Status* status);
  // The shard count the store in `dir` must be opened for, read without
  // opening it for writing (no other environment of it may be open in this
  // process): its meta "shards", 1 for a store that issued ids before it had
  // shards, 0 for none yet (no store, or one that issued nothing: any
  // count). Errors: io, corrupt (a damaged "shards" row).
  static Status shards_made_for(const std::string& dir, std::uint32_t* shards);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Errors: io (reader table full, environment broken).
  Status begin_read(std::optional<ReadTxn>* out) const;
  // Writes a compacted copy of the store, as one read transaction sees it,
  // to `dir`/data.mdb (mdb_env_copy2 with MDB_CP_COMPACT: free pages left
  // out). `dir` must exist and hold no data.mdb. Any thread; the copy holds
  // its read transaction throughout, so a map growth waits for it.
  // Errors: io (the copy could not be written: no space, permissions, an
  // existing file).
  Status copy_to(const std::string& dir) const;
  // Writer thread only (asserted). The transaction writes `shard`'s rows:
  // the ids it issues are that shard's, and a replicated record it applies
  // must be that shard's (docs/scale-out.md). Errors: io; conflict (no such
  // shard).
  Status begin_write(std::optional<WriteTxn>* out, std::uint32_t shard = 0);
  std::uint32_t shards() const { return static_cast<std::uint32_t>(last_ids_.size()); }
  static constexpr std::uint32_t kMaxShards = 4096;
  // The shard that writes the rows of tenant `owner` and of its cubes
  // (shard.h).
  std::uint32_t shard_of(TenantId owner) const { return store::shard_of(owner, shards()); }
  // The meta row that keeps the last id `shard` issued: "last_id" for shard
  // 0 (every id a store issued before it had shards), "last_id/<shard>" for
  // the others.
  static std::string last_id_key(std::uint32_t shard);

  // Writer thread (asserted), with no write transaction open: doubles the
  // map size, up to max_map_size_bytes, waiting for open read transactions
  // to finish. Returns false if the map is already at its limit. Errors: io.
  bool grow_map(Status* status);
  // Writer thread, with no write transaction open: grows the map past
  // max_map_size_bytes by a reserve (1/1024 of it, at least 1 MiB), once,
  // for a write that frees space (removing a cube) on a full store. In a
  // copy-on-write B-tree even a removal needs free pages, and a store that
  // cannot remove anything could never get space back. Returns false if the
  // reserve is already in use. Errors: io.
  bool grow_map_into_reserve(Status* status);
  std::uint64_t map_size() const;
  // Bytes free to unprivileged writers on the store's filesystem.
  std::uint64_t free_bytes() const;
  // Below this, a commit's EIO is taken for a full disk (see WriteTxn::commit).
  static constexpr std::uint64_t kLowSpaceBytes = 64ull << 20;
  // The layout of the tables (store_tables.h) this code reads and writes;
  // replication records carry it (change_set.h).
  static constexpr std::uint32_t kSchemaVersion = 6;

  // Makes the calling thread the writer thread: from now on begin_write,
  // grow_map and a WriteTxn's id counter assert that they run on it (debug
  // builds). The CommitQueue's writer thread binds itself when it starts and
  // unbinds when it ends; until a thread binds, every thread passes, so
  // start-up work and tests may write from their own thread while no
  // CommitQueue runs.
  void bind_writer_thread() { writer_.bind(); }
  void unbind_writer_thread() { writer_.unbind(); }

 private:
  friend class ReadTxn;
  friend class WriteTxn;
  // The named databases' handles, defined in memcube/store_tables.h.
  struct Tables;
  Store();
  // Fills `text_hashes` from the heads in `items` in `txn` (opening a
  // schema 2 store, which had no such table; text_index_store.cpp).
  // Errors: corrupt, storage_full, map_full, io.
  static Status build_text_index(MDB_txn* txn, const Tables& tables);
  // Fills `tenant_usage` from the cubes and heads in `txn` (opening a schema
  // 2 or 3 store; tenant_usage_store.cpp). Errors: corrupt, storage_full,
  // map_full, io.
  static Status build_tenant_usage(MDB_txn* txn, const Tables& tables);

  MDB_env* env_ = nullptr;
  std::uint64_t max_map_size_ = 0;
  mutable std::shared_mutex resize_gate_;
  std::unique_ptr<Tables> tables_;
  ThreadAffinity writer_;
  // The last id each shard issued here, or applied from its owner's log;
  // writer thread only.
  std::vector<std::uint64_t> last_ids_;
};

// A read-only snapshot. Aborted (released) on destruction.
class ReadTxn {
 public:
  ReadTxn(ReadTxn&&) noexcept;
  ReadTxn& operator=(ReadTxn&&) = delete;
  ~ReadTxn();

  // Errors: not_found, corrupt, io.
  Status find_cube(TenantId tenant, std::string_view name, Cube* out) const;
  // The cube record by id. Errors: not_found, corrupt, io.
  Status read_cube(CubeId cube, Cube* out) const;
  // Cubes of `tenant`, ordered by name. Errors: corrupt, io.
  Status list_cubes(TenantId tenant, std::vector<Cube>* out) const;
  // version 0 means the head. The head of a deleted item is not_found; its
  // earlier versions stay readable. Errors: not_found, corrupt, io.
  Status get_item(CubeId cube, ItemId id, std::uint32_t version, Item* out) const;
  // Every version, oldest first. Errors: not_found, corrupt, io.
  Status history(CubeId cube, ItemId id, std::vector<Item>* out) const;
  // The versions after `after` (0: from the first), oldest first, as many
  // as `max_bytes` of stored records hold (at least one, whatever its
  // size); `more` says whether later versions remain. Past the last version
  // it is empty. Errors: not_found (no such item, when `after` is 0),
  // corrupt, io.
  Status history_page(CubeId cube, ItemId id, std::uint32_t after, std::size_t max_bytes,
                      std::vector<Item>* out, bool* more) const;
  // The heads nearest item `id` in the cube's id order (the order items
  // were added in), tombstones skipped: at most `before` of lower ids,
  // nearest first, into `earlier`, and at most `after` of higher ids,
  // nearest first, into `later`; `id` itself is neither. Routing's expand
  // module reads a hit's neighbouring turns with it. Errors: corrupt, io.
  Status neighbours(CubeId cube, ItemId id, std::size_t before, std::size_t after,
                    std::vector<Item>* earlier, std::vector<Item>* later) const;
  // Calls fn for every item whose head is not a tombstone, in id order.
  // Errors: corrupt, io.
  Status for_each_live_item(CubeId cube, const std::function<void(const Item&)>& fn) const;
  // Calls fn for every item whose head was written after cube version
  // `after`, tombstones included, in id order: what an index snapshot that
  // covers `after` lacks (an item purged since leaves no head; callers
  // that must know compare counts). Reads every head of the cube once.
  // Errors: corrupt, io.
  Status for_each_item_changed_after(CubeId cube, std::uint64_t after,
                                     const std::function<void(const Item&)>& fn) const;
  // Every cube of every tenant (start-up index rebuild). Errors: corrupt, io.
  Status list_all_cubes(std::vector<Cube>* out) const;
  // Export: calls `fn` for the cube's versions after position `after` (an
  // opaque position from an earlier call, empty for the start) in item and
  // version order, skipping versions written after cube version `until`,
  // until `fn` returns false or the versions end. `position` receives the
  // position of the last version handed over; `done` whether none remain.
  // Errors: corrupt, io.
  Status scan_versions(CubeId cube, std::string_view after, std::uint64_t until,
                       const std::function<bool(const Item&)>& fn, std::string* position,
                       bool* done) const;
  // Zeros for an item never read. Errors: corrupt, io.
  Status access_stats(CubeId cube, ItemId item, AccessStats* out) const;
  // References to a content-addressed blob (blob_store.h); 0 if none.
  // Errors: corrupt, io.
  Status blob_refs(const std::array<std::uint8_t, 32>& blob, std::uint64_t* refs) const;
  // Every blob something references, in digest order, with its size.
  // Errors: corrupt, io.
  Status for_each_blob(
      const std::function<void(const std::array<std::uint8_t, 32>&, std::uint64_t size)>& fn) const;
  // Snapshots of a cube, oldest first. Errors: corrupt, io.
  Status list_snapshots(CubeId cube, std::vector<Snapshot>* out) const;
  // Errors: not_found, corrupt, io.
  Status find_snapshot(CubeId cube, std::string_view tag, Snapshot* out) const;
  // The items that differ between the cube at head version `from` and at
  // `to` (live at one and not the other, or at different versions), in id
  // order. Reads every version of the cube once. Errors: corrupt, io.
  Status diff_cube_versions(CubeId cube, std::uint64_t from, std::uint64_t to,
                            std::vector<SnapshotChange>* out) const;
  // The lowest id of the cube's items whose head is not a tombstone and
  // holds exactly `text` (tags and metadata aside): an add's duplicate.
  // Errors: not_found (none), corrupt, io.
  Status find_live_text(CubeId cube, std::string_view text, ItemId* out) const;
  // The recorded outcome of `tenant`'s write with `key`.
  // Errors: not_found, corrupt, io.
  Status find_idempotency(TenantId tenant, std::string_view key, IdempotencyRecord* out) const;

  // ---- parametric tier (param_store.cpp) ----
  // The head of the cube's parametric item named `name`, a tombstone
  // included (a removed one keeps its name until purged). Errors: not_found,
  // corrupt, io.
  Status find_param(CubeId cube, std::string_view name, Item* out) const;
  // The heads of the cube's parametric items that are not tombstones, by
  // name. Errors: corrupt, io.
  Status list_params(CubeId cube, std::vector<Item>* out) const;
  // The ids of every parametric item of the cube, removed ones included,
  // ascending (an export's second pass). Errors: corrupt, io.
  Status param_items(CubeId cube, std::vector<ItemId>* out) const;

  // ---- activation tier (activation.h; activation_store.cpp) ----
  // The tenant's salt for activation keys. Errors: not_found (none made
  // yet), corrupt, io.
  Status tenant_salt(TenantId tenant, Digest* out) const;

  // Replication: the last record of `shard`'s log this store holds (written
  // or applied) with its digest; sequence 0 if none. Errors: corrupt, io.
  Status log_position(std::uint32_t shard, LogPosition* out) const;
  // Errors: not_found, corrupt, io.
  Status get_activation(CubeId cube, ItemId id, Activation* out) const;
  // The cube's activation items in id order. Errors: corrupt, io.
  Status list_activations(CubeId cube, const std::function<void(const Activation&)>& fn) const;
  // The items found under chain digest `prefix`, until `fn` returns false.
  // Errors: corrupt, io.
  Status activations_under(const Digest& prefix,
                           const std::function<bool(CubeId, ItemId)>& fn) const;
  // Zeros for a tenant with none. Errors: corrupt, io.
  Status activation_usage(TenantId tenant, ActivationUsage* out) const;
  // Zeros for a tenant with none. Errors: corrupt, io.
  Status tenant_usage(TenantId tenant, TenantUsage* out) const;
  // Every tenant's usage row, by tenant id (a tenant that never wrote has
  // none). Errors: corrupt, io.
  Status for_each_tenant_usage(const std::function<void(TenantId, const TenantUsage&)>& fn) const;
  // The router's spending on the tenant's last day with any (zeros for a
  // tenant with none). Errors: corrupt (a damaged row), io.
  Status router_usage(TenantId tenant, RouterUsage* out) const;
  // Up to `max` of the tenant's items, least recently used first.
  // Errors: corrupt, io.
  Status least_recent_activations(TenantId tenant, std::size_t max,
                                  std::vector<std::pair<CubeId, ItemId>>* out) const;

  // ---- scheduler (working_set.h; working_set_store.cpp) ----
  // Errors: not_found (the cube has none), corrupt, io.
  Status working_set(CubeId cube, WorkingSet* out) const;
  // Every cube's, by cube id. Errors: corrupt, io.
  Status list_working_sets(std::vector<WorkingSet>* out) const;

  // ---- sharing (tenancy.h; share_store.cpp) ----
  // Errors: not_found (not shared with `tenant`), corrupt, io.
  Status find_share(CubeId cube, TenantId tenant, CubeShare* out) const;
  // The cube's grants, by tenant. Errors: corrupt, io.
  Status list_shares(CubeId cube, std::vector<CubeShare>* out) const;
  // The cubes shared with `tenant`, by cube id. Errors: corrupt, io.
  Status shared_with(TenantId tenant, std::vector<CubeShare>* out) const;

 private:
  friend class Store;
  friend class WriteTxn;
  ReadTxn(const Store* store, MDB_txn* txn) : store_(store), txn_(txn) {}
  // The store's table handles (defined in memcube/store_tables.h).
  const Store::Tables& tables() const;
  const Store* store_;
  MDB_txn* txn_;
  bool owns_ = true;  // false for the view of a WriteTxn, which owns its txn
  // Held for the life of a read transaction: LMDB may only resize the map
  // while no transaction is open in the process (see Store::grow_map).
  std::shared_lock<std::shared_mutex> gate_;
};

// A write transaction; only the writer thread holds one. Operations on a
// WriteTxn see its own earlier changes. Nothing is durable until commit().
class WriteTxn {
 public:
  WriteTxn(WriteTxn&&) noexcept;
  WriteTxn& operator=(WriteTxn&&) = delete;
  ~WriteTxn();  // aborts if neither committed nor aborted

  // Runs `op` in a nested transaction: if it returns an error, only its own
  // changes are rolled back. Errors: whatever `op` returns; io.
  Status nested(const std::function<Status(WriteTxn&)>& op);
  // As nested(), for the rows of `shard` (which may be another than this
  // transaction's): the ids `op` issues and its seal() are that shard's, and
  // what it writes is recorded in `changes` (null: not recorded) instead of
  // this transaction's record. So one transaction, one commit, holds each
  // shard's group of a commit turn, and each group's record is its own
  // (CommitQueue). Errors: whatever `op` returns; conflict (no such shard);
  // io.
  Status nested_for_shard(std::uint32_t shard, ChangeSet* changes,
                          const std::function<Status(WriteTxn&)>& op);

  // A new time-ordered id of this transaction's shard: the least number
  // at or above `now_ms` << 16 (48 bits of Unix ms, then 16 bits) that is
  // congruent to the shard modulo the store's shards, and strictly greater
  // than any the shard issued before even if the clock goes back. With one
  // shard: now_ms << 16, or the last id + 1. Unique in the cluster.
  std::uint64_t next_id(std::int64_t now_ms);
  // The shard whose rows this transaction writes (Store::begin_write).
  std::uint32_t shard() const { return shard_; }
  // Whether the rows of tenant `owner` are this transaction's shard's. The
  // writers that sweep many tenants' rows (record_access, add_router_usage,
  // run_retention) write only those, so each shard's owner runs them for
  // its own shard.
  bool writes_for(TenantId owner) const { return store_->shard_of(owner) == shard_; }
  // The same for cube `cube`'s rows: its owner's. A cube that is gone is
  // shard 0's (what a sweep finds of it is dropped once). Errors: corrupt, io.
  Status writes_for_cube(CubeId cube, bool* yes) const;

  // Errors: already_exists, storage_full, corrupt, io.
  Status create_cube(TenantId tenant, std::string_view name, std::string_view embedder,
                     std::uint32_t dimension, std::int64_t now_ms, Cube* out,
                     std::string_view default_retriever = "dense", std::string_view language = "");
  // Removes the cube, its items and all their versions, and every grant of
  // it. Errors: not_found,
  // conflict (live items and !force), storage_full, corrupt, io.
  Status remove_cube(TenantId tenant, std::string_view name, bool force, Cube* removed);
  // Writes version 1 of a new item. With `supersedes` non-zero, the fact it
  // names stops holding where this one starts: that item gets a new version
  // whose valid_to is this item's valid_from (it stays, no longer valid).
  // Errors: not_found (superseded item absent or deleted), conflict
  // (superseded item frozen, validity out of order), storage_full, corrupt, io.
  // `superseded`, when given, receives the superseded item's new version.
  Status add_item(CubeId cube, ItemDraft draft, ItemId supersedes, std::int64_t now_ms, Item* out,
                  Item* superseded = nullptr);
  // Writes the next version with the patch applied.
  // Errors: not_found (absent or deleted), conflict (frozen), storage_full,
  // corrupt, io.
  Status update_item(CubeId cube, ItemId id, ItemPatch patch, std::int64_t now_ms, Item* out);
  // Moves an item between active, archived and frozen (see State); the
  // new version's provenance names `writer` and `session` (the scheduler
  // names itself there). Errors: not_found (absent or deleted), conflict
  // (already in that state, or `to` is deleted), storage_full, corrupt, io.
  Status set_state(CubeId cube, ItemId id, State to, TenantId writer, std::int64_t now_ms,
                   Item* out, std::string_view session = {});
  // Writes a new version equal in content to `version` (text, tags,
  // metadata, importance, expiry and validity). Rolling a deleted item back
  // brings it back as active. Errors: not_found (no such item or version),
  // conflict (frozen, or `version` is a tombstone), storage_full, corrupt, io.
  Status rollback_item(CubeId cube, ItemId id, std::uint32_t version, TenantId writer,
                       std::int64_t now_ms, Item* out);
  // Writes a tombstone version. Errors: not_found (absent or already
  // deleted), conflict (frozen), storage_full, corrupt, io.
  Status remove_item(CubeId cube, ItemId id, TenantId writer, std::int64_t now_ms, Item* tombstone,
                     std::string_view session = {});

  // Counts one more reference to a blob already put in the blob store (in
  // the same transaction as the record that holds it). `size` must match
  // earlier references. Errors: corrupt (size differs), storage_full,
  // map_full, io.
  Status blob_ref(const std::array<std::uint8_t, 32>& blob, std::uint64_t size);
  // Drops one reference; at zero the row goes and garbage collection may
  // remove the file. Errors: not_found (no reference), corrupt, io.
  Status blob_unref(const std::array<std::uint8_t, 32>& blob);
  // Adds a batch of reads to the items' access statistics; items that are
  // gone, and those of another shard's cubes (writes_for_cube), are
  // skipped. Errors: storage_full, map_full, corrupt, io.
  Status record_access(const std::vector<AccessUpdate>& batch);
  // Adds the router's spending to each tenant's day (this shard's
  // tenants'; writes_for); a row of an earlier day (or a damaged one)
  // starts again from zero. Errors: storage_full,
  // map_full, io.
  Status add_router_usage(const std::vector<RouterCharge>& batch);
  // Sets an item's statistics (an import carries its strength); a
  // strength below 1 or not finite is stored as 1, negative recalls as 0.
  // Errors: storage_full, map_full, io.
  Status put_access_stats(CubeId cube, ItemId item, const AccessStats& stats);
  // Import: writes every version of one item (versions 1..n, cube versions
  // kept) under a fresh id issued as of `now_ms`, which it sets in
  // `versions`; then its head, its retention queue entry and its live
  // count. A parametric item's versions each reference their blob (put in
  // the blob store first) and its name is claimed. Errors: not_found
  // (cube), corrupt (versions of mixed tiers or names, a name another
  // adapter holds, a blob size that differs from its other references),
  // storage_full, map_full, io.
  Status import_item(CubeId cube, std::vector<Item>* versions, std::int64_t now_ms);
  // Import: raises the cube's head version to at least `head_version` and
  // writes its snapshots. Errors: already_exists (a tag), storage_full,
  // map_full, corrupt, io.
  Status finish_import(CubeId cube, std::uint64_t head_version,
                       const std::vector<Snapshot>& snapshots);
  // Errors: not_found, already_exists (`to` is taken), storage_full,
  // map_full, corrupt, io.
  Status rename_cube(TenantId tenant, std::string_view from, std::string_view to, Cube* out);
  // Records that the cube's memories are now embedded by `embedder` at
  // `dimension` (the daemon's embedder changed: its dense index is rebuilt
  // from the texts). Items and versions are untouched. Errors: not_found,
  // storage_full, map_full, corrupt, io.
  Status set_cube_embedder(CubeId cube, std::string_view embedder, std::uint32_t dimension);
  // Names the cube's current head version `tag`. Errors: already_exists,
  // not_found (cube), storage_full, map_full, corrupt, io.
  Status create_snapshot(CubeId cube, std::string_view tag, TenantId by, std::int64_t now_ms,
                         Snapshot* out);
  // Records the outcome of a keyed write in the same transaction, so the
  // key and the write become durable together. Errors: storage_full, io.
  Status put_idempotency(TenantId tenant, std::string_view key, const IdempotencyRecord& record);

  // ---- parametric tier (param_store.cpp) ----
  // Writes `param` (its blob already durable in the blob store) as the
  // cube's parametric item of that name: version 1 of a new item, or the
  // next version of the one holding the name (revived if removed). `text`
  // is the item's description; `writer` its provenance, `sources` the
  // memories it was derived from. `created` says which. Errors: not_found
  // (cube), conflict (the item holding the name is frozen), storage_full,
  // map_full, corrupt, io.
  Status put_param(CubeId cube, const Parametric& param, std::string text,
                   const Provenance& provenance, std::int64_t now_ms, Item* out, bool* created);

  // ---- activation tier ----
  // The tenant's salt, made from the system's random source the first time.
  // Errors: storage_full, map_full, corrupt, io.
  Status ensure_tenant_salt(TenantId tenant, Digest* out);
  // Stores an activation item whose blob is already durable in the blob
  // store: its record, its chain digests, a blob reference, its place in the
  // tenant's LRU and usage. Errors: already_exists (the id), not_found
  // (cube), storage_full, map_full, corrupt, io.
  Status put_activation(const Activation& activation);
  // Removes an item, its digests and its blob reference. Errors: not_found,
  // storage_full, map_full, corrupt, io.
  Status remove_activation(CubeId cube, ItemId id, Activation* removed = nullptr);
  // Marks an item used now (its LRU place, last use, use count).
  // Errors: not_found, storage_full, map_full, corrupt, io.
  Status touch_activation(CubeId cube, ItemId id, std::int64_t now_ms);
  // Removes, as remove_activation does, at most `max_items` states of this
  // shard's tenants (writes_for) whose cube is gone: those a grantee stored
  // in a shared cube another shard removed (remove_cube leaves them to
  // their own shard). Sets `*dropped`. Errors: storage_full, map_full,
  // corrupt, io.
  Status drop_orphaned_activations(std::size_t max_items, std::size_t* dropped);

  // ---- scheduler ----
  // Replaces the cube's working set. Errors: not_found (cube), conflict
  // (over kMaxWorkingSetItems members), storage_full, map_full, corrupt, io.
  Status put_working_set(const WorkingSet& set);
  // Errors: storage_full, map_full, io (none to remove is success).
  Status remove_working_set(CubeId cube);

  // ---- sharing ----
  // Grants `share.tenant` access to `share.cube`, replacing an earlier
  // grant. Errors: not_found (cube), conflict (the tenant owns the cube),
  // storage_full, map_full, corrupt, io.
  Status put_share(const CubeShare& share);
  // Errors: not_found (no such grant), storage_full, map_full, corrupt, io.
  Status remove_share(CubeId cube, TenantId tenant, CubeShare* removed);

  // Retention, bounded: at most `max_items` items whose TTL has passed get a
  // tombstone version (frozen items do not expire while frozen), and at most
  // `max_items` items deleted longer ago than their tenant's purge delay are
  // purged with every version; only items of this shard's cubes
  // (writes_for_cube); then drop_orphaned_activations(max_items). Errors:
  // storage_full, map_full, corrupt, io.
  Status run_retention(std::int64_t now_ms, const PurgeDelays& purge_delays, std::size_t max_items,
                       RetentionResult* out);

  // Reads within this transaction.
  const ReadTxn& reader() const { return view_; }

  // From now on, every row this transaction and its nested ones write is
  // recorded in `changes` (which must outlive it), in order; a nested
  // transaction that fails drops what it recorded. The rows a store keeps
  // for itself (its schema number) are never recorded.
  void record_changes(ChangeSet* changes) { changes_ = changes; }
  // Applies another store's recorded changes as they are (a follower
  // applying the replication log): puts and erases row by row, blob
  // reference deltas to the counts, and the shard's last id in meta only
  // ever forward, so ids issued here later stay unique. Recorded in turn
  // when recording. Errors: corrupt (a table or kind this store does not
  // know, a malformed blob delta, a reference count that would go below 0,
  // another shard's last id), storage_full,
  // map_full, io.
  Status apply_changes(const ChangeSet& changes);

  // Records that this transaction holds `shard`'s log up to a record
  // (ReadTxn::log_position). A row of this store's own: never recorded.
  // Errors: conflict (a digest that is not 32 bytes), storage_full,
  // map_full, io.
  Status set_log_position(std::uint32_t shard, const LogPosition& position);

  // Writes the shard's last issued id to meta (recorded like any row), so that a
  // recorded change set is complete before commit; commit() does it when
  // this was not called. Errors: storage_full, map_full, io.
  Status seal();
  // Makes every change durable (fsync). Errors: storage_full (ENOSPC), io.
  Status commit();
  void abort();

 private:
  friend class Store;
  WriteTxn(Store* store, MDB_txn* txn, std::uint32_t shard);
  const Store::Tables& tables() const { return view_.tables(); }
  // Writes `item` as a new version and the head, advancing the cube's head
  // version (`item` gets it as its cube_version) and adding `live_delta` to
  // its live count; keeps the retention queues in step. Errors: not_found
  // (cube), corrupt (the version exists), storage_full, map_full, io.
  Status put_item(CubeId cube, Item& item, std::int64_t live_delta = 0);
  // Reads, changes and writes back a cube record: the one read-modify-write
  // of `cubes`. Errors: not_found, storage_full, map_full, corrupt, io.
  Status update_cube(CubeId cube, const std::function<void(Cube&)>& change);
  // The head even if it is a tombstone. Errors: not_found, corrupt, io.
  Status read_head(CubeId cube, ItemId id, Item* out) const;
  // Reads the head for a change: absent or deleted is not_found, frozen is
  // conflict.
  Status head_for_change(CubeId cube, ItemId id, Item* out);
  // Puts `head` in the retention queue it belongs in, if any (expiry for a
  // live, unfrozen head with a TTL; tombstones for a deleted one).
  // Errors: storage_full, map_full, io (with `what` in the message).
  Status queue_for_retention(CubeId cube, const Item& head, std::string_view what);
  // Moves the head's row in `text_hashes` from `previous` (null: a new
  // item) to `head`. Errors: storage_full, map_full, io.
  Status reindex_text(CubeId cube, const Item* previous, const Item& head);
  // Takes the head that is being replaced out of its retention queue.
  // Errors: storage_full, map_full, io.
  Status unqueue_from_retention(CubeId cube, const Item& previous_head);
  // Adds the deltas to a tenant's usage (none may take a count below 0).
  // Errors: corrupt (it would), storage_full, map_full, io.
  Status add_tenant_usage(TenantId tenant, std::int64_t cubes, std::int64_t items,
                          std::int64_t text_bytes, std::int64_t param_bytes = 0);
  // Adds the deltas to a tenant's activation usage (zeros if none yet),
  // saturating at 0: a row that undercounts must not wrap around. Recorded
  // as the deltas, not the row: removing a shared cube gives back, in the
  // cube's shard, the usage of the states its grantees stored there, whose
  // own shards' owners may change the same rows meanwhile (docs/scale-out.md,
  // "Writing several shards at once"). Errors: storage_full, map_full,
  // corrupt, io.
  Status add_activation_usage(TenantId tenant, std::int64_t count, std::int64_t bytes);
  // Removes every grant of a cube (its removal). Errors: io.
  Status remove_shares_of(CubeId cube);
  // Before a parametric item's versions are deleted (a purge, its cube's
  // removal): drops each version's blob reference and its name.
  // Errors: corrupt, storage_full, map_full, io.
  Status drop_param(CubeId cube, ItemId item);
  // drop_param for every parametric item of the cube. Errors: as drop_param.
  Status drop_params_of(CubeId cube);
  // Import: claims the head's adapter name for it. Errors: corrupt (the
  // name is taken), storage_full, map_full, io.
  Status import_param_name(CubeId cube, const Item& head);

  // The only ways this transaction writes rows (change_capture.cpp): each
  // records what it did when record_changes asked for it. put_raw and
  // del_raw take and return what mdb_put and mdb_del do.
  int put_raw(unsigned dbi, MDB_val* key, MDB_val* value, unsigned flags);
  int del_raw(unsigned dbi, MDB_val* key, MDB_val* value);
  // As lmdb_util.h's helpers of the same names.
  Status put_row(unsigned dbi, std::string_view key, std::string_view value, std::string_view what);
  Status del_row(unsigned dbi, std::string_view key, std::string_view what);
  Status delete_prefix(unsigned dbi, std::string_view prefix, std::string_view what);
  // Adds `delta` to a blob's reference count (the row goes at 0); recorded
  // as a delta. Errors: corrupt (the count would go below 0), storage_full,
  // map_full, io.
  Status add_blob_refs(const std::array<std::uint8_t, 32>& blob, std::int64_t delta,
                       std::uint64_t size);

  Store* store_;
  MDB_txn* txn_;
  ReadTxn view_;
  ChangeSet* changes_ = nullptr;
  bool sealed_ = false;
  std::uint32_t shard_ = 0;
};

}  // namespace memos::store
