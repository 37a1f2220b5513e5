#include "kernel/routing/routed_search.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>
#include <set>

#include "kernel/routing/model_tiers.h"
#include "kernel/routing/time_window.h"
#include "kernel/store_vocabulary.h"

namespace memos::kernel::routing {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// "2023-05-08", or "open" for a bound left open.
std::string day(std::int64_t ms) {
  if (ms == std::numeric_limits<std::int64_t>::min() ||
      ms == std::numeric_limits<std::int64_t>::max())
    return "open";
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  char text[32];
  if (!gmtime_r(&seconds, &tm) || std::strftime(text, sizeof text, "%Y-%m-%d", &tm) == 0)
    return "?";
  return text;
}

// Sets the search's mode and retrieve-High machinery for `tier`.
void set_retrieve(CostTier tier, const RoutingConfig& config, SearchQuery* q) {
  if (tier != CostTier::high) return;
  q->depth = std::max(q->depth, config.high_depth);
  q->feedback = {config.feedback_documents, config.feedback_terms, 1, config.feedback_weight};
  if (config.high_mmr_lambda > 0 && config.high_mmr_lambda < 1)
    q->fusion.mmr_lambda = config.high_mmr_lambda;
}

bool admitted(const store::Item& item, const store::Item& hit, const RetrievalFilter& filter) {
  if (item.tier != store::Tier::plaintext || item.provenance.session.empty() ||
      item.provenance.session != hit.provenance.session)
    return false;
  const auto& states = filter.states;
  const State state = to_vocabulary(item.state);
  return states.empty() ? state == State::active
                        : std::find(states.begin(), states.end(), state) != states.end();
}

// Of the turns each side offers (nearest first), those the model keeps;
// without a model, or when it fails, the nearest `radius` of each side.
void choose_neighbours(ModelReader* model, std::string_view query, std::size_t radius,
                       std::vector<ContextPiece>* before, std::vector<ContextPiece>* after,
                       std::string* note) {
  auto nearest = [radius](std::vector<ContextPiece>* side) {
    if (side->size() > radius) side->resize(radius);
  };
  if (!model) {
    nearest(before);
    nearest(after);
    return;
  }
  std::vector<std::string_view> turns;
  for (const auto* side : {before, after})
    for (const auto& p : *side) turns.push_back(p.text);
  std::optional<std::vector<bool>> keep = model_select(*model, query, turns, note);
  if (!keep) {
    nearest(before);
    nearest(after);
    return;
  }
  std::size_t i = 0;
  for (auto* side : {before, after}) {
    std::vector<ContextPiece> kept;
    for (auto& p : *side)
      if ((*keep)[i++]) kept.push_back(std::move(p));
    *side = std::move(kept);
  }
}

// Expand mid: each of the best `config.expand_hits` hits followed by its
// nearest turns of the same session (earlier ones before it, later after,
// in id order, which is the order they were added in).
//
// Expand High (a `model`): each side offers twice the radius, and the turns
// kept are those the model says help answer `query`; when the model fails
// or does not answer yes or no, that hit keeps the Mid choice and `note`
// says why.
void expand_context(const store::ReadTxn& txn, const RoutingConfig& config,
                    const RetrievalFilter& filter, const std::vector<SearchHit>& hits,
                    ModelReader* model, std::string_view query, std::vector<ContextPiece>* context,
                    std::size_t* added, std::string* note) {
  std::set<std::pair<store::CubeId, store::ItemId>> present;
  for (const auto& p : *context) present.emplace(p.cube, p.id);
  std::vector<ContextPiece> out;
  // Other sessions' turns may sit between two of one session's: look a
  // little further than the radius.
  const std::size_t look = std::size_t{config.expand_radius} * 4;
  for (std::size_t i = 0; i < context->size(); ++i) {
    ContextPiece& hit_piece = (*context)[i];
    if (i >= config.expand_hits || i >= hits.size()) {
      out.push_back(std::move(hit_piece));
      continue;
    }
    store::Item hit;
    std::vector<store::Item> earlier, later;
    if (!txn.get_item(hit_piece.cube, hit_piece.id, 0, &hit).ok() ||
        !txn.neighbours(hit_piece.cube, hit_piece.id, look, look, &earlier, &later).ok()) {
      out.push_back(std::move(hit_piece));
      continue;
    }
    const std::size_t offered = model ? 2 * config.expand_radius : config.expand_radius;
    auto pick = [&](const std::vector<store::Item>& side) {
      std::vector<ContextPiece> picked;
      for (const auto& item : side) {
        if (picked.size() == offered) break;
        if (!admitted(item, hit, filter) || present.contains({hit_piece.cube, item.id})) continue;
        picked.push_back({hit_piece.cube, item.id, item.text, estimate_tokens(item.text), hit.id});
      }
      return picked;
    };
    std::vector<ContextPiece> before = pick(earlier), after = pick(later);
    choose_neighbours(model, query, config.expand_radius, &before, &after, note);
    for (const auto* side : {&before, &after})
      for (const auto& p : *side) present.emplace(p.cube, p.id);
    *added += before.size() + after.size();
    std::reverse(before.begin(), before.end());  // nearest first -> in order
    for (auto& p : before) out.push_back(std::move(p));
    out.push_back(std::move(hit_piece));
    for (auto& p : after) out.push_back(std::move(p));
  }
  *context = std::move(out);
}

}  // namespace

