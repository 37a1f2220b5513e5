#include "memcube/store.h"

#include <sys/statvfs.h>
#include <algorithm>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "memcube/crc32c.h"
#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"

namespace memos::store {
namespace {

// 2: records carry a checksum header and the full item model.
constexpr std::uint32_t kSchemaVersion = 2;

// Retention's time-ordered queues: when (u64) + cube + item.
std::string due_key(std::int64_t when, CubeId cube, ItemId id) {
  std::string k;
  put_be(k, static_cast<std::uint64_t>(when < 0 ? 0 : when), 8);
  put_be(k, cube, 8);
  put_be(k, id, 8);
  return k;
}

// The retention queue a head version belongs in, if any: expiry for live,
// unfrozen items with a TTL; tombstones for deleted ones.
std::optional<std::pair<bool, std::string>> queue_entry(CubeId cube, const Item& head) {
  if (head.deleted()) return std::pair{false, due_key(head.recorded_at_ms, cube, head.id)};
  if (head.expires_at_ms != 0 && head.state != State::frozen) {
    return std::pair{true, due_key(head.expires_at_ms, cube, head.id)};
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(State state) {
  switch (state) {
    case State::active:
      return "active";
    case State::archived:
      return "archived";
    case State::frozen:
      return "frozen";
    case State::deleted:
      return "deleted";
  }
  return "unknown";
}

Status from_mdb(int rc, std::string_view what) {
  if (rc == 0) return {};
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, msg};
  if (rc == MDB_MAP_FULL) return {Errc::map_full, msg};
  if (rc == ENOSPC) return {Errc::storage_full, msg};
  return {Errc::io, msg};
}

// ---- Store ------------------------------------------------------------------

std::unique_ptr<Store> Store::open(const std::string& dir, const StoreOptions& options,
                                   Status* status) {
  std::unique_ptr<Store> store(new Store());
  auto fail = [&](int rc, std::string_view what) {
    *status = from_mdb(rc, what);
    if (status->code == Errc::not_found) status->code = Errc::io;
    return nullptr;
  };
  int rc = mdb_env_create(&store->env_);
  if (rc) return fail(rc, "mdb_env_create");
  if ((rc = mdb_env_set_maxdbs(store->env_, 32))) return fail(rc, "mdb_env_set_maxdbs");
  if ((rc = mdb_env_set_maxreaders(store->env_, options.max_readers)))
    return fail(rc, "mdb_env_set_maxreaders");
  store->max_map_size_ = std::max(options.map_size_bytes, options.max_map_size_bytes);
  if ((rc = mdb_env_set_mapsize(store->env_, options.map_size_bytes)))
    return fail(rc, "mdb_env_set_mapsize");
  // MDB_NOTLS: read transactions run on pooled worker threads, not tied to
  // one thread. Never MDB_WRITEMAP (a full disk would become SIGBUS), never
  // MDB_NOSYNC/MDB_NOMETASYNC (a commit must be durable when it returns).
  if ((rc = mdb_env_open(store->env_, dir.c_str(), MDB_NOTLS, 0600)))
    return fail(rc, "cannot open the store in " + dir);

  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(store->env_, nullptr, 0, &txn))) return fail(rc, "mdb_txn_begin");
  auto open_db = [&](const char* name, MDB_dbi* dbi) {
    return mdb_dbi_open(txn, name, MDB_CREATE, dbi);
  };
  if ((rc = open_db("meta", &store->meta_)) || (rc = open_db("cube_names", &store->cube_names_)) ||
      (rc = open_db("cubes", &store->cubes_)) || (rc = open_db("items", &store->items_)) ||
      (rc = open_db("versions", &store->versions_)) ||
      (rc = open_db("idempotency", &store->idempotency_)) ||
      (rc = open_db("expiry", &store->expiry_)) ||
      (rc = open_db("tombstones", &store->tombstones_)) ||
      (rc = open_db("snapshots", &store->snapshots_)) || (rc = open_db("blobs", &store->blobs_)) ||
      (rc = open_db("access", &store->access_)) ||
      (rc = open_db("activations", &store->activations_)) ||
      (rc = open_db("activation_prefixes", &store->activation_prefixes_)) ||
      (rc = open_db("activation_lru", &store->activation_lru_)) ||
      (rc = open_db("activation_usage", &store->activation_usage_)) ||
      (rc = open_db("tenant_salts", &store->tenant_salts_))) {
    mdb_txn_abort(txn);
    return fail(rc, "mdb_dbi_open");
  }

