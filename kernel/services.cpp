#include "kernel/services.h"

#include "kernel/cluster_node.h"

namespace memos::kernel {

Status Services::writable() const {
  return cluster ? cluster->writable() : Status{};
}

bool Services::writes_for(store::TenantId owner) const {
  return !cluster || cluster->writable(store.shard_of(owner)).ok();
}

}  // namespace memos::kernel
