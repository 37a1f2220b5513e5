// Blob reference counts (store.h): table `blobs`. A blob file in the blob
// store (blob_store.h) may be collected once no row here counts it.
#include <lmdb.h>

#include <algorithm>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

MDB_val blob_key(const std::array<std::uint8_t, 32>& blob) {
  return MDB_val{blob.size(), const_cast<std::uint8_t*>(blob.data())};
}

std::string encode_blob_row(std::uint64_t size, std::uint64_t refs) {
  return encode_counter_pair(size, refs);
}

Status decode_blob_row(std::string_view v, std::uint64_t* size, std::uint64_t* refs) {
  return decode_counter_pair(v, "blob", size, refs);
}

}  // namespace

Status ReadTxn::blob_refs(const std::array<std::uint8_t, 32>& blob, std::uint64_t* refs) const {
  MDB_val key = blob_key(blob), val;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  *refs = 0;
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read blob row");
  std::uint64_t size;
  return decode_blob_row(as_view(val), &size, refs);
}

Status ReadTxn::for_each_blob(
    const std::function<void(const std::array<std::uint8_t, 32>&, std::uint64_t)>& fn) const {
  Cursor cursor(txn_, tables().blobs);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view k, std::string_view v) -> Status {
    std::array<std::uint8_t, 32> blob;
    if (k.size() != blob.size()) return {Errc::corrupt, "blob key has a bad length"};
    std::uint64_t size = 0, refs = 0;
    if (Status d = decode_blob_row(v, &size, &refs); !d.ok()) return d;
    std::copy(k.begin(), k.end(), blob.begin());
    fn(blob, size);
    return {};
  });
}

Status WriteTxn::blob_ref(const std::array<std::uint8_t, 32>& blob, std::uint64_t size) {
  MDB_val key = blob_key(blob), val;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  if (rc == 0) {
    std::uint64_t known_size, refs;
    if (Status s = decode_blob_row(as_view(val), &known_size, &refs); !s.ok()) return s;
    if (known_size != size) return {Errc::corrupt, "blob size differs from its earlier references"};
  } else if (rc != MDB_NOTFOUND) {
    return from_mdb(rc, "read blob row");
  }
  return add_blob_refs(blob, 1, size);
}

Status WriteTxn::blob_unref(const std::array<std::uint8_t, 32>& blob) {
  MDB_val key = blob_key(blob), val;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "blob has no reference"};
  if (rc) return from_mdb(rc, "read blob row");
  std::uint64_t size, refs;
  if (Status s = decode_blob_row(as_view(val), &size, &refs); !s.ok()) return s;
  return add_blob_refs(blob, -1, size);
}

Status WriteTxn::add_blob_refs(const std::array<std::uint8_t, 32>& blob, std::int64_t delta,
                               std::uint64_t size) {
  MDB_val key = blob_key(blob), val;
  std::uint64_t known_size = size, refs = 0;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  if (rc == 0) {
    if (Status s = decode_blob_row(as_view(val), &known_size, &refs); !s.ok()) return s;
  } else if (rc != MDB_NOTFOUND) {
    return from_mdb(rc, "read blob row");
  }
  const std::uint64_t magnitude =
      delta < 0 ? 0 - static_cast<std::uint64_t>(delta) : static_cast<std::uint64_t>(delta);
  if (delta < 0 && refs < magnitude) {
    return {Errc::corrupt, "a blob's reference count would go below zero"};
  }
  const std::uint64_t now = delta < 0 ? refs - magnitude : refs + magnitude;
  // Written past the recording helpers: the change is recorded as the delta,
  // which commutes with other shards' references to the same blob.
  if (now == 0) {
    rc = rc == MDB_NOTFOUND ? 0 : mdb_del(txn_, tables().blobs, &key, nullptr);
  } else {
    std::string row = encode_blob_row(known_size, now);
    MDB_val nv = as_val(row);
    rc = mdb_put(txn_, tables().blobs, &key, &nv, 0);
  }
  if (rc) return from_mdb(rc, "write blob row");
  if (changes_ && delta != 0) changes_->blob_refs(blob, delta, known_size);
  return {};
}

}  // namespace memos::store