  MDB_val key = as_val("schema"), val;
  rc = mdb_get(txn, store->meta_, &key, &val);
  if (rc == MDB_NOTFOUND) {
    std::string v;
    put_be(v, kSchemaVersion, 4);
    MDB_val nv = as_val(v);
    rc = mdb_put(txn, store->meta_, &key, &nv, 0);
    if (rc) {
      mdb_txn_abort(txn);
      return fail(rc, "writing the schema version");
    }
  } else if (rc == 0) {
    std::uint32_t found =
        val.mv_size == 4 ? static_cast<std::uint32_t>(get_be(static_cast<char*>(val.mv_data), 4))
                         : 0;
    if (found != kSchemaVersion) {
      mdb_txn_abort(txn);
      *status = {Errc::io, "store in " + dir + " has schema version " + std::to_string(found) +
                               ", this memosd reads version " + std::to_string(kSchemaVersion)};
      return nullptr;
    }
  } else {
    mdb_txn_abort(txn);
    return fail(rc, "reading the schema version");
  }

  key = as_val("last_id");
  rc = mdb_get(txn, store->meta_, &key, &val);
  if (rc == 0 && val.mv_size == 8) store->last_id_ = get_be(static_cast<char*>(val.mv_data), 8);
  if ((rc = mdb_txn_commit(txn))) return fail(rc, "committing the store's schema");
  *status = {};
  return store;
}

Store::~Store() {
  if (env_) mdb_env_close(env_);
}

Status Store::begin_read(std::optional<ReadTxn>* out) const {
  std::shared_lock gate(resize_gate_);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) return from_mdb(rc, "mdb_txn_begin (read)");
  out->emplace(ReadTxn(this, txn));
  (*out)->gate_ = std::move(gate);
  return {};
}

std::uint64_t Store::free_bytes() const {
  const char* path = nullptr;
  struct statvfs fs {};
  if (mdb_env_get_path(env_, &path) != 0 || statvfs(path, &fs) != 0) return ~std::uint64_t{0};
  return std::uint64_t{fs.f_bavail} * fs.f_frsize;
}

std::uint64_t Store::map_size() const {
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

bool Store::grow_map(Status* status) {
  std::uint64_t current = map_size();
  if (current >= max_map_size_) return false;
  std::uint64_t next = std::min(current * 2, max_map_size_);
  std::unique_lock gate(resize_gate_);
  int rc = mdb_env_set_mapsize(env_, next);
  *status = from_mdb(rc, "growing the map");
  return rc == 0;
}

Status Store::begin_write(std::optional<WriteTxn>* out) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) return from_mdb(rc, "mdb_txn_begin (write)");
  out->emplace(WriteTxn(this, txn));
  return {};
}

// ---- ReadTxn ----------------------------------------------------------------

ReadTxn::ReadTxn(ReadTxn&& other) noexcept
    : store_(other.store_), txn_(other.txn_), owns_(other.owns_), gate_(std::move(other.gate_)) {
  other.txn_ = nullptr;
}

ReadTxn::~ReadTxn() {
  if (txn_ && owns_) mdb_txn_abort(txn_);
  txn_ = nullptr;  // before gate_ is released, so a resize never sees it open
}

