#include "plugins/llama-executor/adapter_cache.h"

#include <algorithm>

namespace memos::llama_exec {

AdapterCache::Entry* AdapterCache::touch(const std::string& digest) {
  auto it = index_.find(digest);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &*it->second;
}

llama_adapter_lora* AdapterCache::find(const std::string& digest) {
  Entry* e = touch(digest);
  return e ? e->adapter.get() : nullptr;
}

const std::vector<float>* AdapterCache::find_vector(const std::string& digest) {
  Entry* e = touch(digest);
  return e && !e->adapter ? &e->vector : nullptr;
}

void AdapterCache::insert(const std::string& digest, AdapterPtr adapter, std::uint64_t bytes,
                          const std::vector<std::string>& keep) {
  keep_within_budget(Entry{digest, std::move(adapter), {}, bytes}, keep);
}

void AdapterCache::insert_vector(const std::string& digest, std::vector<float> directions,
                                 std::uint64_t bytes, const std::vector<std::string>& keep) {
  keep_within_budget(Entry{digest, nullptr, std::move(directions), bytes}, keep);
}

void AdapterCache::keep_within_budget(Entry entry, const std::vector<std::string>& keep) {
  ++loads_;
  if (auto it = index_.find(entry.digest); it != index_.end()) {  // not expected: find() first
    bytes_ -= it->second->bytes;
    order_.erase(it->second);
    index_.erase(it);
  }
  bytes_ += entry.bytes;
  order_.push_front(std::move(entry));
  index_[order_.front().digest] = order_.begin();
  for (auto it = order_.end(); bytes_ > budget_ && it != order_.begin();) {
    --it;
    if (std::find(keep.begin(), keep.end(), it->digest) != keep.end()) continue;
    bytes_ -= it->bytes;
    index_.erase(it->digest);
    it = order_.erase(it);
  }
}

AdapterStats AdapterCache::stats() const {
  return {static_cast<std::uint32_t>(order_.size()), bytes_, budget_, loads_};
}

}  // namespace memos::llama_exec
