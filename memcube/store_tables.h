// store_tables.h — the handles of the store's named LMDB databases (their
// key and value layouts are in store.h), and the fixed rows that two table
// groups share. Internal to memcube: only the store's own .cpp files include
// it, which keeps <lmdb.h> out of store.h and so out of the kernel.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

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

  // Opens every database in `txn`, creating those missing (names as in
  // store.h). Returns LMDB's error code, 0 on success.
  int open(MDB_txn* txn) {
    const std::pair<const char*, MDB_dbi*> all[] = {
        {"meta", &meta},
        {"cube_names", &cube_names},
        {"cubes", &cubes},
        {"items", &items},
        {"versions", &versions},
        {"idempotency", &idempotency},
        {"expiry", &expiry},
        {"tombstones", &tombstones},
        {"snapshots", &snapshots},
        {"blobs", &blobs},
        {"access", &access},
        {"activations", &activations},
        {"activation_prefixes", &activation_prefixes},
        {"activation_lru", &activation_lru},
        {"activation_usage", &activation_usage},
        {"tenant_usage", &tenant_usage},
        {"tenant_salts", &tenant_salts},
        {"text_hashes", &text_hashes},
    };
    for (const auto& [name, dbi] : all) {
      if (int rc = mdb_dbi_open(txn, name, MDB_CREATE, dbi)) return rc;
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
