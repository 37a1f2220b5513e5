// The environment, its transactions and the id counter (store.h); table
// `meta`. Each table group has its own file (see store.h's layout).
#include "memcube/store.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "memcube/lmdb_util.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

// 2: records carry a checksum header and the full item model.
// 3: the exact-text index (`text_hashes`), built from the heads when a
//    version 2 store is opened.
// 4: what each tenant holds (`tenant_usage`), built from the cubes and heads
//    when a version 2 or 3 store is opened.
// 5: cubes shared with other tenants (`cube_shares`, `shared_cubes`),
//    created empty. A memosd reading version 4 would not see the grants.
// 6: parametric items (`param_names`, ItemRecord.param, a fourth count in
//    `tenant_usage`), created empty. A memosd reading version 5 would not
//    know the adapters' blob references.
// Tables an older memosd may ignore without harm are created empty at any
// version, without a new one (a downgrade stays possible): `router_usage`
// (it would only stop counting the router's spending).
// The current version is Store::kSchemaVersion (store.h).
constexpr std::uint32_t kOldestUpgradableSchema = 2;

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

// What meta says of the shards a store was made for (Store::open and
// Store::shards_made_for read it alike): its "shards" row (`*row`, 0 when
// absent) and, when there is none, whether shard 0's last_id exists
// (`*issued`: ids issued before the store had shards, so one shard for
// good). Errors: corrupt (a damaged row), io.
static Status read_made_for(MDB_txn* txn, MDB_dbi meta, const std::string& dir, std::uint64_t* row,
                            bool* issued) {
  *row = 0;
  *issued = false;
  MDB_val key = as_val("shards"), val;
  int rc = mdb_get(txn, meta, &key, &val);
  if (rc == 0) {
    *row = val.mv_size == 4 ? get_be(static_cast<char*>(val.mv_data), 4) : 0;
    if (*row == 0 || *row > Store::kMaxShards) {
      *row = 0;
      return {Errc::corrupt, "store in " + dir + ": its meta row 'shards' is damaged"};
    }
    return {};
  }
  if (rc != MDB_NOTFOUND) return {Errc::io, from_mdb(rc, "reading the store's shards").message};
  const std::string last_name = Store::last_id_key(0);  // as_val() points into it
  MDB_val last_key = as_val(last_name), last;
  rc = mdb_get(txn, meta, &last_key, &last);
  if (rc != 0 && rc != MDB_NOTFOUND) return {Errc::io, from_mdb(rc, "reading last_id").message};
  *issued = rc == 0;
  return {};
}

// ---- Store ------------------------------------------------------------------

Store::Store() : tables_(std::make_unique<Tables>()) {}

Status Store::shards_made_for(const std::string& dir, std::uint32_t* shards) {
  *shards = 0;
  if (::access((dir + "/data.mdb").c_str(), F_OK) != 0) return {};
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc) return from_mdb(rc, "mdb_env_create");
  // Read-only and without the lock file: the caller holds the data folder,
  // so no other process writes it, and this environment closes before the
  // store opens.
  struct Closer {
    MDB_env* env;
    ~Closer() { mdb_env_close(env); }
  } closer{env};
  if ((rc = mdb_env_set_maxdbs(env, 32))) return from_mdb(rc, "mdb_env_set_maxdbs");
  if ((rc = mdb_env_open(env, dir.c_str(), MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600))) {
    Status s = from_mdb(rc, "reading the store in " + dir);
    if (s.code == Errc::not_found) s.code = Errc::io;
    return s;
  }
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn))) return from_mdb(rc, "mdb_txn_begin");
  MDB_dbi meta;
  rc = mdb_dbi_open(txn, table_name(TableId::meta), 0, &meta);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return {};
  }
  if (rc) {
    mdb_txn_abort(txn);
    return from_mdb(rc, "mdb_dbi_open");
  }
  std::uint64_t row = 0;
  bool issued = false;
  const Status read = read_made_for(txn, meta, dir, &row, &issued);
  mdb_txn_abort(txn);
  if (read.ok()) *shards = row != 0 ? static_cast<std::uint32_t>(row) : issued ? 1 : 0;
  return read;
}