Status ReadTxn::find_cube(TenantId tenant, std::string_view name, Cube* out) const {
  std::string k = cube_name_key(tenant, name);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->cube_names_, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no cube named '" + std::string(name) + "'"};
  if (rc) return from_mdb(rc, "find cube");
  if (val.mv_size != 8) return {Errc::corrupt, "cube name index entry has a bad length"};
  std::string id_key(static_cast<char*>(val.mv_data), 8);
  MDB_val ck = as_val(id_key), cv;
  rc = mdb_get(txn_, store_->cubes_, &ck, &cv);
  if (rc == MDB_NOTFOUND) return {Errc::corrupt, "cube name points to a missing cube"};
  if (rc) return from_mdb(rc, "read cube");
  return decode_cube(as_view(cv), out);
}

Status ReadTxn::list_cubes(TenantId tenant, std::vector<Cube>* out) const {
  out->clear();
  Cursor cursor(txn_, store_->cube_names_);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  std::string prefix;
  put_be(prefix, tenant, 4);
  return cursor.scan_prefix(prefix, [&](std::string_view k, std::string_view) -> Status {
    Cube cube;
    Status s = find_cube(tenant, k.substr(4), &cube);
    if (!s.ok()) return s.code == Errc::not_found ? Status{Errc::corrupt, s.message} : s;
    out->push_back(std::move(cube));
    return {};
  });
}

Status ReadTxn::list_all_cubes(std::vector<Cube>* out) const {
  out->clear();
  Cursor cursor(txn_, store_->cubes_);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view, std::string_view v) -> Status {
    Cube cube;
    Status s = decode_cube(v, &cube);
    if (s.ok()) out->push_back(std::move(cube));
    return s;
  });
}

