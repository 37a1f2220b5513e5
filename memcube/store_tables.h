// store_tables.h — the store's named LMDB databases: their layout, their
// handles, and the fixed rows that two table groups share. Internal to
// memcube: only the store's own .cpp files include it, which keeps <lmdb.h>
// out of store.h and so out of the kernel.
//
// Layout: named LMDB databases, all keys big-endian so they sort naturally.
// In keys, "cube" and "item" are u64 ids, "tenant" a u32 uid, "version" a
// u32, "ms" a u64 Unix time in milliseconds (a negative time is stored as
// 0), and a name, tag or key the raw bytes of the string, last. Values named
// ...Record are Cap'n Proto messages behind a checksummed header
// (record_codec.h); the others are fixed rows, as given. Each table group is
// owned by one file, which reads and writes it (removing a cube and purging
// an item also delete the rows they own in other groups):
//
//   store.cpp (the environment, transactions, ids)
//     meta                "schema" -> u32 schema version (6; older ones
//                         from 2 are upgraded on open: store.cpp)
//                         "last_id" -> u64 last issued id (written by every
//                         commit, so ids stay unique across restarts)
//                         "log/" + shard (u32) -> u64 the replication log's
//                         sequence of the shard's last record this store
//                         holds (cluster mode; change_capture.cpp)
//   cube_store.cpp (manifests)
//     cube_names          tenant + name -> cube (u64)
//     cubes               cube -> CubeRecord
//   item_store.cpp (items and their versions)
//     items               cube + item -> ItemRecord (the head version)
//     versions            cube + item + version -> ItemRecord (immutable)
//   snapshot_store.cpp
//     snapshots           cube + tag -> SnapshotRecord
//   retention_store.cpp (queues; the time leads, so a scan from the first
//   key finds what is due)
//     expiry              expires_at ms + cube + item -> "" (live, unfrozen
//                         heads with a TTL)
//     tombstones          deleted ms (the tombstone's recorded_at) + cube +
//                         item -> "" (deleted heads, purged after retention)
//   idempotency_store.cpp
//     idempotency         tenant + client key -> IdempotencyRecord
//   blob_ref_store.cpp
//     blobs               SHA-256 (32 bytes) -> size (u64 LE) + refs (u64 LE)
//                         + CRC-32C of those 16 bytes (u32 LE)
//   access_store.cpp
//     access              cube + item -> hits (u64 LE) + last access ms
//                         (u64 LE) + strength (f64 LE) + weighted recalls
//                         (f64 LE) + last recall ms (u64 LE) + CRC-32C of
//                         those 40 bytes (u32 LE); a 20-byte row (hits, last
//                         access, CRC) from before strengths reads as
//                         strength 1, never recalled
//   activation_store.cpp (the activation tier, activation.h)
//     activations         cube + item -> ActivationRecord
//     activation_prefixes chain digest (32 bytes) + cube + item -> ""
//     activation_lru      tenant + last use ms + cube + item -> ""
//     tenant_salts        tenant -> salt (32 random bytes)
//   tenant_usage_store.cpp (what each tenant holds, kept in step with its
//   items so that limits read one row instead of a scan)
//     activation_usage    tenant -> count (u64) + bytes (u64)
//     tenant_usage        tenant -> cubes (u64) + live items (u64) + bytes of
//                         their texts (u64) + bytes of the parametric items'
//                         blobs (u64; absent in rows from schema 5): what
//                         tenant quotas are checked against, in the write's
//                         own transaction
//   text_index_store.cpp (exact duplicates, found without reading the cube)
//     text_hashes         cube + first 16 bytes of SHA-256(text) + item -> ""
//                         (every head that is not a tombstone)
//   working_set_store.cpp (the scheduler's, working_set.h)
//     working_sets        cube -> WorkingSet row (format byte, then fixed
//                         fields and the members, CRC-32C last:
//                         working_set_store.cpp)
//   param_store.cpp (the parametric tier's names)
//     param_names         cube + name -> item (u64): every parametric item
//                         not purged, a removed one included, so that adding
//                         the name again continues its history
//   router_usage_store.cpp (the router's spending, policy [router])
//     router_usage        tenant -> day (u32) + context tokens (u64) + routed
//                         queries (u64) + CRC-32C of those 20 bytes (u32)
//   share_store.cpp (cubes shared with other tenants; both tables hold one
//   row per grant, so that a cube's grants and a tenant's shared cubes are
//   each one prefix scan)
//     cube_shares         cube + tenant -> access (u8: 1 read, 2 write) +
//                         granted ms (u64)
//     shared_cubes        tenant + cube -> the same row
#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "memcube/change_set.h"
#include "memcube/crc32c.h"
#include "memcube/store.h"

