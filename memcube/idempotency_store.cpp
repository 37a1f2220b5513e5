// Idempotency keys (store.h): table `idempotency`, the recorded outcome of
// each keyed write, written in the write's own transaction.
#include <lmdb.h>

#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {

Status ReadTxn::find_idempotency(TenantId tenant, std::string_view key,
                                 IdempotencyRecord* out) const {
  // Keyed like cube names: tenant, then the client's key.
  std::string k = cube_name_key(tenant, key);
  MDB_val mk = as_val(k), val;
  int rc = mdb_get(txn_, tables().idempotency, &mk, &val);
  if (rc == MDB_NOTFOUND) return {Errc::not_found, "no write with that idempotency key"};
  if (rc) return from_mdb(rc, "read idempotency key");
  return decode_idempotency(as_view(val), out);
}

Status WriteTxn::put_idempotency(TenantId tenant, std::string_view key,
                                 const IdempotencyRecord& record) {
  return put_row(tables().idempotency, cube_name_key(tenant, key), encode_idempotency(record),
                 "write idempotency key");
}

}  // namespace memos::store
