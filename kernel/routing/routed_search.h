// routed_search.h — a search through the query-time memory modules at the
// tiers of a Route (memos(7), "Routing"; the BudgetMem pipeline):
//
//   retrieve  low: lexical (BM25)   mid: hybrid   high: hybrid over a wider
//             candidate set, with pseudo-relevance feedback and MMR
//   temporal  low: none   mid: the query's time words read into a
//             valid-time window whose candidates rank higher
//   expand    low: none   mid: the neighbouring turns (same session) of
//             the best hits join the context
//   compress  low: the context whole   mid: sentences chosen to fit a
//             token budget
//
// Each tier keeps its module's contract: the hits are the k best (fewer
// only when fewer qualify), the context holds the hits' memories (whole or
// in part) and their neighbours, never a memory the search's cubes and
// filter would not give. Every module's wall time is measured. The high
// tiers of temporal, expand and compress read with the executor
// (model_tiers.h); without one the caller does not ask for them
// (handlers/route_args.h).
//
// Errors: those of run_search (search.h); the other modules add none (an
// unreadable neighbour is left out).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernel/config.h"
#include "kernel/routing/context.h"
#include "kernel/routing/model_reader.h"
#include "kernel/search.h"
#include "kernel/status.h"
#include "memos/vocabulary.h"

namespace memos::kernel::routing {

struct RoutedQuery {
  SearchQuery search;  // cubes, text, k, filter and defaults; the retrieve tier sets the mode
  Route route;
  std::int64_t reference_ms = 0;     // when the question is asked; 0: search.filter.now_ms
  std::uint32_t context_tokens = 0;  // compress mid's budget; 0: routing.context_tokens
  // A bound on the context whatever the tiers (what is left of the tenant's
  // day, policy [router] tokens_per_day): a context over it is cut as
  // compress mid would; 0: none.
  std::uint32_t max_context_tokens = 0;
  // What the High tiers of temporal, expand and compress read with (the
  // executor); null: none, and those tiers are not asked for.
  ModelReader* model = nullptr;
};

struct ModuleRun {
  Module module = Module::retrieve;
  CostTier tier = CostTier::low;
  double ms = 0;       // wall time of the module
  std::string detail;  // what it did ("window 2023-05-01..2023-06-01 from 'last May'")
};

struct RoutedResult {
  std::vector<SearchHit> hits;
  std::vector<ContextPiece> context;
  std::uint32_t context_tokens = 0;  // of the context, estimate_tokens's
  std::vector<ModuleRun> modules;    // in pipeline order
};

// The tiers this memosd runs `module` at, cheapest first: retrieve all
// three; temporal, expand and compress low and mid, and high `with_model`
// (they read with the executor: model_tiers.h).
std::vector<CostTier> runnable_tiers(Module module, bool with_model);
// `route` with each module at its tier or the best below it that runs.
Route runnable(Route route, bool with_model);

// The mode the retrieve tier searches in: lexical at low, hybrid above (a
// tenant's policy may allow only some modes).
SearchMode retrieve_mode(CostTier retrieve);
inline SearchMode routed_mode(const Route& route) {
  return retrieve_mode(route[Module::retrieve]);
}

Status run_routed_search(const IndexSet& indexes, const store::ReadTxn& txn,
                         const RoutingConfig& config, const RoutedQuery& query, RoutedResult* out);

}  // namespace memos::kernel::routing
