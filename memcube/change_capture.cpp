// WriteTxn's row writers, which record what they write (change_set.h), and
// the application of recorded changes to another store: the two ends of
// replication (docs/scale-out.md).
#include <lmdb.h>

#include <algorithm>
#include <string>

#include "memcube/change_set.h"
#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

Status corrupt_change(const std::string& why) {
  return {Errc::corrupt, "replicated change " + why};
}

}  // namespace

int WriteTxn::put_raw(unsigned dbi, MDB_val* key, MDB_val* value, unsigned flags) {
  // Copied before mdb_put: with MDB_NOOVERWRITE a refusal points `value` at
  // the row already there, and nothing is recorded then anyway.
  const std::string_view k = as_view(*key), v = as_view(*value);
  int rc = mdb_put(txn_, dbi, key, value, flags);
  if (rc == 0 && changes_) changes_->put(tables().id_of_dbi[dbi], k, v);
  return rc;
}

int WriteTxn::del_raw(unsigned dbi, MDB_val* key, MDB_val* value) {
  int rc = mdb_del(txn_, dbi, key, value);
  if (rc == 0 && changes_) changes_->erase(tables().id_of_dbi[dbi], as_view(*key));
  return rc;
}

Status WriteTxn::put_row(unsigned dbi, std::string_view key, std::string_view value,
                         std::string_view what) {
  MDB_val k = as_val(key), v = as_val(value);
  return from_mdb(put_raw(dbi, &k, &v, 0), what);
}

Status WriteTxn::del_row(unsigned dbi, std::string_view key, std::string_view what) {
  MDB_val k = as_val(key);
  int rc = del_raw(dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, what);
}

Status WriteTxn::delete_prefix(unsigned dbi, std::string_view prefix, std::string_view what) {
  // One change for the whole range: the follower deletes the same range of
  // its own copy, which holds the same rows.
  Status s = store::delete_prefix(txn_, dbi, prefix, what);
  if (s.ok() && changes_) changes_->erase_prefix(tables().id_of_dbi[dbi], prefix);
  return s;
}

namespace {

// meta: "log/" + shard (u32 BE) -> sequence (u64 BE) + the record's digest
// (32 bytes; absent in rows written before records were chained).
// "logp/" + shard -> the digest that record follows (32 bytes; absent when
// not known, or written before memosd kept it). A row of its own, so that a
// memosd from before it, taking a newer node's store snapshot, reads the
// position as it always did.
std::string log_position_key(std::uint32_t shard, const char* prefix = "log/") {
  std::string k = prefix;
  put_be(k, shard, 4);
  return k;
}

std::string log_previous_key(std::uint32_t shard) {
  return log_position_key(shard, "logp/");
}

}  // namespace

Status ReadTxn::log_position(std::uint32_t shard, LogPosition* out) const {
  const std::string k = log_position_key(shard);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().meta, &key, &val);
  *out = LogPosition{};
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read the log position");
  if (val.mv_size != 8 && val.mv_size != 8 + 32) {
    return {Errc::corrupt, "the log position row has a bad length"};
  }
  const char* bytes = static_cast<const char*>(val.mv_data);
  out->sequence = get_be(bytes, 8);
  out->digest.assign(bytes + 8, val.mv_size - 8);
  const std::string p = log_previous_key(shard);
  key = as_val(p);
  rc = mdb_get(txn_, tables().meta, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read the log position");
  if (val.mv_size != 32) return {Errc::corrupt, "the log position's previous row has a bad length"};
  out->previous.assign(static_cast<const char*>(val.mv_data), 32);
  return {};
}

Status WriteTxn::set_log_position(std::uint32_t shard, const LogPosition& position) {
  if (position.digest.size() != 32) {
    return {Errc::conflict, "a log position's digest is 32 bytes"};
  }
  if (!position.previous.empty() && position.previous.size() != 32) {
    return {Errc::conflict, "a log position's previous digest is 32 bytes or none"};
  }
  std::string v;
  put_be(v, position.sequence, 8);
  v += position.digest;
  // Straight to LMDB: each store keeps its own position; it is not a change.
  if (Status s =
          store::put_row(txn_, tables().meta, log_position_key(shard), v, "write the log position");
      !s.ok())
    return s;
  const std::string p = log_previous_key(shard);
  return position.previous.empty()
             ? store::del_row(txn_, tables().meta, p, "write the log position")
             : store::put_row(txn_, tables().meta, p, position.previous, "write the log position");
}

Status WriteTxn::apply_changes(const ChangeSet& changes) {
  MEMOS_ASSERT_ON_THREAD(store_->writer_);  // may advance last_ids_
  for (const Change& c : changes.changes()) {
    const auto n = static_cast<std::uint8_t>(c.table);
    if (n == 0 || n > kLastTableId) {
      return corrupt_change("names table " + std::to_string(n) + ", which this store lacks");
    }
    // No leader writes a key LMDB refuses, nor erases a whole table.
    if (c.key.empty() ||
        c.key.size() > static_cast<std::size_t>(mdb_env_get_maxkeysize(store_->env_))) {
      return corrupt_change("has a key of " + std::to_string(c.key.size()) + " bytes");
    }
    const MDB_dbi dbi = tables().by_id[n];
    Status s;
    switch (c.kind) {
      case ChangeKind::put:
        if (c.table == TableId::meta && (c.key == "last_id" || c.key.starts_with("last_id/"))) {
          // Ids issued here later must stay above every id the owner issued.
          // A record is one shard's: its owner seals only that shard's id.
          if (c.key != Store::last_id_key(shard_)) {
            return corrupt_change("carries the last id \"" + c.key + "\" in a record of shard " +
                                  std::to_string(shard_));
          }
          if (c.value.size() != 8) return corrupt_change("has a malformed last id");
          std::uint64_t& last = store_->last_ids_[shard_];
          last = std::max(last, get_be(c.value.data(), 8));
          sealed_ = false;  // commit writes the advanced id
          continue;
        }
        if (c.table == TableId::meta) {
          return corrupt_change("writes meta row \"" + c.key +
                                "\", which each store keeps for itself");
        }
        if (c.table == TableId::blobs)
          return corrupt_change("puts a blob row (counts come as deltas)");
        s = put_row(dbi, c.key, c.value, "apply a replicated row");
        break;
      case ChangeKind::erase:
        s = del_row(dbi, c.key, "apply a replicated erase");
        break;
      case ChangeKind::erase_prefix:
        s = delete_prefix(dbi, c.key, "apply a replicated range erase");
        break;
      case ChangeKind::blob_refs: {
        std::int64_t delta;
        std::uint64_t size;
        if (c.table != TableId::blobs || c.key.size() != 32 ||
            !decode_blob_refs(c.value, &delta, &size)) {
          return corrupt_change("has a malformed blob reference delta");
        }
        std::array<std::uint8_t, 32> blob;
        std::copy(c.key.begin(), c.key.end(), blob.begin());
        s = add_blob_refs(blob, delta, size);
        break;
      }
      case ChangeKind::activation_usage: {
        std::uint32_t tenant;
        std::int64_t count, bytes;
        if (c.table != TableId::activation_usage ||
            !decode_activation_usage(c.key, c.value, &tenant, &count, &bytes)) {
          return corrupt_change("has a malformed activation usage delta");
        }
        s = add_activation_usage(tenant, count, bytes);
        break;
      }
      default:
        return corrupt_change("has kind " + std::to_string(static_cast<int>(c.kind)) +
                              ", which this store does not know");
    }
    if (!s.ok()) return s;
  }
  return {};
}

}  // namespace memos::store
