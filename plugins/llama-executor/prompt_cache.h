// prompt_cache.h — the KV states of recent prompts, kept in the executor's
// memory within a byte budget, so that a call whose prompt shares a prefix
// with one of them restores it and decodes only the rest (llama-server's
// --cache-ram). A question asked again decodes its last token only; one
// that shares a cube's working set starts after the set.
//
// Why states in memory and not prompts kept in the context: a context of
// several sequences makes every decode slower on a CPU (one shared KV
// stream: attention runs over all kept cells, masked; one stream per
// sequence: llama.cpp's multi-stream graphs; both measured 20-30 % slower
// on the bench's model), while a restore is one copy of the cells.
//
// Scoped: a state is reused only by a call of the same scope (memosd sends
// the tenant). The executor is shared, and across tenants a hit's speed
// would tell one tenant what another sent.
//
// Not thread-safe: the engine calls it under its own mutex.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace memos::llama_exec {

// How many leading tokens `a` and `b` have in common.
std::uint32_t common_prefix(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b);

class PromptCache {
 public:
  using Tokens = std::vector<std::int32_t>;
  using Bytes = std::shared_ptr<const std::string>;  // llama_state_seq_get_data()

  explicit PromptCache(std::uint64_t budget_bytes) : budget_(budget_bytes) {}

  bool enabled() const { return budget_ > 0; }
  // Whether a state of `bytes` could be kept at all (not over the budget).
  bool fits(std::uint64_t bytes) const { return bytes <= budget_; }

  struct Match {
    Tokens tokens;             // the kept prompt's (empty: no match)
    Bytes state;               // its state
    std::uint32_t shared = 0;  // leading tokens it has in common with the prompt
  };
  // The kept prompt of `scope` sharing the longest prefix with `prompt`,
  // which becomes the most recently used (the more recent wins a tie). An
  // empty scope matches none.
  Match longest(std::string_view scope, const Tokens& prompt);

  // Whether `scope` already keeps exactly `prompt` (then it is touched).
  bool holds(std::string_view scope, const Tokens& prompt);

  // Keeps the state of `prompt` for `scope`, dropping the least recently
  // used ones to stay within the budget; a state larger than the whole
  // budget is not kept. Replaces one of the same scope and prompt.
  void insert(std::string scope, Tokens prompt, Bytes state);

  std::uint32_t size() const { return static_cast<std::uint32_t>(entries_.size()); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::string scope;
    Tokens tokens;
    Bytes state;
  };
  using Iter = std::list<Entry>::iterator;
  Iter find(std::string_view scope, const Tokens& prompt);

  std::uint64_t budget_;
  std::uint64_t bytes_ = 0;
  std::list<Entry> entries_;  // front: most recently used
};

}  // namespace memos::llama_exec
