// memos/adapter_set.h — the canonical text of an adapter set: which LoRA
// adapters, at which scales, a generation runs with.
//
// A KV state depends on every weight that made it, so memosd's activation
// key, an executor's state header and its cache of recent prompts all
// carry this text: a state made under one set is never restored under
// another, or under none (""). memosd and the executor compute it apart
// (memosd before the call, to find stored states; the executor for what
// it writes and checks), so its one spelling lives here.
//
// Form: "<kind> <sha256 hex>*<scale>" per adapter (kind "lora" or "cvec",
// a control vector), sorted, joined by "; ";
// the scale is the shortest text that reads back as the same float, so two
// sets are equal exactly when their adapters and scales are. The executor
// applies adapters in this order too, so equal sets compute alike.
//
// Header-only; no errors (the caller checks digests and scales first).
#pragma once

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>
#include <vector>

namespace memos::adapters {

// One adapter of a set: its SHA-256 (64 lowercase hex digits) and scale.
struct Member {
  std::string digest_hex;
  float scale = 1;
  std::string kind = "lora";  // or "cvec"
};

inline std::string member_text(const Member& m) {
  char scale[32];
  auto r = std::to_chars(scale, scale + sizeof scale, m.scale);
  return m.kind + " " + m.digest_hex + "*" + std::string(scale, r.ptr);
}

// Sorts `members` into the canonical order (by their text) and returns the
// set's text; "" for none.
inline std::string canonical_set(std::vector<Member>& members) {
  std::vector<std::pair<std::string, Member>> keyed;
  keyed.reserve(members.size());
  for (auto& m : members) keyed.emplace_back(member_text(m), std::move(m));
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string text;
  members.clear();
  for (auto& [t, m] : keyed) {
    if (!text.empty()) text += "; ";
    text += t;
    members.push_back(std::move(m));
  }
  return text;
}

}  // namespace memos::adapters
