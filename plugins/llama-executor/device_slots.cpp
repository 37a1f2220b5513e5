#include "plugins/llama-executor/device_slots.h"

#include <algorithm>

namespace memos::llama_exec {

DeviceSlots::DeviceSlots(std::uint32_t sequences, std::uint64_t cells)
    : sequences_(sequences), cells_(cells) {
  // Handed out lowest first.
  for (std::uint32_t s = sequences; s >= 1; --s) free_.push_back(static_cast<std::int32_t>(s));
}

const SlotState* DeviceSlots::find(const std::string& digest, double utility) {
  auto it = std::find_if(order_.begin(), order_.end(),
                         [&](const SlotState& s) { return s.digest == digest; });
  if (it == order_.end()) return nullptr;
  ++hits_;
  it->utility = utility;
  order_.splice(order_.begin(), order_, it);
  return &order_.front();
}

std::int32_t DeviceSlots::place(SlotState state, std::vector<std::int32_t>* evicted) {
  if (!enabled() || state.tokens.size() > cells_) return 0;
  erase(state.digest);
  // The eviction order: the least useful first, the least recent among
  // equals (order_ runs from the most recent). Which would go, before any
  // goes: when room needs a state worth more, the newcomer stays out.
  std::vector<std::list<SlotState>::iterator> by_worth;
  for (auto it = order_.end(); it != order_.begin();) by_worth.push_back(--it);
  std::stable_sort(by_worth.begin(), by_worth.end(),
                   [](const auto& a, const auto& b) { return a->utility < b->utility; });
  std::size_t victims = 0;
  std::uint64_t freed = 0;
  for (std::size_t free_sequences = free_.size();
       free_sequences == 0 || held_cells_ - freed + state.tokens.size() > cells_;
       ++victims, ++free_sequences) {
    if (by_worth[victims]->utility > state.utility) return 0;
    freed += by_worth[victims]->tokens.size();
  }
  for (std::size_t i = 0; i < victims; ++i) {
    evicted->push_back(by_worth[i]->sequence);
    free_.push_back(by_worth[i]->sequence);
    held_cells_ -= by_worth[i]->tokens.size();
    order_.erase(by_worth[i]);
    ++evictions_;
  }
  state.sequence = free_.back();
  free_.pop_back();
  held_cells_ += state.tokens.size();
  ++loads_;
  order_.push_front(std::move(state));
  return order_.front().sequence;
}

void DeviceSlots::erase(const std::string& digest) {
  auto it = std::find_if(order_.begin(), order_.end(),
                         [&](const SlotState& s) { return s.digest == digest; });
  if (it == order_.end()) return;
  free_.push_back(it->sequence);
  held_cells_ -= it->tokens.size();
  order_.erase(it);
}

std::vector<std::int32_t> DeviceSlots::clear() {
  std::vector<std::int32_t> held;
  for (const SlotState& s : order_) {
    held.push_back(s.sequence);
    free_.push_back(s.sequence);
  }
  order_.clear();
  held_cells_ = 0;
  return held;
}

SlotStats DeviceSlots::stats() const {
  SlotStats s;
  s.sequences = sequences_;
  s.held = static_cast<std::uint32_t>(order_.size());
  s.cells = cells_;
  s.cells_held = held_cells_;
  s.hits = hits_;
  s.loads = loads_;
  s.evictions = evictions_;
  return s;
}

}  // namespace memos::llama_exec
