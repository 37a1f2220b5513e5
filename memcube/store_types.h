// store_types.h — the values the MemCube store reads and writes (items,
// cubes, snapshots, access statistics), the Status its operations return
// and the options it opens with. Plain data: no LMDB, no behaviour beyond small accessors. The
// store's operations are in memcube/store.h; how each value is encoded on
// disk is memcube/record_codec.h's business.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "memcube/ids.h"

namespace memos::store {

// What a store operation can fail with. Each operation documents which apply.
enum class Errc {
  ok,
  not_found,       // cube, item or version absent (or item deleted at head)
  already_exists,  // cube name taken for this tenant
  conflict,        // operation not allowed in the current state
  storage_full,    // disk full, or the map at its limit: retryable once space returns
  map_full,        // the map is full but may grow (CommitQueue grows it and retries)
  corrupt,         // a stored record failed to decode
  io,              // any other LMDB or system error
  unavailable,     // the store is closing; retry against the next daemon
  // A bound on what a tenant holds refused the write: never set by the
  // store itself, but by a caller's check inside the write transaction
  // (the kernel's tenant quotas), so that the write is undone with it.
  quota_exceeded,
  // The peer may not do this to the cube (it is shared with it read-only):
  // likewise set only by a caller's check inside the transaction.
  permission_denied,
};

struct Status {
  Errc code = Errc::ok;
  std::string message;

  bool ok() const { return code == Errc::ok; }
  static Status success() { return {}; }
};

// How a store is opened (Store::open).
struct StoreOptions {
  std::uint64_t map_size_bytes = 1ull << 30;
  // grow_map() doubles the map up to this; then a full map is storage_full.
  std::uint64_t max_map_size_bytes = 256ull << 30;
  unsigned max_readers = 512;
  // How many shards ids are issued for: a cluster's cluster.shards, 1 on
  // one node. Every id a shard's writes issue is congruent to the shard
  // modulo `shards`, so the owners of different shards, each issuing ids on
  // its own node, never issue the same one (docs/scale-out.md, "Shards").
  // 1 to Store::kMaxShards; open() refuses others.
  std::uint32_t shards = 1;
};

struct MetaEntry {
  std::string key;
  std::string value;
  bool operator==(const MetaEntry&) const = default;
};

enum class Tier : std::uint8_t { plaintext, activation, parametric };

// Lifecycle. Allowed transitions (anything else is Errc::conflict):
//   active <-> archived, active <-> frozen, archived <-> frozen  (set_state)
//   active | archived -> deleted                                 (remove_item)
//   deleted -> active                                            (rollback)
// A frozen item is immutable: no update, supersede or removal until it is
// made active again. Archived items keep their history but leave search.
enum class State : std::uint8_t { active, archived, frozen, deleted };
const char* to_string(State state);

struct Provenance {
  TenantId writer = 0;
  std::string session;
  std::vector<ItemId> sources;
  bool operator==(const Provenance&) const = default;
};

// What a parametric item (Tier::parametric) holds besides an item's fields:
// a LoRA adapter, its GGUF in the blob store, bound to the base model an
// executor checked it against. Each version names its own blob (a re-import
// is a new version; a rollback brings an older blob back), and each version
// holds one reference to it.
struct Parametric {
  std::string kind = "lora";
  std::string name;                     // unique among the cube's parametric items
  std::array<std::uint8_t, 32> blob{};  // SHA-256 of the GGUF
  std::uint64_t size = 0;
  float scale = 1;         // the scale a chat uses unless it names one
  std::string base_model;  // hex SHA-256 of the model it fits
  std::string architecture;
  std::uint32_t tensors = 0, rank = 0;
  float alpha = 0;
  std::string origin;  // how it came to be: "imported", or a distillation's job
  bool operator==(const Parametric&) const = default;
};

struct Item {
  ItemId id = 0;
  std::uint32_t version = 0;
  Tier tier = Tier::plaintext;
  State state = State::active;
  std::string text;
  std::vector<std::string> tags;
  std::vector<MetaEntry> meta;
  float importance = 0;
  std::int64_t expires_at_ms = 0;  // 0: never
  // Bi-temporal: [valid_from, valid_to) is when the fact holds in the world
  // (valid_to 0: still holds); recorded_at is when this version was written.
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_to_ms = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t recorded_at_ms = 0;
  Provenance provenance;
  // The cube's head version this version was written at (snapshots name one).
  std::uint64_t cube_version = 0;
  std::optional<Parametric> param;  // set exactly when tier is parametric

