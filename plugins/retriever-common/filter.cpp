#include "plugins/retriever-common/filter.h"

#include <algorithm>
#include <chrono>

namespace memos::retrieval {
namespace {

std::int64_t clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.emplace_back(t.cStr(), t.size());
  return out;
}

std::vector<std::pair<std::string, std::string>> settings(
    capnp::List<plugin_wire::Setting>::Reader list) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(list.size());
  for (auto s : list) out.emplace_back(s.getKey(), s.getValue());
  return out;
}

bool contains(const std::vector<std::string>& sorted, const std::string& value) {
  return std::binary_search(sorted.begin(), sorted.end(), value);
}

}  // namespace

Attributes attributes_of(plugin_wire::Document::Reader d) {
  Attributes a;
  a.tags = texts(d.getTags());
  std::sort(a.tags.begin(), a.tags.end());
  a.tags.erase(std::unique(a.tags.begin(), a.tags.end()), a.tags.end());
  a.meta = settings(d.getMeta());
  if (d.hasTier() && d.getTier().size() != 0) a.tier = d.getTier();
  if (d.hasState() && d.getState().size() != 0) {
    a.state = d.getState();
  } else if (d.getArchived()) {
    a.state = "archived";
  }
  a.valid_from_ms = d.getValidFromMs();
  a.valid_to_ms = d.getValidToMs();
  a.recorded_at_ms = d.getRecordedAtMs();
  a.expires_at_ms = d.getExpiresAtMs();
  a.importance = d.getImportance();
  return a;
}

FilterSpec decode_filter(plugin_wire::Filter::Reader f) {
  FilterSpec s;
  s.all_tags = texts(f.getAllTags());
  s.any_tags = texts(f.getAnyTags());
  s.meta = settings(f.getMeta());
  s.tiers = texts(f.getTiers());
  s.states = texts(f.getStates());
  if (s.states.empty()) s.states.push_back("active");
  if (f.getIncludeArchived() &&
      std::find(s.states.begin(), s.states.end(), "archived") == s.states.end()) {
    s.states.push_back("archived");
  }
  s.now_ms = f.getNowMs() != 0 ? f.getNowMs() : clock_ms();
  s.as_of_ms = f.getAsOfMs() != 0 ? f.getAsOfMs() : s.now_ms;
  s.recorded_from_ms = f.getRecordedFromMs();
  s.recorded_to_ms = f.getRecordedToMs();
  s.valid_from_ms = f.getValidFromMs();
  s.valid_to_ms = f.getValidToMs();
  return s;
}

bool FilterSpec::only_default_conditions(std::int64_t max_valid_from) const {
  bool plaintext_ok =
      tiers.empty() || std::find(tiers.begin(), tiers.end(), "plaintext") != tiers.end();
  bool active_ok = std::find(states.begin(), states.end(), "active") != states.end();
  return all_tags.empty() && any_tags.empty() && meta.empty() && plaintext_ok && active_ok &&
         as_of_ms >= max_valid_from && recorded_from_ms == 0 && recorded_to_ms == 0 &&
         valid_from_ms == 0 && valid_to_ms == 0;
}

bool admits(const Attributes& a, const FilterSpec& f) {
  if (std::find(f.states.begin(), f.states.end(), a.state) == f.states.end()) return false;
  if (!f.tiers.empty() && std::find(f.tiers.begin(), f.tiers.end(), a.tier) == f.tiers.end())
    return false;
  if (a.expires_at_ms != 0 && a.expires_at_ms <= f.now_ms) return false;
  if (f.as_of_ms < a.valid_from_ms) return false;
  if (a.valid_to_ms != 0 && f.as_of_ms >= a.valid_to_ms) return false;
  if (f.recorded_from_ms != 0 && a.recorded_at_ms < f.recorded_from_ms) return false;
  if (f.recorded_to_ms != 0 && a.recorded_at_ms >= f.recorded_to_ms) return false;
  // Validity [from, to) overlaps the asked range [valid_from, valid_to).
  if (f.valid_to_ms != 0 && a.valid_from_ms >= f.valid_to_ms) return false;
  if (f.valid_from_ms != 0 && a.valid_to_ms != 0 && a.valid_to_ms <= f.valid_from_ms) return false;
  for (const auto& t : f.all_tags)
    if (!contains(a.tags, t)) return false;
  if (!f.any_tags.empty() &&
      std::none_of(f.any_tags.begin(), f.any_tags.end(),
                   [&](const std::string& t) { return contains(a.tags, t); })) {
    return false;
  }
  // Not a structured binding: clang before 16 cannot capture one (the fuzz build).
  for (const auto& wanted : f.meta) {
    auto it = std::find_if(a.meta.begin(), a.meta.end(),
                           [&](const auto& m) { return m.first == wanted.first; });
    if (it == a.meta.end() || it->second != wanted.second) return false;
  }
  return true;
}

bool is_restricted(const Attributes& a) {
  return a.state != "active" || a.tier != "plaintext" || a.valid_to_ms != 0 || a.expires_at_ms != 0;
}

}  // namespace memos::retrieval
