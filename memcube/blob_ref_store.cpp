// Blob reference counts (store.h): table `blobs`. A blob file in the blob
// store (blob_store.h) may be collected once no row here counts it.
#include <lmdb.h>

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

Status WriteTxn::blob_ref(const std::array<std::uint8_t, 32>& blob, std::uint64_t size) {
  MDB_val key = blob_key(blob), val;
  std::uint64_t known_size = size, refs = 0;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  if (rc == 0) {
    if (Status s = decode_blob_row(as_view(val), &known_size, &refs); !s.ok()) return s;
    if (known_size != size) return {Errc::corrupt, "blob size differs from its earlier references"};
  } else if (rc != MDB_NOTFOUND) {
    return from_mdb(rc, "read blob row");
  }
  std::string row = encode_blob_row(size, refs + 1);
  MDB_val nv = as_val(row);
  return from_mdb(mdb_put(txn_, tables().blobs, &key, &nv, 0), "write blob row");
}

Status WriteTxn::blob_unref(const std::array<std::uint8_t, 32>& blob) {
  MDB_val key = blob_key(blob), val;
  int rc = mdb_get(txn_, tables().blobs, &key, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "blob has no reference"};
  if (rc) return from_mdb(rc, "read blob row");
  std::uint64_t size, refs;
  if (Status s = decode_blob_row(as_view(val), &size, &refs); !s.ok()) return s;
  if (refs <= 1) return from_mdb(mdb_del(txn_, tables().blobs, &key, nullptr), "drop blob row");
  std::string row = encode_blob_row(size, refs - 1);
  MDB_val nv = as_val(row);
  return from_mdb(mdb_put(txn_, tables().blobs, &key, &nv, 0), "write blob row");
}

}  // namespace memos::store
