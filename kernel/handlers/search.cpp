// The search request: its conditions read and checked on the loop, the
// search (kernel/search.h) and the hits' items read on a worker.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ipc/wire_vocabulary.h"
#include "kernel/access_log.h"
#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/handlers/route_args.h"
#include "kernel/index_set.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"
#include "kernel/routing/routed_search.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/search.h"

namespace memos::kernel {
namespace {

constexpr std::uint32_t kDefaultK = 10;
constexpr std::size_t kMaxCubes = 64;

struct SearchRequest {
  SearchQuery query;               // cubes filled in on the worker
  std::optional<SearchMode> mode;  // empty: the first cube's default
  std::vector<std::string> cube_names;
  bool explain = false;
  std::optional<float> min_score;  // relevance() below it is dropped
  RouteArgs route;                 // with a budget or route: the modules' tiers (kernel/routing)
};

// A budget or route, and the options only a routed search takes.
// Errors: read_route_args's; bad_request with mode or minScore, or a route
// naming answer.
Status read_route(wire::Search::Reader args, SearchRequest* out) {
  Status st = read_route_args(exact_view(args.getBudget()), exact_view(args.getRoute()),
                              args.getReferenceMs(), args.getContextTokens(), args.getLambda(),
                              &out->route);
  if (!st.ok() || !out->route.routed()) return st;
  if (out->route.answer_named)
    return Status::bad_request("the route names answer, a chat's module: a search answers nothing");
  if (args.getHasMinScore() || !exact_view(args.getMode()).empty())
    return Status::bad_request(
        "mode and minScore do not combine with a budget or route (its retrieve tier chooses "
        "the mode)");
  return {};
}

Status read_cube_names(wire::Search::Reader args, std::vector<std::string>* names) {
  // The limit comes before any work in proportion to the list (this runs on
  // the loop thread, which every client waits on).
  if (args.getCubes().size() + 1 > kMaxCubes)
    return Status::bad_request("at most 64 cubes in one search");
  names->push_back(exact(args.getCube()));
  for (auto c : args.getCubes()) {
    std::string name = c;
    if (std::find(names->begin(), names->end(), name) == names->end())
      names->push_back(std::move(name));
  }
  for (const auto& name : *names) {
    if (Status st = check_cube_text(name); !st.ok()) return st;
  }
  return {};
}

// Tiers and states the filter admits; by default active items only, plus
// archived ones when asked.
Status read_tiers_and_states(wire::Search::Reader args, RetrievalFilter* f) {
  for (auto t : args.getTiers()) {
    std::optional<Tier> tier = ipc::from_wire(t);
    if (!tier) return Status::bad_request("unknown tier in the filter");
    f->tiers.push_back(*tier);
  }
  for (auto st : args.getStates()) {
    std::optional<State> state = ipc::from_wire(st);
    if (!state) return Status::bad_request("unknown state in the filter");
    if (*state == State::deleted)
      return Status::bad_request("deleted items are never searched (see history)");
    f->states.push_back(*state);
  }
  if (f->states.empty()) f->states.push_back(State::active);
  if (args.getIncludeArchived() &&
      std::find(f->states.begin(), f->states.end(), State::archived) == f->states.end()) {
    f->states.push_back(State::archived);
  }
  return {};
}

Status read_times(wire::Search::Reader args, RetrievalFilter* f) {
  f->as_of_ms = args.getAsOfMs();
  f->recorded_from_ms = args.getRecordedSinceMs();
  f->recorded_to_ms = args.getRecordedUntilMs();
  f->valid_from_ms = args.getValidSinceMs();
  f->valid_to_ms = args.getValidUntilMs();
  for (std::int64_t t :
       {f->as_of_ms, f->recorded_from_ms, f->recorded_to_ms, f->valid_from_ms, f->valid_to_ms}) {
    if (t < 0) return Status::bad_request("times must not be negative");
  }
  if (f->recorded_to_ms != 0 && f->recorded_from_ms >= f->recorded_to_ms) {
    return Status::bad_request("the recorded time range is empty (since must come before until)");
  }
  if (f->valid_to_ms != 0 && f->valid_from_ms >= f->valid_to_ms)
    return Status::bad_request("the valid time range is empty (since must come before until)");
  return {};
}

// Reads a Search request's conditions. Errors: bad_request, too_large.
Status read_search(wire::Search::Reader args, const Config& config, SearchRequest* out) {
  SearchQuery& q = out->query;
  q.k = args.getK() == 0 ? kDefaultK : args.getK();
  if (q.k > config.search.max_k) {
    return Status::too_large("k is larger than max_k (" + std::to_string(config.search.max_k) +
                             ")");
  }
  if (Status st = read_cube_names(args, &out->cube_names); !st.ok()) return st;
  q.text = exact(args.getQuery());
  if (std::string_view mode = exact_view(args.getMode()); !mode.empty()) {
    out->mode = parse_search_mode(mode);
    if (!out->mode) {
      return Status::bad_request("mode '" + std::string(mode.substr(0, 32)) + "' is unknown (" +
                                 search_mode_names() + ")");
    }
  }
  auto& f = q.filter;
  f.all_tags = copy_texts(args.getTags());
  f.any_tags = copy_texts(args.getAnyTags());
  f.meta = copy_meta(args.getMeta());
  Status st = check_text(q.text, config.store);
  if (st.ok()) st = check_tags(f.all_tags, config.store);
  if (st.ok()) st = check_tags(f.any_tags, config.store);
  if (st.ok()) st = check_meta(f.meta, config.store);
  if (st.ok()) st = read_tiers_and_states(args, &f);
  if (st.ok()) st = read_times(args, &f);
  if (!st.ok()) return st;
  const float weights[] = {args.getRecencyWeight(), args.getImportanceWeight(),
                           args.getRetentionWeight()};
  for (float w : weights) {
    if (!std::isfinite(w) || w < 0 || w > 100)
      return Status::bad_request("weights must be between 0 and 100");
  }
  float mmr = args.getMmrLambda();
  if (!std::isfinite(mmr) || mmr < 0) return Status::bad_request("mmr lambda must be 0 or more");
  set_search_defaults(config.search, &q);
  if (weights[0] != 0) q.fusion.recency_weight = weights[0];
  if (weights[1] != 0) q.fusion.importance_weight = weights[1];
  q.fusion.retention_weight = weights[2];  // off unless asked: no daemon default
  if (mmr != 0) q.fusion.mmr_lambda = mmr;
  out->explain = args.getExplain();
  if (Status route = read_route(args, out); !route.ok()) return route;
  if (args.getHasMinScore()) {
    const float min_score = args.getMinScore();
    if (!std::isfinite(min_score))
      return Status::bad_request("the minimum score must be a finite number");
    out->min_score = min_score;
  }
  return {};
}

// A hit with what the reply says of its item.
struct Found {
  store::Item item;
  store::AccessStats stats;
  const SearchHit* hit;
};

void set_hits(capnp::List<wire::Hit>::Builder list, const std::vector<Found>& found,
              const std::map<store::CubeId, std::string>& names, bool explain) {
  for (unsigned i = 0; i < found.size(); ++i) {
    auto b = list[i].initItem();
    set_item(b, found[i].item);
    set_access(b, found[i].stats);
    list[i].setScore(found[i].hit->score);
    list[i].setCube(names.at(found[i].hit->cube));
    if (!explain) continue;
    const auto& ranks = found[i].hit->ranks;
    auto out = list[i].initRanks(static_cast<unsigned>(ranks.size()));
    for (unsigned j = 0; j < ranks.size(); ++j) {
      out[j].setRetriever(to_string(ranks[j].retriever));
      out[j].setRank(ranks[j].rank);
      out[j].setScore(ranks[j].score);
    }
  }
}

void respond_routed(const RequestContext& ctx, const std::vector<Found>& found,
                    const std::map<store::CubeId, std::string>& names, bool explain,
                    const routing::RoutedResult& routed,
                    const std::optional<routing::RouterView>& router) {
  ctx.respond([&](wire::Response::Builder r) {
    auto out = r.initRoutedSearch();
    set_hits(out.initHits(static_cast<unsigned>(found.size())), found, names, explain);
    auto context = out.initContext(static_cast<unsigned>(routed.context.size()));
    for (unsigned i = 0; i < routed.context.size(); ++i) {
      const auto& piece = routed.context[i];
      context[i].setCube(names.at(piece.cube));
      context[i].setItemId(piece.id);
      context[i].setText(piece.text);
      context[i].setTokens(piece.tokens);
      context[i].setNeighbourOf(piece.neighbour_of);
    }
    out.setContextTokens(routed.context_tokens);
    set_module_runs(out.initModules(static_cast<unsigned>(routed.modules.size())), routed.modules);
    if (router) set_router_choice(out.initRouter(), *router);
  });
}

void search(const Services& s, const RequestContext& ctx, wire::Search::Reader args) {
  auto req = std::make_shared<SearchRequest>();
  if (Status st = read_search(args, s.config, req.get()); !st.ok()) return ctx.fail(st);
  auto run = [&s, ctx, req] {
    SearchQuery& q = req->query;
    std::optional<store::ReadTxn> txn;
    if (store::Status st = s.store.begin_read(&txn); !st.ok()) return ctx.fail(Status::from(st));
    // Hits name their cube as the request did ("alice/notes" for a cube
    // shared with the peer).
    std::map<store::CubeId, std::string> names;
    for (const auto& name : req->cube_names) {
      CubeRef ref;
      store::Cube cube;
      // The tenant's own cubes, and those shared with it: any other is
      // notFound.
      if (Status st = resolve_cube(s.tenants, ctx, name, &ref); !st.ok()) return ctx.fail(st);
      if (store::Status st = find_cube_for(*txn, ref, ctx.tenant, CubeUse::read, &cube); !st.ok())
        return ctx.fail(Status::from(st));
      if (names.contains(cube.id)) continue;  // named twice ("notes" and "me/notes")
      names[cube.id] = name;
      q.cubes.push_back(std::move(cube));
    }
    q.filter.now_ms = now_ms();
    // A route's retrieve tier chooses the mode: lexical at low, hybrid above.
    std::optional<ResolvedRoute> route;
    if (req->route.routed()) {
      route.emplace();
      if (Status st = resolve_route(s, ctx, *txn, q, req->route, req->explain, false, &*route);
          !st.ok())
        return ctx.fail(st);
    }
    q.mode = route ? routing::routed_mode(route->route)
                   : req->mode.value_or(default_mode(q.cubes.front()));
    if (Status st = check_search_mode(*ctx.policy, s.config, q.mode); !st.ok()) return ctx.fail(st);
    if (q.fusion.retention_weight != 0) {
      // A memory's retention decays in its owner's unit.
      for (const auto& cube : q.cubes) {
        auto owner = s.tenants.peer(cube.owner, nullptr).policy;
        q.retention_unit_s[cube.id] = scheduler::settings_for(s.config, *owner).time_unit_s;
      }
    }
    std::vector<SearchHit> hits;
    std::optional<routing::RoutedResult> routed;
    if (route) {
      routing::RoutedQuery rq{q,
                              route->route,
                              req->route.reference_ms,
                              req->route.context_tokens,
                              route->max_context_tokens,
                              route->model.get()};
      routed.emplace();
      if (Status st = routing::run_routed_search(s.indexes, *txn, s.config.routing, rq, &*routed);
          !st.ok())
        return ctx.fail(st);
      charge_route(s, ctx, routed->context_tokens);
      hits = routed->hits;
    } else if (Status st = run_search(s.indexes, *txn, q, &hits); !st.ok()) {
      return ctx.fail(st);
    }
    if (req->min_score) drop_below(*req->min_score, q.mode, &hits);
    std::vector<Found> found;
    found.reserve(hits.size());
    const std::int64_t now = now_ms();
    const auto recall = scheduler::settings_for(s.config, *ctx.policy);
    auto owned = [&](store::CubeId id) {
      for (const auto& c : q.cubes) {
        if (c.id == id) return c.owner == ctx.tenant;
      }
      return false;
    };
    std::size_t bytes = 0;
    for (const auto& hit : hits) {
      Found f{{}, {}, &hit};
      // The index may be a commit ahead of this snapshot: skip what it lacks.
      if (!txn->get_item(hit.cube, hit.id, 0, &f.item).ok()) continue;
      // Stop reading as soon as the hits cannot fit one reply (k = 1000 of
      // 1 MiB items once built a reply near 1 GB): say how many do.
      if ((bytes += reply_bytes(f.item)) > ctx.reply_budget()) {
        return ctx.fail(Status::too_large(
            "the best " + std::to_string(hits.size()) + " hits hold more text than one reply " +
            "carries (the message limit is " + std::to_string(ctx.max_reply_bytes) +
            " bytes); the first " + std::to_string(found.size()) + " fit: ask for k = " +
            std::to_string(std::max<std::size_t>(found.size(), 1)) + " or fewer"));
      }
      if (store::Status st = txn->access_stats(hit.cube, hit.id, &f.stats); !st.ok())
        return ctx.fail(Status::from(st));
      scheduler::record_use(s.access, recall, owned(hit.cube), hit.cube, hit.id,
                            scheduler::Recall::search_hit, now);
      found.push_back(std::move(f));
    }
    if (routed) return respond_routed(ctx, found, names, req->explain, *routed, route->view);
    ctx.respond([&](wire::Response::Builder r) {
      set_hits(r.initHits(static_cast<unsigned>(found.size())), found, names, req->explain);
    });
  };
  if (!args.getFresh()) return s.run_on_worker(std::move(run));
  // Every write answered before this request is numbered by now: wait
  // until the last of them is searchable (at most the indexing lag).
  s.indexes.when_indexed(s.indexes.accepted(), [&s, run] { s.run_on_worker(run); });
}

}  // namespace

void add_search_handlers(DispatchTable& table, const Services& s) {
  table.add(wire::Request::SEARCH, [&s](const RequestContext& c, wire::Request::Reader r) {
    search(s, c, r.getSearch());
  });
}

}  // namespace memos::kernel
