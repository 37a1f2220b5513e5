// The router's spending per tenant (store.h, `router_usage`): the context
// tokens and routed queries of the tenant's current UTC day, what a policy's
// [router] tokens_per_day bounds (kernel/router_ledger.h). One row a tenant:
//   day (u32 BE, days since 1970-01-01 UTC) + tokens (u64 BE) + queries
//   (u64 BE) + CRC-32C of those 20 bytes (u32 BE)
// A row of an earlier day reads as that day's: a new day starts at zero.
#include <lmdb.h>

#include "memcube/crc32c.h"
#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

constexpr std::size_t kBody = 20;

std::string encode(const RouterUsage& u) {
  std::string v;
  put_be(v, u.day, 4);
  put_be(v, u.tokens, 8);
  put_be(v, u.queries, 8);
  put_be(v, crc32c(v.data(), v.size()), 4);
  return v;
}

Status decode(std::string_view v, RouterUsage* out) {
  if (v.size() != kBody + 4) return {Errc::corrupt, "router usage row has a bad length"};
  if (crc32c(v.data(), kBody) != get_be(v.data() + kBody, 4))
    return {Errc::corrupt, "router usage row fails its checksum"};
  out->day = static_cast<std::uint32_t>(get_be(v.data(), 4));
  out->tokens = get_be(v.data() + 4, 8);
  out->queries = get_be(v.data() + 12, 8);
  return {};
}

}  // namespace

Status ReadTxn::router_usage(TenantId tenant, RouterUsage* out) const {
  *out = {};
  std::string k = tenant_key(tenant);
  MDB_val key = as_val(k), val;
  int rc = mdb_get(txn_, tables().router_usage, &key, &val);
  if (rc == MDB_NOTFOUND) return {};
  if (rc) return from_mdb(rc, "read router usage");
  return decode(as_view(val), out);
}

Status WriteTxn::add_router_usage(const std::vector<RouterCharge>& batch) {
  for (const RouterCharge& c : batch) {
    if (!writes_for(c.tenant)) continue;  // another shard's: its owner adds it
    RouterUsage usage;
    Status s = view_.router_usage(c.tenant, &usage);
    // A damaged row is replaced: it only ever under-counts one day.
    if (!s.ok() && s.code != Errc::corrupt) return s;
    if (!s.ok() || usage.day != c.day) usage = {c.day, 0, 0};
    usage.tokens += c.tokens;
    usage.queries += c.queries;
    if (Status w = put_row(tables().router_usage, tenant_key(c.tenant), encode(usage),
                           "write router usage");
        !w.ok())
      return w;
  }
  return {};
}

}  // namespace memos::store
