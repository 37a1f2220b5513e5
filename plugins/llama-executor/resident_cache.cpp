#include "plugins/llama-executor/resident_cache.h"

#include <algorithm>
#include <vector>

namespace memos::llama_exec {

Blob ResidentCache::find(const std::string& digest, double utility) {
  auto it = index_.find(digest);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  order_.splice(order_.begin(), order_, it->second);
  it->second->utility = utility;
  return it->second->blob;
}

void ResidentCache::insert(const std::string& digest, Blob blob, double utility) {
  if (!blob || blob->size() > budget_) return;
  erase(digest);
  // The eviction order: the least useful first, the least recent among
  // equals (order_ runs from the most recent). A few dozen states at most.
  std::vector<std::list<Entry>::iterator> by_worth;
  for (auto it = order_.end(); it != order_.begin();) by_worth.push_back(--it);
  std::stable_sort(by_worth.begin(), by_worth.end(),
                   [](const auto& a, const auto& b) { return a->utility < b->utility; });
  // Which would go, before any goes: when room needs a state worth more
  // than the newcomer, the newcomer stays out instead (read from disk again
  // when used, as before).
  std::size_t victims = 0;
  for (std::uint64_t freed = 0; bytes_ - freed + blob->size() > budget_; ++victims) {
    if (by_worth[victims]->utility > utility) return;
    freed += by_worth[victims]->blob->size();
  }
  for (std::size_t i = 0; i < victims; ++i) {
    bytes_ -= by_worth[i]->blob->size();
    index_.erase(by_worth[i]->digest);
    order_.erase(by_worth[i]);
  }
  bytes_ += blob->size();
  order_.push_front(Entry{digest, std::move(blob), utility});
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
  for (const Entry& e : order_) {
    if (!e.blob->pinned()) continue;
    ++s.pinned_states;
    s.pinned_bytes += e.blob->size();
  }
  return s;
}

}  // namespace memos::llama_exec
