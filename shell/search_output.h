// search_output.h — how memctl prints search results: the hits (plain and
// routed searches) and a routed search's context and module costs
// (memctl(1), search; memos(7), "Routing").
#pragma once

#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/json_output.h"

namespace memos::shell {

// The hits as a JSON array; each with its retrievers' ranks when `explain`.
Json hits_json(const std::vector<memos::Hit>& hits, bool explain);
// A hit a line (score, cube when several, id, text, tags), then with
// `explain` how each retriever ranked it.
void print_hits(const std::vector<memos::Hit>& hits, bool show_cube, bool explain);

// {"hits", "context", "context_tokens", "modules"}.
Json routed_json(const memos::RoutedSearch& routed, bool explain);
// Each module's run: a JSON array of {module, tier, ms, detail}, and one
// line "retrieve=mid 0.41 ms (hybrid, 10 hits), ..." (chat's figures).
Json modules_json(const std::vector<memos::ModuleRun>& modules);
std::string modules_line(const std::vector<memos::ModuleRun>& modules);

// The hits, then the context a piece a line with its tokens, then with
// `explain` each module's tier, time and what it did.
void print_routed(const memos::RoutedSearch& routed, bool show_cube, bool explain);

}  // namespace memos::shell