namespace memos::store {

struct Store::Tables {
  // Grouped by the file that owns them.
  MDB_dbi meta = 0;                                  // store.cpp
  MDB_dbi cube_names = 0, cubes = 0;                 // cube_store.cpp
  MDB_dbi items = 0, versions = 0;                   // item_store.cpp
  MDB_dbi snapshots = 0;                             // snapshot_store.cpp
  MDB_dbi expiry = 0, tombstones = 0;                // retention_store.cpp
  MDB_dbi idempotency = 0;                           // idempotency_store.cpp
  MDB_dbi blobs = 0;                                 // blob_ref_store.cpp
  MDB_dbi access = 0;                                // access_store.cpp
  MDB_dbi activation_usage = 0, tenant_usage = 0;    // tenant_usage_store.cpp
  MDB_dbi activations = 0, activation_prefixes = 0;  // activation_store.cpp
  MDB_dbi activation_lru = 0, tenant_salts = 0;      // activation_store.cpp
  MDB_dbi text_hashes = 0;                           // text_index_store.cpp
  MDB_dbi cube_shares = 0, shared_cubes = 0;         // share_store.cpp
  MDB_dbi working_sets = 0;                          // working_set_store.cpp
  MDB_dbi param_names = 0;                           // param_store.cpp
  MDB_dbi router_usage = 0;                          // router_usage_store.cpp

  // Each table's handle by its number in the replication log (change_set.h),
  // and back; filled by open().
  std::array<MDB_dbi, kLastTableId + 1> by_id{};
  std::array<TableId, 64> id_of_dbi{};  // LMDB numbers handles from 2, up to maxdbs + 2

  // Opens every database in `txn`, creating those missing (names as in
  // change_set.h's table_name). Returns LMDB's error code, 0 on success.
  int open(MDB_txn* txn) {
    const std::pair<TableId, MDB_dbi*> all[] = {
        {TableId::meta, &meta},
        {TableId::cube_names, &cube_names},
        {TableId::cubes, &cubes},
        {TableId::items, &items},
        {TableId::versions, &versions},
        {TableId::idempotency, &idempotency},
        {TableId::expiry, &expiry},
        {TableId::tombstones, &tombstones},
        {TableId::snapshots, &snapshots},
        {TableId::blobs, &blobs},
        {TableId::access, &access},
        {TableId::activations, &activations},
        {TableId::activation_prefixes, &activation_prefixes},
        {TableId::activation_lru, &activation_lru},
        {TableId::activation_usage, &activation_usage},
        {TableId::tenant_usage, &tenant_usage},
        {TableId::tenant_salts, &tenant_salts},
        {TableId::text_hashes, &text_hashes},
        {TableId::cube_shares, &cube_shares},
        {TableId::shared_cubes, &shared_cubes},
        {TableId::working_sets, &working_sets},
        {TableId::param_names, &param_names},
        {TableId::router_usage, &router_usage},
    };
    static_assert(sizeof(all) / sizeof(all[0]) == kLastTableId);
    for (const auto& [id, dbi] : all) {
      if (int rc = mdb_dbi_open(txn, table_name(id), MDB_CREATE, dbi)) return rc;
      if (*dbi >= id_of_dbi.size()) return MDB_DBS_FULL;
      by_id[static_cast<std::uint8_t>(id)] = *dbi;
      id_of_dbi[*dbi] = id;
    }
    return 0;
  }
};

// The rows of `blobs` and `access`: two u64 counters, little-endian, then
// their CRC-32C (u32 LE): 20 bytes.
inline std::string encode_counter_pair(std::uint64_t a, std::uint64_t b) {
  std::string out;
  for (std::uint64_t v : {a, b}) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::uint32_t crc = crc32c(out.data(), 16);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

// Errors: corrupt (bad length or checksum; `what` names the table).
inline Status decode_counter_pair(std::string_view v, const char* what, std::uint64_t* a,
                                  std::uint64_t* b) {
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

}  // namespace memos::store
