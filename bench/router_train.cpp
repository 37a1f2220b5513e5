// router_train.cpp — bench-router-train: trains router-policy's weights on
// LoCoMo's dev split (memos-plugin(7), "Routers"; memos(7), "Routing").
//
// Every dev question is replayed through every route memosd runs
// (route_replay.h), with the features and embedding a router reads. Each
// route's evidence recall is then fitted by ridge regression on them (one
// model per route: a contextual bandit whose every arm was observed), and
// a route's cost is its mean milliseconds and context tokens. The ridge
// penalties, and whether the embedding is read at all, are chosen by
// leave-one-conversation-out cross-validation within dev: the penalties
// whose router, choosing by the plugin's own rule (route_policy.h), earns
// the most recall less lambda x cost averaged over the lambdas. Lambda is
// not a training constant: quality and cost are learnt apart, so one
// weights file serves every lambda a tenant sets.
//
// Prints one JSON line per lambda with the cross-validated router's figures
// (split "dev-cv", the schema of bench-router-pareto), one for the best
// route per question in hindsight (policy "oracle"), and one for the chosen
// penalties; writes the weights fitted on all of dev to --out. The held-out
// split is never read.

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_daemon.h"
#include "bench/locomo_data.h"
#include "bench/route_replay.h"
#include "plugins/router-policy/policy_weights.h"
#include "plugins/router-policy/ridge_fit.h"
#include "plugins/router-policy/route_policy.h"

namespace {

using memos::bench::JsonLine;
using memos::bench::read_options;
using memos::bench::UsageError;
using memos::bench::locomo::Conversation;
using memos::bench::locomo::ConversationDaemon;
using memos::bench::locomo::ReplayedQuestion;
namespace rp = memos::router_policy;

constexpr std::string_view kUsage =
    "usage: bench-router-train --memosd PATH --out FILE [--split dev] [--data DIR]\n"
    "       [--config FILE] [--lambdas L,L...]\n";

constexpr double kNoEmbedding = std::numeric_limits<double>::infinity();

struct Options : memos::bench::locomo::RunOptions {
  std::string out;
  std::vector<double> lambdas = {0.1, 0.3, 1, 3};
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "trains router-policy's weights on LoCoMo dev",
               [&](std::string_view flag, std::string_view value) {
                 if (memos::bench::locomo::read_run_option(
                         flag, value, {"dev"},
                         "--split: a router trains on dev only, never held-out", &opts))
                   return true;
                 if (flag == "--out") {
                   opts.out = value;
                 } else if (flag == "--lambdas") {
                   opts.lambdas = memos::bench::locomo::parse_lambdas(value);
                 } else {
                   return false;
                 }
                 return true;
               });
  memos::bench::locomo::check_run_options(opts);
  if (opts.out.empty()) throw UsageError("--out is required");
  return opts;
}

struct Replay {
  std::vector<memos::Route> routes;
  std::vector<ReplayedQuestion> questions;
  std::vector<std::string> features;  // names, in the daemon's order
  std::string embedder;
  std::uint32_t dimension = 0;
};

struct Penalty {
  double features = 1;
  double embedding = kNoEmbedding;  // infinite: the embedding is not read
  // Additive: a route's recall is a base model plus one per tier it runs
  // above low (and one for expand and compress both at mid), each over the
  // features, fitted on every (question, route) at once, so that routes
  // sharing a tier share what is learnt of it. Else one model per route.
  bool additive = false;
};

// The tier groups a route belongs to in the additive model: the base, then
// retrieve=mid, retrieve=high, temporal=mid, expand=mid, compress=mid, and
// expand=mid with compress=mid (compress cuts what expand adds).
constexpr std::size_t kGroups = 7;
std::array<double, kGroups> groups_of(const memos::Route& r) {
  using memos::CostTier;
  using memos::Module;
  const bool expand = r[Module::expand] == CostTier::mid;
  const bool compress = r[Module::compress] == CostTier::mid;
  return {1.0,
          r[Module::retrieve] == CostTier::mid ? 1.0 : 0.0,
          r[Module::retrieve] == CostTier::high ? 1.0 : 0.0,
          r[Module::temporal] == CostTier::mid ? 1.0 : 0.0,
          expand ? 1.0 : 0.0,
          compress ? 1.0 : 0.0,
          expand && compress ? 1.0 : 0.0};
}

