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

// {"hits", "context", "context_tokens", "modules", "router" (when chosen or
// explained)}.
Json routed_json(const memos::RoutedSearch& routed, bool explain);
// Each module's run: a JSON array of {module, tier, ms, detail}, and one
// line "retrieve=mid 0.41 ms (hybrid, 10 hits), ..." (chat's figures).
Json modules_json(const std::vector<memos::ModuleRun>& modules);
std::string modules_line(const std::vector<memos::ModuleRun>& modules);

// How the tiers were chosen: {"source", "reason", "route", "ms", "features",
// "vector" (explained), "scores"}; one line "router-policy chose ROUTE in
// 0.31 ms (why)"; that line, then with `explain` the routes it weighed and
// the features it read.
Json router_json(const memos::RouterChoice& router);
std::string router_line(const memos::RouterChoice& router);
void print_router(const memos::RouterChoice& router, bool explain);

// The hits, then the context a piece a line with its tokens, then with
// `explain` each module's tier, time and what it did; the router's choice
// (print_router) when there is one.
void print_routed(const memos::RoutedSearch& routed, bool show_cube, bool explain);

}  // namespace memos::shell
