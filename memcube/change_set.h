// change_set.h — the rows a write transaction changed, in the order it
// changed them: what a cluster replicates (docs/scale-out.md, "What is
// replicated"). A follower applies a change set verbatim
// (WriteTxn::apply_changes), so the owner's decisions — ids, versions, quota
// checks, deduplication, timestamps — are made once and never recomputed.
//
// A WriteTxn records into a ChangeSet only when asked (record_changes); a
// nested transaction that fails truncates what it recorded, as LMDB drops
// what it wrote. Not thread-safe: it belongs to the writer thread while a
// transaction records into it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memos::store {

// The store's tables (memcube/store_tables.h) by a number that is part of
// the replication log's format: never renumber, only append.
enum class TableId : std::uint8_t {
  meta = 1,
  cube_names,
  cubes,
  items,
  versions,
  idempotency,
  expiry,
  tombstones,
  snapshots,
  blobs,
  access,
  activations,
  activation_prefixes,
  activation_lru,
  activation_usage,
  tenant_usage,
  tenant_salts,
  text_hashes,
  cube_shares,
  shared_cubes,
  working_sets,
  param_names,
  router_usage,
};
inline constexpr std::uint8_t kLastTableId = static_cast<std::uint8_t>(TableId::router_usage);

// The table's name in LMDB (and in messages); nullptr for a number that
// names no table.
const char* table_name(TableId table);

enum class ChangeKind : std::uint8_t {
  put = 1,           // key -> value, replacing any row
  erase = 2,         // the row at key (an absent row is no error)
  erase_prefix = 3,  // every row whose key starts with key
  // `blobs` only: key is the SHA-256, value the change of its reference
  // count (i64 LE) and the blob's size (u64 LE). Several shards reference
  // the same blob, so their changes must commute: a delta, not a row.
  blob_refs = 4,
  // `activation_usage` only: key is the tenant (u32 BE), value the change
  // of its states' count and of their bytes (i64 LE each), each applied
  // saturating at 0. Removing a shared cube gives back, in the cube's shard,
  // the usage of the states grantees stored in it, while the grantees'
  // own shards change the same rows: a delta, not a row.
  activation_usage = 5,
};
inline constexpr std::uint8_t kLastChangeKind =
    static_cast<std::uint8_t>(ChangeKind::activation_usage);

struct Change {
  TableId table;
  ChangeKind kind;
  std::string key;
  std::string value;  // put: the row; blob_refs, activation_usage: the delta; otherwise empty
};

class ChangeSet {
 public:
  void put(TableId table, std::string_view key, std::string_view value);
  void erase(TableId table, std::string_view key);
  void erase_prefix(TableId table, std::string_view prefix);
  void blob_refs(const std::array<std::uint8_t, 32>& blob, std::int64_t delta, std::uint64_t size);
  void activation_usage(std::uint32_t tenant, std::int64_t count, std::int64_t bytes);
  // Appends a change as it is (a decoded record). Checked by apply, not here.
  void append(Change change);

  const std::vector<Change>& changes() const { return changes_; }
  std::size_t size() const { return changes_.size(); }
  bool empty() const { return changes_.empty(); }
  // Bytes of keys and values: what the set costs in a log record.
  std::size_t bytes() const { return bytes_; }
  // Keeps the first `count` changes (a failed nested job drops its own).
  void truncate(std::size_t count);
  void clear();

 private:
  std::vector<Change> changes_;
  std::size_t bytes_ = 0;
};

// One commit group's changes to one shard: a record of the replication log
// (encoded by record_codec.h's encode_change_group).
struct ChangeGroup {
  std::uint32_t shard = 0;
  std::uint64_t epoch = 0;   // the owner's lease when it appended the record
  std::uint32_t schema = 0;  // Store::kSchemaVersion of the store that made it
  // The digest (SHA-256) of the shard's record before this one, or
  // empty_log_digest() before the first: each record names the history it
  // follows (docs/scale-out.md, "The chain"). Empty in a record made before
  // the chain, which follows whatever came before.
  std::string previous;
  ChangeSet changes;
};

// The digest of a shard's log before its first record (32 zero bytes): the
// first record's `previous`, and what a store holds at log position 0.
inline std::string empty_log_digest() {
  return std::string(32, '\0');
}

// Where a store stands in a shard's log: the last record it holds (written
// or applied), that record's digest (SHA-256 of the record's bytes) and the
// digest it follows (its ChangeGroup::previous).
struct LogPosition {
  std::uint64_t sequence = 0;
  // empty_log_digest() at sequence 0; empty when not known (a store that
  // followed the log before records were chained).
  std::string digest = empty_log_digest();
  // The record's `previous`: a later record that follows it too is a
  // sibling stored second, which every node passes over (docs/scale-out.md,
  // "Siblings"). Empty when not known (at sequence 0, before the chain, or
  // a store from before memosd kept it). Kept in a row of its own.
  std::string previous{};
};

// A blob_refs value: the delta and the size. False if `value` is not one.
bool decode_blob_refs(std::string_view value, std::int64_t* delta, std::uint64_t* size);
// An activation_usage change: the tenant (its key) and the deltas. False if
// the key or the value is not one.
bool decode_activation_usage(std::string_view key, std::string_view value, std::uint32_t* tenant,
                             std::int64_t* count, std::int64_t* bytes);

}  // namespace memos::store
