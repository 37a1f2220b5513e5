// Access statistics (store.h): table `access`, how often each item is read
// and how strong it is as a memory, per item rather than per version and
// updated in batches.
#include <lmdb.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <unordered_map>

#include "memcube/le_bytes.h"
#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

// Rows are 44 bytes (store_tables.h); rows of 20 are from before strengths.
constexpr std::size_t kRowBytes = 44;
constexpr std::size_t kOldRowBytes = 20;

std::string encode_access(const AccessStats& a) {
  std::string out;
  out.reserve(kRowBytes);
  put_le(&out, a.hits, 8);
  put_le(&out, static_cast<std::uint64_t>(std::max<std::int64_t>(a.last_access_ms, 0)), 8);
  put_le(&out, std::bit_cast<std::uint64_t>(a.strength), 8);
  put_le(&out, std::bit_cast<std::uint64_t>(a.recalls), 8);
  put_le(&out, static_cast<std::uint64_t>(std::max<std::int64_t>(a.last_recall_ms, 0)), 8);
  std::uint32_t crc = crc32c(out.data(), out.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

// Errors: corrupt (bad length, checksum, or a strength that is not a
// finite number of at least 1).
Status decode_access(std::string_view v, AccessStats* out) {
  *out = {};
  if (v.size() == kOldRowBytes) {
    std::uint64_t last = 0;
    Status s = decode_counter_pair(v, "access", &out->hits, &last);
    out->last_access_ms = static_cast<std::int64_t>(last);
    return s;
  }
  if (v.size() != kRowBytes) return {Errc::corrupt, "access row has a bad length"};
  if (crc32c(v.data(), kRowBytes - 4) != get_le(v, kRowBytes - 4, 4)) {
    return {Errc::corrupt, "access row fails its checksum"};
  }
  out->hits = get_le(v, 0, 8);
  out->last_access_ms = static_cast<std::int64_t>(get_le(v, 8, 8));
  out->strength = std::bit_cast<double>(get_le(v, 16, 8));
  out->recalls = std::bit_cast<double>(get_le(v, 24, 8));
  out->last_recall_ms = static_cast<std::int64_t>(get_le(v, 32, 8));
  if (!std::isfinite(out->strength) || out->strength < 1 || !std::isfinite(out->recalls) ||
      out->recalls < 0) {
    return {Errc::corrupt, "access row holds an impossible strength"};
  }
  return {};
}

}  // namespace

Status ReadTxn::access_stats(CubeId cube, ItemId item, AccessStats* out) const {
  *out = {};
  std::string k = item_key(cube, item);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().access, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read access statistics");
  return decode_access(as_view(val), out);
}

Status WriteTxn::record_access(const std::vector<AccessUpdate>& batch) {
  std::unordered_map<CubeId, bool> mine;  // this shard's cubes (one read each)
  for (const AccessUpdate& u : batch) {
    auto [at, fresh] = mine.try_emplace(u.cube, false);
    if (fresh) {
      if (Status s = writes_for_cube(u.cube, &at->second); !s.ok()) return s;
    }
    if (!at->second) continue;  // another shard's: its owner counts it
    Item head;
    Status s = read_head(u.cube, u.item, &head);
    if (s.code == Errc::not_found) continue;  // purged, or its cube removed
    if (!s.ok()) return s;
    AccessStats stats;
    if ((s = view_.access_stats(u.cube, u.item, &stats)); !s.ok()) return s;
    stats.hits += u.hits;
    stats.last_access_ms = std::max(stats.last_access_ms, u.last_access_ms);
    // Non-finite or negative additions (a caller's bug) change nothing: a
    // strength below 1 or NaN would make every later retention wrong.
    if (std::isfinite(u.strength) && u.strength > 0) stats.strength += u.strength;
    if (std::isfinite(u.recalls) && u.recalls > 0) stats.recalls += u.recalls;
    stats.last_recall_ms = std::max(stats.last_recall_ms, u.last_recall_ms);
    if (s = put_access_stats(u.cube, u.item, stats); !s.ok()) return s;
  }
  return {};
}

Status WriteTxn::put_access_stats(CubeId cube, ItemId item, const AccessStats& stats) {
  AccessStats checked = stats;
  if (!std::isfinite(checked.strength) || checked.strength < 1) checked.strength = 1;
  if (!std::isfinite(checked.recalls) || checked.recalls < 0) checked.recalls = 0;
  return put_row(tables().access, item_key(cube, item), encode_access(checked), "write access");
}

}  // namespace memos::store