std::unique_ptr<Store> Store::open(const std::string& dir, const StoreOptions& options,
                                   Status* status) {
  if (options.shards == 0 || options.shards > kMaxShards) {
    *status = {Errc::io, "a store is opened for 1 to " + std::to_string(kMaxShards) +
                             " shards, not " + std::to_string(options.shards)};
    return nullptr;
  }
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
  if ((rc = store->tables_->open(txn))) {
    mdb_txn_abort(txn);
    return fail(rc, "mdb_dbi_open");
  }
  const MDB_dbi meta = store->tables_->meta;

  MDB_val key = as_val("schema"), val;
  rc = mdb_get(txn, meta, &key, &val);
  auto write_schema = [&] {
    std::string v;
    put_be(v, kSchemaVersion, 4);
    MDB_val nv = as_val(v);
    return mdb_put(txn, meta, &key, &nv, 0);
  };
  if (rc == MDB_NOTFOUND) {
    if ((rc = write_schema())) {
      mdb_txn_abort(txn);
      return fail(rc, "writing the schema version");
    }
  } else if (rc == 0) {
    std::uint32_t found =
        val.mv_size == 4 ? static_cast<std::uint32_t>(get_be(static_cast<char*>(val.mv_data), 4))
                         : 0;
    if (found >= kOldestUpgradableSchema && found < kSchemaVersion) {
      // Upgraded in this transaction: the tables and the version are
      // committed together, or neither is.
      Status built = found < 3 ? Store::build_text_index(txn, *store->tables_) : Status{};
      if (built.ok() && found < 4) built = Store::build_tenant_usage(txn, *store->tables_);
      if (!built.ok()) {
        mdb_txn_abort(txn);
        *status = {built.code, "upgrading the store in " + dir + ": " + built.message};
        return nullptr;
      }
      if ((rc = write_schema())) {
        mdb_txn_abort(txn);
        return fail(rc, "writing the schema version");
      }
    } else if (found != kSchemaVersion) {
      mdb_txn_abort(txn);
      *status = {Errc::io, "store in " + dir + " has schema version " + std::to_string(found) +
                               ", this memosd reads version " + std::to_string(kSchemaVersion)};
      return nullptr;
    }
  } else {
    mdb_txn_abort(txn);
    return fail(rc, "reading the schema version");
  }

  // The shards the store was made for: a tenant's rows belong to its
  // shard_of(), so the count never changes under a store. A store with no
  // row has one shard; it takes several only while it holds no id.
  {
    std::uint64_t row = 0;
    bool issued = false;
    if (Status read = read_made_for(txn, meta, dir, &row, &issued); !read.ok()) {
      mdb_txn_abort(txn);
      *status = read;
      return nullptr;
    }
    std::uint64_t kept = row != 0 ? row : 1;
    if (row == 0 && !issued && options.shards != 1) {
      key = as_val("shards");
      std::string v;
      put_be(v, options.shards, 4);
      MDB_val nv = as_val(v);
      if ((rc = mdb_put(txn, meta, &key, &nv, 0))) {
        mdb_txn_abort(txn);
        return fail(rc, "writing the store's shards");
      }
      kept = options.shards;
    }
    if (kept != options.shards) {
      mdb_txn_abort(txn);
      *status = {Errc::io,
                 "the store in " + dir + " was made for " + std::to_string(kept) + " shard(s)" +
                     (issued ? " (it holds ids issued before it had shards)" : "") +
                     " and is opened for " + std::to_string(options.shards) +
                     ": a tenant's rows belong to one shard of that count (cluster.shards "
                     "is fixed when a cluster is made; a node joins with an empty store)"};
      return nullptr;
    }
  }
  // A shard with no row of its own yet starts from shard 0's: every id this
  // store issued before it had shards came from there, and a residue says
  // nothing of an id issued then.
  store->last_ids_.assign(options.shards, 0);
  for (std::uint32_t shard = 0; shard < options.shards; ++shard) {
    const std::string name = last_id_key(shard);
    key = as_val(name);
    rc = mdb_get(txn, meta, &key, &val);
    if (rc == 0 && val.mv_size == 8) {
      store->last_ids_[shard] = get_be(static_cast<char*>(val.mv_data), 8);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return fail(rc, "reading " + name);
    } else {
      store->last_ids_[shard] = store->last_ids_[0];
    }
  }
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

Status Store::copy_to(const std::string& dir) const {
  // Held like a read transaction's: mdb_env_set_mapsize must not run while
  // the copy's transaction is open.
  std::shared_lock gate(resize_gate_);
  return from_mdb(mdb_env_copy2(env_, dir.c_str(), MDB_CP_COMPACT), "copying the store to " + dir);
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
  // Only the writer may resize: it alone knows no write transaction is open.
  MEMOS_ASSERT_ON_THREAD(writer_);
  std::uint64_t current = map_size();
  if (current >= max_map_size_) return false;
  std::uint64_t next = std::min(current * 2, max_map_size_);
  std::unique_lock gate(resize_gate_);
  int rc = mdb_env_set_mapsize(env_, next);
  *status = from_mdb(rc, "growing the map");
  return rc == 0;
}

bool Store::grow_map_into_reserve(Status* status) {
  MEMOS_ASSERT_ON_THREAD(writer_);
  const std::uint64_t reserve = std::max<std::uint64_t>(1u << 20, max_map_size_ / 1024);
  std::uint64_t current = map_size();
  if (current >= max_map_size_ + reserve) return false;
  std::unique_lock gate(resize_gate_);
  int rc = mdb_env_set_mapsize(env_, max_map_size_ + reserve);
  *status = from_mdb(rc, "growing the map into its reserve");
  return rc == 0;
}

Status Store::begin_write(std::optional<WriteTxn>* out, std::uint32_t shard) {
  // A second writer thread would wait on LMDB's writer lock while the first
  // holds it, and last_ids_ is not shared safely between threads.
  MEMOS_ASSERT_ON_THREAD(writer_);
  if (shard >= shards()) {
    return {Errc::conflict, "a write for shard " + std::to_string(shard) + " in a store of " +
                                std::to_string(shards()) + " shard(s)"};
  }
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) return from_mdb(rc, "mdb_txn_begin (write)");
  out->emplace(WriteTxn(this, txn, shard));
  return {};
}

