// The scheduler's part of the store (working_set.h): table `working_sets`.
#include <lmdb.h>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

// Row: format (u8, 1), tenant (u32), generation, state (u64 each),
// block tokens, estimated tokens (u32 each), updated ms (u64), member
// count (u32), the members (u64 each), then CRC-32C of all before (u32);
// integers big-endian.
constexpr std::uint8_t kFormat = 1;
constexpr std::size_t kFixedBytes = 1 + 4 + 8 + 8 + 4 + 4 + 8 + 4;

std::string encode(const WorkingSet& w) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  put_be(out, w.tenant, 4);
  put_be(out, w.generation, 8);
  put_be(out, w.state, 8);
  put_be(out, w.block_tokens, 4);
  put_be(out, w.estimated_tokens, 4);
  put_be(out, static_cast<std::uint64_t>(w.updated_at_ms < 0 ? 0 : w.updated_at_ms), 8);
  put_be(out, w.items.size(), 4);
  for (ItemId id : w.items) put_be(out, id, 8);
  put_be(out, crc32c(out.data(), out.size()), 4);
  return out;
}

Status decode(CubeId cube, std::string_view v, WorkingSet* out) {
  if (v.size() < kFixedBytes + 4 || static_cast<std::uint8_t>(v[0]) != kFormat) {
    return {Errc::corrupt, "working set row has a bad header"};
  }
  const char* p = v.data() + 1;
  WorkingSet w;
  w.cube = cube;
  w.tenant = static_cast<TenantId>(get_be(p, 4));
  w.generation = get_be(p + 4, 8);
  w.state = get_be(p + 12, 8);
  w.block_tokens = static_cast<std::uint32_t>(get_be(p + 20, 4));
  w.estimated_tokens = static_cast<std::uint32_t>(get_be(p + 24, 4));
  w.updated_at_ms = static_cast<std::int64_t>(get_be(p + 28, 8));
  const std::uint64_t n = get_be(p + 36, 4);
  if (n > kMaxWorkingSetItems || v.size() != kFixedBytes + n * 8 + 4) {
    return {Errc::corrupt, "working set row has a bad length"};
  }
  if (crc32c(v.data(), v.size() - 4) != get_be(v.data() + v.size() - 4, 4)) {
    return {Errc::corrupt, "working set row fails its checksum"};
  }
  for (std::uint64_t i = 0; i < n; ++i) w.items.push_back(get_be(p + 40 + i * 8, 8));
  *out = std::move(w);
  return {};
}

}  // namespace

Status ReadTxn::working_set(CubeId cube, WorkingSet* out) const {
  std::string k = u64_key(cube);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().working_sets, &key, &val);
  if (rc) return from_mdb(rc, "read working set");
  return decode(cube, as_view(val), out);
}

Status ReadTxn::list_working_sets(std::vector<WorkingSet>* out) const {
  out->clear();
  Cursor cursor(txn_, tables().working_sets);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view k, std::string_view v) -> Status {
    if (k.size() != 8) return {Errc::corrupt, "working set row has a bad key"};
    WorkingSet w;
    if (Status s = decode(get_be(k.data(), 8), v, &w); !s.ok()) return s;
    out->push_back(std::move(w));
    return {};
  });
}

Status WriteTxn::put_working_set(const WorkingSet& set) {
  if (set.items.size() > kMaxWorkingSetItems) {
    return {Errc::conflict,
            "a working set holds at most " + std::to_string(kMaxWorkingSetItems) + " memories"};
  }
  CubeId cube = set.cube;
  Cube found;
  if (Status s = view_.read_cube(cube, &found); !s.ok()) return s;
  return put_row(tables().working_sets, u64_key(cube), encode(set), "write working set");
}

Status WriteTxn::remove_working_set(CubeId cube) {
  std::string k = u64_key(cube);
  MDB_val key = as_val(k);
  int rc = del_raw(tables().working_sets, &key, nullptr);
  if (rc == MDB_NOTFOUND) return {};
  return rc ? from_mdb(rc, "remove working set") : Status{};
}

}  // namespace memos::store