namespace {

// Blob and access rows are two u64 counters, little-endian, then their
// CRC-32C: 20 bytes.
std::string encode_pair(std::uint64_t a, std::uint64_t b) {
  std::string out;
  for (std::uint64_t v : {a, b}) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::uint32_t crc = crc32c(out.data(), 16);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

Status decode_pair(std::string_view v, const char* what, std::uint64_t* a, std::uint64_t* b) {
  if (v.size() != 20) return {Errc::corrupt, std::string(what) + " row has a bad length"};
  auto le = [&](std::size_t at, int bytes) {
    std::uint64_t x = 0;
    for (int i = bytes - 1; i >= 0; --i) {
      x = (x << 8) | static_cast<unsigned char>(v[at + static_cast<std::size_t>(i)]);
    }
    return x;
  };
  if (crc32c(v.data(), 16) != le(16, 4)) {
    return {Errc::corrupt, std::string(what) + " row fails its checksum"};
  }
  *a = le(0, 8);
  *b = le(8, 8);
  return {};
}

std::string encode_blob_row(std::uint64_t size, std::uint64_t refs) {
  return encode_pair(size, refs);
}

Status decode_blob_row(std::string_view v, std::uint64_t* size, std::uint64_t* refs) {
  return decode_pair(v, "blob", size, refs);
}

std::string encode_access(const AccessStats& a) {
  return encode_pair(a.hits, static_cast<std::uint64_t>(a.last_access_ms));
}

Status decode_access(std::string_view v, AccessStats* out) {
  std::uint64_t last = 0;
  Status s = decode_pair(v, "access", &out->hits, &last);
  out->last_access_ms = static_cast<std::int64_t>(last);
  return s;
}

}  // namespace

Status ReadTxn::scan_versions(CubeId cube, std::string_view after, std::uint64_t until,
                              const std::function<bool(const Item&)>& fn, std::string* position,
                              bool* done) const {
  *done = false;
  std::string prefix = u64_key(cube);
  if (!after.empty() && after.size() != 12) return {Errc::corrupt, "bad export position"};
  std::string start = prefix + std::string(after);
  Cursor cursor(txn_, store_->versions_);
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

Status ReadTxn::access_stats(CubeId cube, ItemId item, AccessStats* out) const {
  *out = {};
  std::string k = item_key(cube, item);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->access_, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read access statistics");
  return decode_access(as_view(val), out);
}

Status ReadTxn::blob_refs(const std::array<std::uint8_t, 32>& blob, std::uint64_t* refs) const {
  MDB_val key{blob.size(), const_cast<std::uint8_t*>(blob.data())}, val;
  int rc = mdb_get(txn_, store_->blobs_, &key, &val);
  *refs = 0;
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read blob row");
  std::uint64_t size;
  return decode_blob_row(as_view(val), &size, refs);
}

Status ReadTxn::list_snapshots(CubeId cube, std::vector<Snapshot>* out) const {
  out->clear();
  Cursor cursor(txn_, store_->snapshots_);
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
  std::string k = u64_key(cube);
  k.append(tag);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->snapshots_, &key, &val);
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
  Cursor cursor(txn_, store_->versions_);
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

Status ReadTxn::find_idempotency(TenantId tenant, std::string_view key,
                                 IdempotencyRecord* out) const {
  std::string k = cube_name_key(tenant, key);
  MDB_val mk = as_val(k), val;
  int rc = mdb_get(txn_, store_->idempotency_, &mk, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no write with that idempotency key"};
  if (rc) return from_mdb(rc, "read idempotency key");
  return decode_idempotency(as_view(val), out);
}

Status ReadTxn::get_item(CubeId cube, ItemId id, std::uint32_t version, Item* out) const {
  MDB_val val;
  int rc;
  if (version == 0) {
    std::string k = item_key(cube, id);
    MDB_val key = as_val(k);
    rc = mdb_get(txn_, store_->items_, &key, &val);
  } else {
    std::string k = version_key(cube, id, version);
    MDB_val key = as_val(k);
    rc = mdb_get(txn_, store_->versions_, &key, &val);
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
  Cursor cursor(txn_, store_->versions_);
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

Status ReadTxn::for_each_live_item(CubeId cube, const std::function<void(const Item&)>& fn) const {
  Cursor cursor(txn_, store_->items_);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix(u64_key(cube), [&](std::string_view, std::string_view v) {
    Item item;
    Status d = decode_item(v, &item);
    if (d.ok() && !item.deleted()) fn(item);
    return d;
  });
}

// ---- WriteTxn ---------------------------------------------------------------

WriteTxn::WriteTxn(Store* store, MDB_txn* txn) : store_(store), txn_(txn), view_(store, txn) {
  view_.owns_ = false;
}

WriteTxn::WriteTxn(WriteTxn&& other) noexcept
    : store_(other.store_), txn_(other.txn_), view_(other.store_, other.txn_) {
  view_.owns_ = false;
  other.txn_ = nullptr;
}

WriteTxn::~WriteTxn() {
  abort();
}

void WriteTxn::abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Status WriteTxn::commit() {
  std::string v;
  put_be(v, store_->last_id_, 8);
  MDB_val key = as_val("last_id"), val = as_val(v);
  int rc = mdb_put(txn_, store_->meta_, &key, &val, 0);
  if (rc) {
    abort();
    return from_mdb(rc, "persist last id");
  }
  rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  // LMDB turns a short write into EIO, and a filling disk gives short
  // writes: with the disk (nearly) full, that EIO means "no space", which
  // is retryable; the failed commit wrote no meta page, so the store is
  // intact. With space to spare it is a real I/O error.
  if (rc == EIO && store_->free_bytes() < Store::kLowSpaceBytes) {
    return {Errc::storage_full, "commit: the disk is full"};
  }
  return from_mdb(rc, "commit");
}

Status WriteTxn::blob_ref(const std::array<std::uint8_t, 32>& blob, std::uint64_t size) {
  MDB_val key{blob.size(), const_cast<std::uint8_t*>(blob.data())}, val;
  std::uint64_t known_size = size, refs = 0;
  int rc = mdb_get(txn_, store_->blobs_, &key, &val);
  if (rc == 0) {
    if (Status s = decode_blob_row(as_view(val), &known_size, &refs); !s.ok()) return s;
    if (known_size != size) return {Errc::corrupt, "blob size differs from its earlier references"};
  } else if (rc != MDB_NOTFOUND) {
    return from_mdb(rc, "read blob row");
  }
  std::string row = encode_blob_row(size, refs + 1);
  MDB_val nv = as_val(row);
  return from_mdb(mdb_put(txn_, store_->blobs_, &key, &nv, 0), "write blob row");
}

Status WriteTxn::blob_unref(const std::array<std::uint8_t, 32>& blob) {
  MDB_val key{blob.size(), const_cast<std::uint8_t*>(blob.data())}, val;
  int rc = mdb_get(txn_, store_->blobs_, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "blob has no reference"};
  if (rc) return from_mdb(rc, "read blob row");
  std::uint64_t size, refs;
  if (Status s = decode_blob_row(as_view(val), &size, &refs); !s.ok()) return s;
  if (refs <= 1) return from_mdb(mdb_del(txn_, store_->blobs_, &key, nullptr), "drop blob row");
  std::string row = encode_blob_row(size, refs - 1);
  MDB_val nv = as_val(row);
  return from_mdb(mdb_put(txn_, store_->blobs_, &key, &nv, 0), "write blob row");
}

Status WriteTxn::record_access(const std::vector<AccessUpdate>& batch) {
  for (const AccessUpdate& u : batch) {
    Item head;
    Status s = read_head(u.cube, u.item, &head);
    if (s.code == Errc::not_found) continue;  // purged, or its cube removed
    if (!s.ok()) return s;
    AccessStats stats;
    if ((s = view_.access_stats(u.cube, u.item, &stats)); !s.ok()) return s;
    stats.hits += u.hits;
    stats.last_access_ms = std::max(stats.last_access_ms, u.last_access_ms);
    std::string k = item_key(u.cube, u.item), v = encode_access(stats);
    MDB_val key = as_val(k), val = as_val(v);
    if (int rc = mdb_put(txn_, store_->access_, &key, &val, 0)) return from_mdb(rc, "write access");
  }
  return {};
}

Status WriteTxn::import_item(CubeId cube, const std::vector<Item>& versions) {
  if (versions.empty()) return {};
  const Item& head = versions.back();
  Item existing;
  if (Status s = read_head(cube, head.id, &existing); s.ok()) {
    return {Errc::already_exists, "item already exists"};
  } else if (s.code != Errc::not_found) {
    return s;
  }
  for (const Item& v : versions) {
    std::string rec = encode_item(v), vk = version_key(cube, v.id, v.version);
    MDB_val k = as_val(vk), val = as_val(rec);
    int rc = mdb_put(txn_, store_->versions_, &k, &val, MDB_NOOVERWRITE);
    if (rc) return from_mdb(rc, "import version");
  }
  std::string rec = encode_item(head), hk = item_key(cube, head.id);
  MDB_val k = as_val(hk), val = as_val(rec);
  int rc = mdb_put(txn_, store_->items_, &k, &val, 0);
  if (rc) return from_mdb(rc, "import item");
  if (auto entry = queue_entry(cube, head)) {
    MDB_val qk = as_val(entry->second), empty{0, nullptr};
    rc = mdb_put(txn_, entry->first ? store_->expiry_ : store_->tombstones_, &qk, &empty, 0);
    if (rc) return from_mdb(rc, "import retention entry");
  }
  // Imported ids must stay unique against ids issued later.
  store_->last_id_ = std::max(store_->last_id_, head.id);
  return update_cube(cube, [&](Cube& c) {
    if (!head.deleted()) c.live_items += 1;
  });
}

Status WriteTxn::finish_import(CubeId cube, std::uint64_t head_version,
                               const std::vector<Snapshot>& snapshots) {
  for (const Snapshot& snap : snapshots) {
    std::string k = u64_key(cube) + snap.tag, v = encode_snapshot(snap);
    MDB_val key = as_val(k), val = as_val(v);
    int rc = mdb_put(txn_, store_->snapshots_, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return {Errc::already_exists, "snapshot '" + snap.tag + "' twice"};
    if (rc) return from_mdb(rc, "import snapshot");
  }
  return update_cube(cube,
                     [&](Cube& c) { c.head_version = std::max(c.head_version, head_version); });
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
  int rc = mdb_del(txn_, store_->cube_names_, &ok, nullptr);
  if (rc == 0) rc = mdb_put(txn_, store_->cube_names_, &nk, &iv, MDB_NOOVERWRITE);
  if (rc) return from_mdb(rc, "rename cube");
  s = update_cube(out->id, [&](Cube& c) { c.name = to; });
  if (s.ok()) out->name = to;
  return s;
}

Status WriteTxn::update_cube(CubeId cube, const std::function<void(Cube&)>& change) {
  std::string k = u64_key(cube);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->cubes_, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no such cube"};
  if (rc) return from_mdb(rc, "read cube");
  Cube c;
  if (Status s = decode_cube(as_view(val), &c); !s.ok()) return s;
  change(c);
  std::string rec = encode_cube(c);
  MDB_val nv = as_val(rec);
  return from_mdb(mdb_put(txn_, store_->cubes_, &key, &nv, 0), "update cube");
}

Status WriteTxn::create_snapshot(CubeId cube, std::string_view tag, TenantId by,
                                 std::int64_t now_ms, Snapshot* out) {
  Snapshot existing;
  Status s = view_.find_snapshot(cube, tag, &existing);
  if (s.ok()) return {Errc::already_exists, "snapshot '" + std::string(tag) + "' already exists"};
  if (s.code != Errc::not_found) return s;
  std::string ck = u64_key(cube);
  MDB_val cube_key = as_val(ck), cube_val;
  int rc = mdb_get(txn_, store_->cubes_, &cube_key, &cube_val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no such cube"};
  if (rc) return from_mdb(rc, "read cube");
  Cube c;
  if ((s = decode_cube(as_view(cube_val), &c)); !s.ok()) return s;
  Snapshot snap{std::string(tag), c.head_version, now_ms, c.live_items, by};
  std::string k = ck + std::string(tag), v = encode_snapshot(snap);
  MDB_val key = as_val(k), val = as_val(v);
  if ((rc = mdb_put(txn_, store_->snapshots_, &key, &val, MDB_NOOVERWRITE))) {
    return from_mdb(rc, "write snapshot");
  }
  *out = std::move(snap);
  return {};
}

Status WriteTxn::put_idempotency(TenantId tenant, std::string_view key,
                                 const IdempotencyRecord& record) {
  std::string k = cube_name_key(tenant, key), v = encode_idempotency(record);
  MDB_val mk = as_val(k), mv = as_val(v);
  return from_mdb(mdb_put(txn_, store_->idempotency_, &mk, &mv, 0), "write idempotency key");
}

Status WriteTxn::nested(const std::function<Status(WriteTxn&)>& op) {
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(store_->env_, txn_, 0, &child);
  if (rc) return from_mdb(rc, "nested transaction");
  WriteTxn inner(store_, child);
  Status s = op(inner);
  if (!s.ok()) {
    inner.abort();
    return s;
  }
  rc = mdb_txn_commit(child);
  inner.txn_ = nullptr;
  return from_mdb(rc, "nested commit");
}

std::uint64_t WriteTxn::next_id(std::int64_t now_ms) {
  std::uint64_t candidate = static_cast<std::uint64_t>(now_ms < 0 ? 0 : now_ms) << 16;
  store_->last_id_ = candidate > store_->last_id_ ? candidate : store_->last_id_ + 1;
  return store_->last_id_;
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
  int rc = mdb_put(txn_, store_->cube_names_, &k1, &v1, MDB_NOOVERWRITE);
  if (rc) return from_mdb(rc, "create cube");
  rc = mdb_put(txn_, store_->cubes_, &k2, &v2, 0);
  if (rc) return from_mdb(rc, "create cube");
  *out = std::move(cube);
  return {};
}

Status WriteTxn::remove_cube(TenantId tenant, std::string_view name, bool force, Cube* removed) {
  Status s = view_.find_cube(tenant, name, removed);
  if (!s.ok()) return s;
  if (removed->live_items > 0 && !force) {
    return {Errc::conflict, "cube '" + std::string(name) + "' holds " +
                                std::to_string(removed->live_items) +
                                " live items (use force to remove it anyway)"};
  }
  std::vector<ItemId> activations;
  s = view_.list_activations(removed->id,
                             [&](const Activation& a) { activations.push_back(a.id); });
  if (!s.ok()) return s;
  for (ItemId id : activations) {
    if (s = remove_activation(removed->id, id); !s.ok()) return s;
  }
  std::string prefix = u64_key(removed->id);
  for (MDB_dbi dbi : {store_->items_, store_->versions_, store_->snapshots_, store_->access_}) {
    Cursor cursor(txn_, dbi);
    if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
    for (;;) {
      MDB_val key = as_val(prefix), val;
      int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
      if (rc == MDB_NOTFOUND) break;
      if (rc) return from_mdb(rc, "remove cube items");
      if (as_view(key).substr(0, prefix.size()) != prefix) break;
      rc = mdb_cursor_del(cursor.get(), 0);
      if (rc) return from_mdb(rc, "remove cube items");
    }
  }
  std::string nk = cube_name_key(tenant, name);
  MDB_val k1 = as_val(nk), k2 = as_val(prefix);
  int rc = mdb_del(txn_, store_->cube_names_, &k1, nullptr);
  if (rc) return from_mdb(rc, "remove cube name");
  rc = mdb_del(txn_, store_->cubes_, &k2, nullptr);
  return from_mdb(rc, "remove cube");
}

Status WriteTxn::read_head(CubeId cube, ItemId id, Item* out) const {
  std::string k = item_key(cube, id);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, store_->items_, &key, &val);
  if (rc) return from_mdb(rc, "read item head");
  return decode_item(as_view(val), out);
}

Status WriteTxn::put_item(CubeId cube, Item& item, std::int64_t live_delta) {
  // Every version advances the cube's head version (what snapshots name)
  // and may change its count of live items.
  std::string ck = u64_key(cube);
  MDB_val cube_key = as_val(ck), cube_val;
  int crc = mdb_get(txn_, store_->cubes_, &cube_key, &cube_val);
  if (crc == MDB_NOTFOUND) return {Errc::not_found, "no such cube"};
  if (crc) return from_mdb(crc, "read cube");
  Cube c;
  if (Status d = decode_cube(as_view(cube_val), &c); !d.ok()) return d;
  c.head_version += 1;
  c.live_items = static_cast<std::uint64_t>(static_cast<std::int64_t>(c.live_items) + live_delta);
  item.cube_version = c.head_version;
  std::string cube_rec = encode_cube(c);
  MDB_val cube_new = as_val(cube_rec);
  if ((crc = mdb_put(txn_, store_->cubes_, &cube_key, &cube_new, 0))) {
    return from_mdb(crc, "update cube");
  }

  // Keep the retention queues in step with the head.
  Item previous;
  Status s = read_head(cube, item.id, &previous);
  if (s.ok()) {
    if (auto entry = queue_entry(cube, previous)) {
      MDB_val k = as_val(entry->second);
      int rc = mdb_del(txn_, entry->first ? store_->expiry_ : store_->tombstones_, &k, nullptr);
      if (rc && rc != MDB_NOTFOUND) return from_mdb(rc, "update retention queue");
    }
  } else if (s.code != Errc::not_found) {
    return s;
  }
  if (auto entry = queue_entry(cube, item)) {
    MDB_val k = as_val(entry->second), empty{0, nullptr};
    int rc = mdb_put(txn_, entry->first ? store_->expiry_ : store_->tombstones_, &k, &empty, 0);
    if (rc) return from_mdb(rc, "update retention queue");
  }
  std::string rec = encode_item(item);
  std::string hk = item_key(cube, item.id), vk = version_key(cube, item.id, item.version);
  MDB_val k1 = as_val(hk), v1 = as_val(rec), k2 = as_val(vk), v2 = as_val(rec);
  int rc = mdb_put(txn_, store_->versions_, &k2, &v2, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return {Errc::corrupt, "version already exists"};
  if (rc) return from_mdb(rc, "write version");
  rc = mdb_put(txn_, store_->items_, &k1, &v1, 0);
  return from_mdb(rc, "write item");
}

Status WriteTxn::run_retention(std::int64_t now_ms, std::int64_t tombstone_retention_ms,
                               std::size_t max_items, RetentionResult* out) {
  // Collect due entries first: the loops below change the queues they read.
  struct Due {
    std::string key;
    CubeId cube;
    ItemId item;
  };
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
      found->push_back({std::string(k), get_be(k.data() + 8, 8), get_be(k.data() + 16, 8)});
    }
    return rc == 0 || rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "scan retention queue");
  };
  // An entry whose item went with its cube is simply dropped.
  auto drop = [&](MDB_dbi dbi, const std::string& key) {
    MDB_val k = as_val(key);
    int rc = mdb_del(txn_, dbi, &k, nullptr);
    return rc == 0 || rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "drop retention entry");
  };

  std::vector<Due> expired, purgeable;
  Status s = due(store_->expiry_, now_ms, &expired);
  if (!s.ok()) return s;
  for (const auto& e : expired) {
    Item tombstone;
    // Written by the daemon, not a tenant: the session says so.
    s = remove_item(e.cube, e.item, 0, now_ms, &tombstone, "retention");
    if (s.code == Errc::not_found) s = drop(store_->expiry_, e.key);
    if (!s.ok()) return s;
    if (tombstone.id != 0) out->expired.emplace_back(e.cube, e.item);
  }
  s = due(store_->tombstones_, now_ms - tombstone_retention_ms, &purgeable);
  if (!s.ok()) return s;
  for (const auto& e : purgeable) {
    // Every version, then the head, then the queue entry.
    std::string prefix = item_key(e.cube, e.item);
    Cursor cursor(txn_, store_->versions_);
    for (;;) {
      MDB_val key = as_val(prefix), val;
      int rc = mdb_cursor_get(cursor.get(), &key, &val, MDB_SET_RANGE);
      if (rc == MDB_NOTFOUND || (rc == 0 && as_view(key).substr(0, prefix.size()) != prefix)) break;
      if (rc == 0) rc = mdb_cursor_del(cursor.get(), 0);
      if (rc) return from_mdb(rc, "purge versions");
    }
    MDB_val hk = as_val(prefix);
    int rc = mdb_del(txn_, store_->access_, &hk, nullptr);
    if (rc && rc != MDB_NOTFOUND) return from_mdb(rc, "purge access statistics");
    rc = mdb_del(txn_, store_->items_, &hk, nullptr);
    if (rc && rc != MDB_NOTFOUND) return from_mdb(rc, "purge item");
    if ((s = drop(store_->tombstones_, e.key)); !s.ok()) return s;
    if (rc == 0) ++out->purged;
  }
  return {};
}

Status WriteTxn::head_for_change(CubeId cube, ItemId id, Item* out) {
  Status s = view_.get_item(cube, id, 0, out);
  if (!s.ok()) return s;
  if (out->state == State::frozen) {
    return {Errc::conflict, "item is frozen; make it active before changing it"};
  }
  return {};
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
                           Item* out) {
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
  item.provenance.session.clear();
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

}  // namespace memos::store
