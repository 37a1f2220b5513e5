#include "plugins/llama-executor/prompt_cache.h"

#include <algorithm>

namespace memos::llama_exec {

std::uint32_t common_prefix(const std::vector<std::int32_t>& a,
                            const std::vector<std::int32_t>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<std::uint32_t>(i);
}

PromptCache::Match PromptCache::longest(std::string_view scope, const Tokens& prompt) {
  Match best;
  if (scope.empty()) return best;
  Iter found = entries_.end();
  for (Iter it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->scope != scope) continue;
    const std::uint32_t shared = common_prefix(it->tokens, prompt);
    if (shared > best.shared) {  // strictly: the more recent wins a tie
      best.shared = shared;
      found = it;
    }
  }
  if (found == entries_.end()) return best;
  entries_.splice(entries_.begin(), entries_, found);
  best.tokens = found->tokens;
  best.state = found->state;
  return best;
}

PromptCache::Iter PromptCache::find(std::string_view scope, const Tokens& prompt) {
  return std::find_if(entries_.begin(), entries_.end(),
                      [&](const Entry& e) { return e.scope == scope && e.tokens == prompt; });
}

bool PromptCache::holds(std::string_view scope, const Tokens& prompt) {
  Iter it = find(scope, prompt);
  if (it == entries_.end()) return false;
  entries_.splice(entries_.begin(), entries_, it);
  return true;
}

void PromptCache::insert(std::string scope, Tokens prompt, Bytes state) {
  if (scope.empty() || !state || state->size() > budget_) return;
  if (Iter old = find(scope, prompt); old != entries_.end()) {
    bytes_ -= old->state->size();
    entries_.erase(old);
  }
  while (!entries_.empty() && bytes_ + state->size() > budget_) {
    bytes_ -= entries_.back().state->size();
    entries_.pop_back();
  }
  bytes_ += state->size();
  entries_.push_front({std::move(scope), std::move(prompt), std::move(state)});
}

}  // namespace memos::llama_exec