// Ridge fit on `rows` (indices into replay.questions) at `penalty`, as the
// plugin's weights: features standardised for the fit, the scaling folded
// back into the weights so the plugin dots raw inputs.
rp::PolicyWeights fit(const Replay& replay, const std::vector<std::size_t>& rows,
                      const Penalty& penalty, const std::string& note) {
  const std::size_t f = replay.features.size();
  const bool embed = std::isfinite(penalty.embedding);
  const std::size_t d = embed ? replay.dimension : 0;
  std::vector<double> mean(f, 0), scale(f, 0);
  for (std::size_t r : rows)
    for (std::size_t j = 0; j < f; ++j) mean[j] += replay.questions[r].features[j].second;
  for (double& m : mean) m /= static_cast<double>(rows.size());
  for (std::size_t r : rows)
    for (std::size_t j = 0; j < f; ++j)
      scale[j] += std::pow(replay.questions[r].features[j].second - mean[j], 2);
  for (double& s : scale) {
    s = std::sqrt(s / static_cast<double>(rows.size()));
    if (s < 1e-6) s = 1;
  }
  const std::size_t n = 1 + f + d;
  std::vector<double> x(n);
  auto inputs_of = [&](const ReplayedQuestion& q) {
    x[0] = 1;
    for (std::size_t j = 0; j < f; ++j) x[1 + j] = (q.features[j].second - mean[j]) / scale[j];
    for (std::size_t j = 0; j < d; ++j) x[1 + f + j] = q.vector[j];
  };
  std::vector<double> penalties(n, penalty.features);
  penalties[0] = 0;
  for (std::size_t j = 0; j < d; ++j) penalties[1 + f + j] = penalty.embedding;
  // w[k]: route k's weights over the standardised inputs.
  std::vector<std::vector<double>> w;
  if (!penalty.additive) {
    rp::RidgeFit ridge(n, replay.routes.size());
    std::vector<double> y(replay.routes.size());
    for (std::size_t r : rows) {
      inputs_of(replay.questions[r]);
      for (std::size_t k = 0; k < y.size(); ++k) y[k] = replay.questions[r].outcomes[k].recall;
      ridge.add(x, y);
    }
    if (!ridge.solve(penalties, &w)) throw std::runtime_error("the ridge system is singular");
  } else {
    rp::RidgeFit ridge(n * kGroups, 1);
    std::vector<double> row(n * kGroups);
    for (std::size_t r : rows) {
      inputs_of(replay.questions[r]);
      for (std::size_t k = 0; k < replay.routes.size(); ++k) {
        const auto g = groups_of(replay.routes[k]);
        for (std::size_t gi = 0; gi < kGroups; ++gi)
          for (std::size_t j = 0; j < n; ++j) row[gi * n + j] = g[gi] * x[j];
        ridge.add(row, {replay.questions[r].outcomes[k].recall});
      }
    }
    std::vector<double> grouped(n * kGroups);
    for (std::size_t gi = 0; gi < kGroups; ++gi)
      for (std::size_t j = 0; j < n; ++j) grouped[gi * n + j] = penalties[j];
    std::vector<std::vector<double>> wg;
    if (!ridge.solve(grouped, &wg)) throw std::runtime_error("the ridge system is singular");
    for (const auto& route : replay.routes) {
      const auto g = groups_of(route);
      std::vector<double> wr(n, 0);
      for (std::size_t gi = 0; gi < kGroups; ++gi)
        for (std::size_t j = 0; j < n; ++j) wr[j] += g[gi] * wg[0][gi * n + j];
      w.push_back(std::move(wr));
    }
  }

  rp::PolicyWeights out;
  out.note = note;
  out.embedder = embed ? replay.embedder : "none";
  out.dimension = static_cast<std::uint32_t>(d);
  out.features = replay.features;
  for (std::size_t k = 0; k < replay.routes.size(); ++k) {
    rp::RouteModel m;
    m.name = memos::to_string(replay.routes[k]);
    rp::split_route(m.name, &m.tiers);
    for (std::size_t r : rows) {
      m.ms += replay.questions[r].outcomes[k].ms;
      m.tokens += replay.questions[r].outcomes[k].tokens;
    }
    m.ms /= static_cast<double>(rows.size());
    m.tokens /= static_cast<double>(rows.size());
    m.quality.assign(1 + f + d, 0);
    m.quality[0] = w[k][0];
    for (std::size_t j = 0; j < f; ++j) {
      m.quality[1 + j] = w[k][1 + j] / scale[j];
      m.quality[0] -= w[k][1 + j] * mean[j] / scale[j];
    }
    for (std::size_t j = 0; j < d; ++j) m.quality[1 + f + j] = w[k][1 + f + j];
    out.routes.push_back(std::move(m));
  }
  return out;
}

