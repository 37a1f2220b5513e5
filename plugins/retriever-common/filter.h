// filter.h — what a retriever plugin keeps of each document to filter on,
// and the one definition of which documents a plugin_wire::Filter admits.
//
// Every retriever shipped with memosd evaluates filters with admits(), so
// dense, lexical and hybrid search return exactly the same set of eligible
// items (the tests compare each against a brute-force scan).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ipc/schema/plugin.capnp.h"

namespace memos::retrieval {

// The attributes of one indexed document.
struct Attributes {
  std::vector<std::string> tags;  // sorted, unique
  std::vector<std::pair<std::string, std::string>> meta;
  std::string tier = "plaintext";
  std::string state = "active";
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_to_ms = 0;  // 0: open
  std::int64_t recorded_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // 0: never
  float importance = 0;
};

Attributes attributes_of(plugin_wire::Document::Reader document);

// A decoded Filter, evaluated for many documents.
struct FilterSpec {
  std::vector<std::string> all_tags;
  std::vector<std::string> any_tags;
  std::vector<std::pair<std::string, std::string>> meta;
  std::vector<std::string> tiers;   // empty: any
  std::vector<std::string> states;  // never empty after decoding
  std::int64_t as_of_ms = 0;
  std::int64_t now_ms = 0;
  std::int64_t recorded_from_ms = 0;  // 0: no bound
  std::int64_t recorded_to_ms = 0;
  std::int64_t valid_from_ms = 0;  // 0: no bound
  std::int64_t valid_to_ms = 0;

  // Whether the filter can exclude a document that is active, plaintext,
  // untagged-irrelevant, valid from at most `max_valid_from` with an open
  // validity and no expiry: if not, and every document is such, a search
  // may skip filtering altogether.
  bool only_default_conditions(std::int64_t max_valid_from) const;
};

// as_of and now default to the current time when the request leaves them 0.
FilterSpec decode_filter(plugin_wire::Filter::Reader filter);

bool admits(const Attributes& a, const FilterSpec& f);

// Whether a document could be excluded by some filter that only_default_
// conditions() accepts: archived, frozen, non-plaintext, closed validity or
// expiry. Retrievers count these to keep unfiltered searches fast.
bool is_restricted(const Attributes& a);

}  // namespace memos::retrieval
