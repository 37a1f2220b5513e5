#include "kernel/services.h"

#include "kernel/cluster_node.h"

namespace memos::kernel {

Status Services::writable() const {
  return cluster ? cluster->writable() : Status{};
}

}  // namespace memos::kernel
