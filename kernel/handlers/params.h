// params.h — the parametric tier's requests (memos(7), "Tiers"): paramAdd,
// paramList, paramShow, paramRemove, paramExport (the adapters a chat runs
// with are chat_adapters.h's).
//
// A parametric item is an item (versions, lifecycle, retention, quotas)
// whose record holds a LoRA adapter: its GGUF in the blob store, bound to
// the base model the executor checked it against. An upload comes in
// chunks on one connection (ParamAdd), gathered in memory up to
// store.max_adapter_mb (and the tenant's parametric.max_mb), then: the
// blob is written durably (a worker), the executor checks the file against
// its model (the executor lane: a refusal names what does not fit, and the
// blob is left for garbage collection), and the item is written through
// the one item-write path (idempotency, the quota in the transaction, the
// index). Adding a name the cube holds writes its next version; rollback
// brings an older adapter back. A connection that closes abandons its
// uploads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/handlers/dispatch_table.h"
#include "kernel/services.h"
#include "kernel/status.h"

namespace memos::kernel {

class ParamUploads {
 public:
  explicit ParamUploads(const Services& services) : s_(services) {}

  // Serves paramAdd, paramList, paramShow, paramRemove and paramExport from
  // `table`; this object must outlive it.
  void add_handlers(DispatchTable& table);
  // Loop thread: abandons the connection's uploads.
  void connection_closed(std::uint64_t connection);

  // Uploads one connection may have open at once.
  static constexpr std::size_t kMaxUploadsPerConnection = 4;

 private:
  struct Upload;
  void add(const RequestContext& ctx, wire::ParamAdd::Reader args);
  // The last chunk is in: blob, executor check, item.
  void finish(const RequestContext& ctx, std::shared_ptr<Upload> upload);

  const Services& s_;
  std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<Upload>> uploads_;
  std::uint64_t next_upload_ = 1;
};

}  // namespace memos::kernel