// The route the plugin's rule picks for question `q` (an index into
// replay.routes).
std::size_t pick(const rp::PolicyWeights& weights, const Replay& replay, const ReplayedQuestion& q,
                 double lambda) {
  rp::RouteQuery query;
  query.features = q.features;
  if (weights.dimension > 0) query.vector = q.vector;
  for (const auto& route : weights.routes)
    for (const auto& [module, tier] : route.tiers) {
      auto& tiers = query.offered[module];
      if (std::find(tiers.begin(), tiers.end(), tier) == tiers.end()) tiers.push_back(tier);
    }
  query.lambda = lambda;
  rp::RouteChoice choice;
  if (std::string why = rp::choose_route(weights, query, &choice); !why.empty())
    throw std::runtime_error("choosing a route: " + why);
  const std::string& name = choice.ranked.front().route->name;
  for (std::size_t k = 0; k < replay.routes.size(); ++k)
    if (memos::to_string(replay.routes[k]) == name) return k;
  throw std::runtime_error("the router chose a route never replayed");
}

struct Figures {
  double recall = 0, tokens = 0, ms = 0, reward = 0;
  std::size_t questions = 0;
};

// Leave one conversation out: each conversation's questions routed by the
// weights fitted on the others. One Figures per lambda.
std::vector<Figures> cross_validate(const Replay& replay, const Penalty& penalty,
                                    const std::vector<double>& lambdas) {
  std::vector<std::string> conversations;
  for (const auto& q : replay.questions)
    if (std::find(conversations.begin(), conversations.end(), q.conversation) ==
        conversations.end())
      conversations.push_back(q.conversation);
  std::vector<Figures> out(lambdas.size());
  for (const auto& held : conversations) {
    std::vector<std::size_t> train, test;
    for (std::size_t i = 0; i < replay.questions.size(); ++i)
      (replay.questions[i].conversation == held ? test : train).push_back(i);
    const rp::PolicyWeights weights = fit(replay, train, penalty, "");
    for (std::size_t l = 0; l < lambdas.size(); ++l) {
      for (std::size_t i : test) {
        const std::size_t k = pick(weights, replay, replay.questions[i], lambdas[l]);
        const auto& o = replay.questions[i].outcomes[k];
        out[l].recall += o.recall;
        out[l].tokens += o.tokens;
        out[l].ms += o.ms;
        out[l].reward += o.recall - lambdas[l] * rp::normalised_cost(weights, weights.routes[k]);
        ++out[l].questions;
      }
    }
  }
  return out;
}

void print_figures(std::string_view policy, double lambda, const Figures& f) {
  const double n = static_cast<double>(std::max<std::size_t>(f.questions, 1));
  JsonLine()
      .str("bench", "router-pareto")
      .str("split", "dev-cv")
      .str("policy", policy)
      .num("lambda", lambda, 2)
      .num("recall_at_10", f.recall / n, 4)
      .num("context_tokens", f.tokens / n, 1)
      .num("ms_per_query", f.ms / n, 3)
      .count("questions", f.questions)
      .print();
}

