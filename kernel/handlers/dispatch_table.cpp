#include "kernel/handlers/dispatch_table.h"

#include <capnp/schema.h>

#include <cassert>

namespace memos::kernel {

void DispatchTable::add(wire::Request::Which operation, Handler handler) {
  auto slot = static_cast<std::size_t>(operation);
  if (handlers_.size() <= slot) handlers_.resize(slot + 1);
  assert(!handlers_[slot] && "two handlers for one operation");
  if (!handlers_[slot]) handlers_[slot] = std::move(handler);
}

const Handler* DispatchTable::find(wire::Request::Which operation) const {
  auto slot = static_cast<std::size_t>(operation);
  if (slot >= handlers_.size() || !handlers_[slot]) return nullptr;
  return &handlers_[slot];
}

std::vector<std::string> DispatchTable::unserved() const {
  std::vector<std::string> out;
  for (auto field : capnp::Schema::from<wire::Request>().getUnionFields()) {
    auto operation = static_cast<wire::Request::Which>(field.getProto().getDiscriminantValue());
    if (!find(operation)) out.emplace_back(field.getProto().getName().cStr());
  }
  return out;
}

}  // namespace memos::kernel
