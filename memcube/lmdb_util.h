// lmdb_util.h — key encoding, row and cursor helpers shared by the store's
// files (store.cpp and the *_store.cpp files of each table group). Internal
// to memcube.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "memcube/store.h"

namespace memos::store {

// Maps an LMDB return code to a Status: 0 -> ok, MDB_NOTFOUND -> not_found,
// MDB_MAP_FULL -> map_full, ENOSPC -> storage_full, others -> io.
Status from_mdb(int rc, std::string_view what);

// Keys are big-endian so that they sort naturally.
inline void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t get_be(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline std::string cube_name_key(TenantId tenant, std::string_view name) {
  std::string k;
  put_be(k, tenant, 4);
  k.append(name);
  return k;
}

inline std::string tenant_key(TenantId tenant) {
  std::string k;
  put_be(k, tenant, 4);
  return k;
}

inline std::string u64_key(std::uint64_t v) {
  std::string k;
  put_be(k, v, 8);
  return k;
}

inline std::string item_key(CubeId cube, ItemId id) {
  std::string k;
  put_be(k, cube, 8);
  put_be(k, id, 8);
  return k;
}

inline std::string version_key(CubeId cube, ItemId id, std::uint32_t version) {
  std::string k = item_key(cube, id);
  put_be(k, version, 4);
  return k;
}

inline MDB_val as_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

inline std::string_view as_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Owns a cursor for the duration of a scan.
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { rc_ = mdb_cursor_open(txn, dbi, &cursor_); }
  ~Cursor() {
    if (cursor_) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int open_rc() const { return rc_; }
  // Positions at the first key >= prefix; then steps while keys share it.
  template <class Fn>
  Status scan_prefix(std::string_view prefix, Fn&& fn) {
    MDB_val key = as_val(prefix), val;
    // LMDB refuses an empty key for MDB_SET_RANGE; an empty prefix is a full scan.
    int rc = mdb_cursor_get(cursor_, &key, &val, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      std::string_view k = as_view(key);
      if (k.substr(0, prefix.size()) != prefix) break;
      Status s = fn(k, as_view(val));
      if (!s.ok()) return s;
      rc = mdb_cursor_get(cursor_, &key, &val, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "scan");
    return {};
  }
  MDB_cursor* get() { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
  int rc_ = 0;
};

// Writes (or replaces) one row. Errors: storage_full, map_full, io.
inline Status put_row(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
                      std::string_view what) {
  MDB_val k = as_val(key), v = as_val(value);
  return from_mdb(mdb_put(txn, dbi, &k, &v, 0), what);
}

// Deletes one row; a row already absent is no error. Errors: io.
inline Status del_row(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view what) {
  MDB_val k = as_val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, what);
}

// Deletes every row whose key starts with `prefix` (a cube's rows, an
// item's versions). Errors: storage_full, map_full, io.
inline Status delete_prefix(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix,
                            std::string_view what) {
  Cursor cursor(txn, dbi);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  for (;;) {
    // Seek again after each delete, whatever position it left the cursor in.
    MDB_val key = as_val(prefix), val;
    int rc = mdb_cursor_get(cursor.get(), &key, &val, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) return {};
    if (rc == 0 && as_view(key).substr(0, prefix.size()) != prefix) return {};
    if (rc == 0) rc = mdb_cursor_del(cursor.get(), 0);
    if (rc) return from_mdb(rc, what);
  }
}

}  // namespace memos::store