Status WriteTxn::writes_for_cube(CubeId cube, bool* yes) const {
  *yes = shard_ == 0;
  if (store_->shards() == 1) return {};
  Cube found;
  Status s = view_.read_cube(cube, &found);
  if (s.code == Errc::not_found) return {};
  if (!s.ok()) return s;
  *yes = writes_for(found.owner);
  return {};
}

std::string Store::last_id_key(std::uint32_t shard) {
  return shard == 0 ? "last_id" : "last_id/" + std::to_string(shard);
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

const Store::Tables& ReadTxn::tables() const {
  return *store_->tables_;
}

// ---- WriteTxn ---------------------------------------------------------------

WriteTxn::WriteTxn(Store* store, MDB_txn* txn, std::uint32_t shard)
    : store_(store), txn_(txn), view_(store, txn), shard_(shard) {
  view_.owns_ = false;
}

WriteTxn::WriteTxn(WriteTxn&& other) noexcept
    : store_(other.store_),
      txn_(other.txn_),
      view_(other.store_, other.txn_),
      changes_(other.changes_),
      sealed_(other.sealed_),
      shard_(other.shard_) {
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

Status WriteTxn::seal() {
  MEMOS_ASSERT_ON_THREAD(store_->writer_);  // reads last_ids_
  std::string v;
  put_be(v, store_->last_ids_[shard_], 8);
  const std::string name = Store::last_id_key(shard_);
  MDB_val key = as_val(name), val = as_val(v);
  if (int rc = put_raw(tables().meta, &key, &val, 0)) return from_mdb(rc, "persist last id");
  sealed_ = true;
  return {};
}

Status WriteTxn::commit() {
  if (!sealed_) {
    if (Status s = seal(); !s.ok()) {
      abort();
      return s;
    }
  }
  int rc = mdb_txn_commit(txn_);
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

Status WriteTxn::nested(const std::function<Status(WriteTxn&)>& op) {
  return nested_for_shard(shard_, changes_, op);
}

Status WriteTxn::nested_for_shard(std::uint32_t shard, ChangeSet* changes,
                                  const std::function<Status(WriteTxn&)>& op) {
  if (shard >= store_->shards()) {
    return {Errc::conflict, "a write for shard " + std::to_string(shard) + " in a store of " +
                                std::to_string(store_->shards()) + " shard(s)"};
  }
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(store_->env_, txn_, 0, &child);
  if (rc) return from_mdb(rc, "nested transaction");
  WriteTxn inner(store_, child, shard);
  inner.changes_ = changes;
  const std::size_t recorded = changes ? changes->size() : 0;
  Status s = op(inner);
  if (s.ok()) {
    rc = mdb_txn_commit(child);
    inner.txn_ = nullptr;
    s = from_mdb(rc, "nested commit");
  } else {
    inner.abort();
  }
  // What LMDB dropped, the record drops too.
  if (!s.ok() && changes) changes->truncate(recorded);
  return s;
}

std::uint64_t WriteTxn::next_id(std::int64_t now_ms) {
  MEMOS_ASSERT_ON_THREAD(store_->writer_);  // last_ids_ belongs to the writer
  const std::uint64_t shards = store_->shards();
  // The least number at or above `v` in this shard's residue class.
  auto at_or_above = [&](std::uint64_t v) { return v + (shard_ + shards - v % shards) % shards; };
  std::uint64_t& last = store_->last_ids_[shard_];
  const std::uint64_t now = at_or_above(static_cast<std::uint64_t>(now_ms < 0 ? 0 : now_ms) << 16);
  const std::uint64_t after = at_or_above(last + 1);
  last = now > after ? now : after;
  return last;
}

}  // namespace memos::store