  bool deleted() const { return state == State::deleted; }
  // Whether the fact holds at `t` (valid time).
  bool valid_at(std::int64_t t) const {
    return valid_from_ms <= t && (valid_to_ms == 0 || t < valid_to_ms);
  }
};

// What a new item holds; ids, versions and times are assigned by the store.
struct ItemDraft {
  Tier tier = Tier::plaintext;
  std::string text;
  std::vector<std::string> tags;
  std::vector<MetaEntry> meta;
  float importance = 0;
  std::int64_t expires_at_ms = 0;
  std::int64_t valid_from_ms = 0;  // 0: the time it is recorded
  std::int64_t valid_to_ms = 0;
  Provenance provenance;
};

// A change to an item; fields left empty keep their value.
struct ItemPatch {
  std::optional<std::string> text;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::vector<MetaEntry>> meta;
  TenantId writer = 0;
  std::string session;
};

struct Cube {
  CubeId id = 0;
  std::string name;
  TenantId owner = 0;
  std::int64_t created_at_ms = 0;
  std::string embedder;
  std::uint32_t dimension = 0;
  std::uint64_t live_items = 0;
  std::uint64_t head_version = 0;  // advanced by every item version written
  std::string default_retriever;   // how search ranks unless the client says
  std::string language;            // stemming language of lexical search; "": english
};

// How often an item is read, and how strong it is as a memory (memos(7),
// "Scheduling": its retention is exp(-t / strength), t the time since its
// last recall), kept per item (not per version) and updated in batches, so
// reads never wait on a write.
struct AccessStats {
  std::uint64_t hits = 0;
  std::int64_t last_access_ms = 0;
  double strength = 1;              // S: 1, plus what each recall added
  double recalls = 0;               // weighted: a search hit counts less than a get
  std::int64_t last_recall_ms = 0;  // 0: never recalled (t runs from its creation)
  bool operator==(const AccessStats&) const = default;
};

// A batch's reads of one item: `hits` reads, of which recalls weighing
// `recalls` in all added `strength` (the tenant's strength_gain times each
// recall's weight).
struct AccessUpdate {
  CubeId cube = 0;
  ItemId item = 0;
  std::uint64_t hits = 0;
  std::int64_t last_access_ms = 0;
  double recalls = 0;
  double strength = 0;
  std::int64_t last_recall_ms = 0;
};

// A named cube-wide version: the cube as it was at head version cube_version.
struct Snapshot {
  std::string tag;
  std::uint64_t cube_version = 0;
  std::int64_t created_at_ms = 0;
  std::uint64_t live_items = 0;
  TenantId created_by = 0;
};

// One item's difference between two cube versions.
struct SnapshotChange {
  enum class Kind : std::uint8_t { added, removed, changed };
  ItemId item = 0;
  Kind kind = Kind::changed;
  std::uint32_t from_version = 0;  // 0: absent (or deleted) at the first
  std::uint32_t to_version = 0;    // 0: absent (or deleted) at the second
  std::string text;                // at the second, or at the first if removed
};

// The outcome of a write made with an idempotency key (see WriteTxn).
struct IdempotencyRecord {
  std::uint16_t operation = 0;
  CubeId cube = 0;
  ItemId item = 0;
  std::uint32_t version = 0;
  std::int64_t recorded_at_ms = 0;
};

struct RetentionResult {
  std::vector<std::pair<CubeId, ItemId>> expired;  // tombstoned by their TTL
  std::size_t purged = 0;                          // removed with all versions
  std::size_t orphaned_states = 0;                 // KV states whose cube was gone
};

}  // namespace memos::store
