// Access statistics (store.h): table `access`, how often each item is read,
// per item rather than per version and updated in batches.
#include <lmdb.h>

#include <algorithm>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string encode_access(const AccessStats& a) {
  return encode_counter_pair(a.hits, static_cast<std::uint64_t>(a.last_access_ms));
}

Status decode_access(std::string_view v, AccessStats* out) {
  std::uint64_t last = 0;
  Status s = decode_counter_pair(v, "access", &out->hits, &last);
  out->last_access_ms = static_cast<std::int64_t>(last);
  return s;
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
  for (const AccessUpdate& u : batch) {
    Item head;
    Status s = read_head(u.cube, u.item, &head);
    if (s.code == Errc::not_found) continue;  // purged, or its cube removed
    if (!s.ok()) return s;
    AccessStats stats;
    if ((s = view_.access_stats(u.cube, u.item, &stats)); !s.ok()) return s;
    stats.hits += u.hits;
    stats.last_access_ms = std::max(stats.last_access_ms, u.last_access_ms);
    if (s = put_row(txn_, tables().access, item_key(u.cube, u.item), encode_access(stats),
                    "write access");
        !s.ok()) {
      return s;
    }
  }
  return {};
}

}  // namespace memos::store