Replay replay_dev(const Options& opts) {
  Replay replay;
  replay.routes = memos::bench::locomo::every_route();
  for (const Conversation& conv : memos::bench::locomo::load_split(opts.data_dir, "dev")) {
    std::cerr << conv.sample_id << ": " << conv.questions.size() << " questions x "
              << replay.routes.size() << " routes\n";
    ConversationDaemon daemon(opts.memosd, opts.config, conv);
    auto cube = daemon.client().cube_show(daemon.cube());
    memos::bench::check(cube, "cube show");
    replay.embedder = cube->embedder;
    auto questions = memos::bench::locomo::replay_conversation(daemon, conv, replay.routes, true);
    daemon.stop();
    for (auto& q : questions) replay.questions.push_back(std::move(q));
  }
  if (replay.questions.empty()) throw std::runtime_error("dev holds no questions");
  for (const auto& [name, value] : replay.questions.front().features)
    replay.features.push_back(name);
  replay.dimension = static_cast<std::uint32_t>(replay.questions.front().vector.size());
  for (const auto& q : replay.questions) {
    if (q.features.size() != replay.features.size() || q.vector.size() != replay.dimension)
      throw std::runtime_error("the questions' features differ in shape");
  }
  return replay;
}

void run(const Options& opts) {
  const Replay replay = replay_dev(opts);
  // The grid: feature penalties, and embedding penalties or none.
  Penalty best;
  double best_reward = -std::numeric_limits<double>::infinity();
  std::vector<Figures> best_figures;
  std::vector<Penalty> grid;
  for (double pf : {1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 1e5}) {
    for (double pe : {kNoEmbedding, 3.0, 10.0, 30.0, 100.0, 300.0}) grid.push_back({pf, pe, false});
    // The additive model shares across routes; its embedding blocks would be
    // seven times the embedding, so it reads the features only.
    grid.push_back({pf, kNoEmbedding, true});
  }
  for (const Penalty& p : grid) {
    std::vector<Figures> figures = cross_validate(replay, p, opts.lambdas);
    double reward = 0;
    for (const auto& f : figures) reward += f.reward / static_cast<double>(f.questions);
    if (reward > best_reward) {
      best_reward = reward;
      best = p;
      best_figures = std::move(figures);
    }
  }
  for (std::size_t l = 0; l < opts.lambdas.size(); ++l)
    print_figures("router", opts.lambdas[l], best_figures[l]);

  // In hindsight: each question's best route at each lambda (an upper bound
  // no router reaches).
  std::vector<std::size_t> all(replay.questions.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  const rp::PolicyWeights costs = fit(replay, all, {1, kNoEmbedding}, "");
  for (double lambda : opts.lambdas) {
    Figures f;
    for (const auto& q : replay.questions) {
      std::size_t best_k = 0;
      double best_value = -std::numeric_limits<double>::infinity();
      for (std::size_t k = 0; k < replay.routes.size(); ++k) {
        const double v =
            q.outcomes[k].recall - lambda * rp::normalised_cost(costs, costs.routes[k]);
        if (v > best_value) best_value = v, best_k = k;
      }
      f.recall += q.outcomes[best_k].recall;
      f.tokens += q.outcomes[best_k].tokens;
      f.ms += q.outcomes[best_k].ms;
      ++f.questions;
    }
    print_figures("oracle", lambda, f);
  }

  JsonLine line;
  line.str("bench", "router-train")
      .str("split", "dev")
      .str("model", best.additive ? "additive" : "per-route")
      .num("alpha_features", best.features, 1);
  if (std::isfinite(best.embedding)) {
    line.num("alpha_embedding", best.embedding, 1);
  } else {
    line.null("alpha_embedding");
  }
  line.num("cv_reward", best_reward / static_cast<double>(opts.lambdas.size()), 4)
      .count("questions", replay.questions.size())
      .count("routes", replay.routes.size())
      .print();

  char note[256];
  std::snprintf(note, sizeof note,
                "trained by bench-router-train on LoCoMo dev (conv-26 conv-30 conv-41), %zu "
                "questions, %s ridge %g/%s",
                replay.questions.size(), best.additive ? "additive" : "per-route", best.features,
                std::isfinite(best.embedding) ? std::to_string(best.embedding).c_str() : "none");
  const rp::PolicyWeights weights = fit(replay, all, best, note);
  const std::string text = rp::format_weights(weights);
  rp::PolicyWeights check;
  if (std::string why = rp::parse_weights(text, &check); !why.empty())
    throw std::runtime_error("the weights written do not read back: " + why);
  const std::string tmp = opts.out + ".tmp";
  {
    std::ofstream file(tmp, std::ios::trunc);
    file << text;
    if (!file.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, opts.out);
  std::cerr << "wrote " << opts.out << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-router-train", kUsage, argc, argv, parse_options, run);
}