std::vector<CostTier> runnable_tiers(Module module, bool with_model) {
  if (module == Module::retrieve || with_model)
    return {CostTier::low, CostTier::mid, CostTier::high};
  return {CostTier::low, CostTier::mid};
}

Route runnable(Route route, bool with_model) {
  for (std::size_t i = 0; i < kModules; ++i) {
    const Module m = static_cast<Module>(i);
    route[m] = std::min(route[m], runnable_tiers(m, with_model).back());
  }
  return route;
}

SearchMode retrieve_mode(CostTier retrieve) {
  return retrieve == CostTier::low ? SearchMode::lexical : SearchMode::hybrid;
}

Status run_routed_search(const IndexSet& indexes, const store::ReadTxn& txn,
                         const RoutingConfig& config, const RoutedQuery& query, RoutedResult* out) {
  *out = {};
  SearchQuery q = query.search;
  const Route& route = query.route;

  auto start = Clock::now();
  ModuleRun temporal{Module::temporal, route[Module::temporal], 0, "none"};
  if (route[Module::temporal] != CostTier::low) {
    const std::int64_t reference = query.reference_ms != 0 ? query.reference_ms : q.filter.now_ms;
    // High: the model reads the window; an answer that does not read falls
    // back to the rules (Mid), and the detail says what the model said.
    bool model_read = false;
    std::string fallback;
    if (route[Module::temporal] == CostTier::high && query.model) {
      TimeWindow window;
      std::string why;
      switch (model_time_window(*query.model, q.text, reference, &window, &why)) {
        case WindowAnswer::window:
          q.window = SearchQuery::Window{window.from_ms, window.to_ms, config.window_weight};
          temporal.detail = "model: window " + day(window.from_ms) + ".." + day(window.to_ms);
          model_read = true;
          break;
        case WindowAnswer::none:
          temporal.detail = "model: no time";
          model_read = true;
          break;
        case WindowAnswer::unreadable:
          fallback = why + "; rules: ";
          break;
      }
    }
    if (model_read) {
      // The model answered.
    } else if (auto window = read_time_window(q.text, reference)) {
      q.window = SearchQuery::Window{window->from_ms, window->to_ms, config.window_weight};
      temporal.detail = fallback + "window " + day(window->from_ms) + ".." + day(window->to_ms) +
                        " from '" + window->matched + "'";
    } else {
      temporal.detail = fallback + "no time words";
    }
  }
  temporal.ms = ms_since(start);

  start = Clock::now();
  q.mode = routed_mode(route);
  set_retrieve(route[Module::retrieve], config, &q);
  SearchNotes notes;
  if (Status s = run_search(indexes, txn, q, &out->hits, &notes); !s.ok()) return s;
  ModuleRun retrieve{
      Module::retrieve, route[Module::retrieve], ms_since(start),
      std::string(to_string(q.mode)) + ", " + std::to_string(out->hits.size()) + " hits"};
  if (!notes.feedback_terms.empty()) {
    retrieve.detail += ", feedback:";
    for (const auto& t : notes.feedback_terms) retrieve.detail += " " + t;
  }
  if (q.window) temporal.detail += ", " + std::to_string(notes.in_window) + " candidates in it";

  start = Clock::now();
  for (const auto& hit : out->hits) {
    store::Item item;
    if (!txn.get_item(hit.cube, hit.id, 0, &item).ok()) continue;  // changed since it was indexed
    out->context.push_back({hit.cube, hit.id, item.text, estimate_tokens(item.text), 0});
  }
  ModuleRun expand{Module::expand, route[Module::expand], 0, "none"};
  if (route[Module::expand] != CostTier::low) {
    std::size_t added = 0;
    std::string model_note;
    ModelReader* model = route[Module::expand] == CostTier::high ? query.model : nullptr;
    expand_context(txn, config, q.filter, out->hits, model, q.text, &out->context, &added,
                   &model_note);
    expand.detail =
        std::to_string(added) + " neighbouring turns" +
        (model ? (model_note.empty() ? ", chosen by the model" : " (mid: " + model_note + ")")
               : "");
  }
  expand.ms = ms_since(start);

  start = Clock::now();
  ModuleRun compress{Module::compress, route[Module::compress], 0, "whole"};
  if (route[Module::compress] != CostTier::low) {
    const std::uint32_t budget =
        query.context_tokens != 0 ? query.context_tokens : config.context_tokens;
    compress.detail = "budget " + std::to_string(budget) + " tokens";
    if (route[Module::compress] == CostTier::high && query.model) {
      std::string model_note;
      const std::size_t rewritten =
          model_compress(*query.model, q.text, budget, &out->context, &model_note);
      compress.detail += ", " + std::to_string(rewritten) + " rewritten by the model" +
                         (model_note.empty() ? "" : " (" + model_note + ")");
    } else {
      compress_extractive(q.text, budget, &out->context);
    }
  }
  auto total = [&] {
    std::uint32_t sum = 0;
    for (const auto& p : out->context) sum += p.tokens;
    return sum;
  };
  out->context_tokens = total();
  if (query.max_context_tokens != 0 && out->context_tokens > query.max_context_tokens) {
    compress_extractive(q.text, query.max_context_tokens, &out->context);
    out->context_tokens = total();
    compress.detail +=
        ", cut to the day's remaining " + std::to_string(query.max_context_tokens) + " tokens";
  }
  compress.ms = ms_since(start);
  out->modules = {std::move(retrieve), std::move(temporal), std::move(expand), std::move(compress)};
  return {};
}

}  // namespace memos::kernel::routing
