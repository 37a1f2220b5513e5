// Per-tenant usage (store.h): table `activation_usage`, the count and bytes
// of each tenant's activation items, kept in step by put_activation and
// remove_activation so that eviction and quotas read one row, not a scan.
#include <lmdb.h>

#include "memcube/lmdb_util.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

std::string encode_usage(const ActivationUsage& u) {
  std::string v;
  put_be(v, u.count, 8);
  put_be(v, u.bytes, 8);
  return v;
}

Status decode_usage(std::string_view v, ActivationUsage* out) {
  if (v.size() != 16) return {Errc::corrupt, "activation usage row has a bad length"};
  out->count = get_be(v.data(), 8);
  out->bytes = get_be(v.data() + 8, 8);
  return {};
}

}  // namespace

Status ReadTxn::activation_usage(TenantId tenant, ActivationUsage* out) const {
  *out = {};
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().activation_usage, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read activation usage");
  return decode_usage(as_view(val), out);
}

Status WriteTxn::update_activation_usage(TenantId tenant,
                                         const std::function<void(ActivationUsage&)>& change) {
  ActivationUsage usage;
  if (Status s = view_.activation_usage(tenant, &usage); !s.ok()) return s;
  change(usage);
  return put_row(txn_, tables().activation_usage, tenant_key(tenant), encode_usage(usage),
                 "write activation usage");
}

}  // namespace memos::store
