#include "plugins/llama-executor/resident_cache.h"

namespace memos::llama_exec {

Blob ResidentCache::find(const std::string& digest) {
  auto it = index_.find(digest);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->blob;
}

void ResidentCache::insert(const std::string& digest, Blob blob) {
  if (!blob || blob->size() > budget_) return;
  erase(digest);
  while (!order_.empty() && bytes_ + blob->size() > budget_) erase(order_.back().digest);
  bytes_ += blob->size();
  order_.push_front(Entry{digest, std::move(blob)});
  index_[digest] = order_.begin();
}

void ResidentCache::erase(const std::string& digest) {
  auto it = index_.find(digest);
  if (it == index_.end()) return;
  bytes_ -= it->second->blob->size();
  order_.erase(it->second);
  index_.erase(it);
}

ResidentStats ResidentCache::stats() const {
  ResidentStats s;
  s.states = static_cast<std::uint32_t>(order_.size());
  s.bytes = bytes_;
  s.budget = budget_;
  s.hits = hits_;
  s.misses = misses_;
  return s;
}

}  // namespace memos::llama_exec
