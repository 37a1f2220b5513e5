// router-policy's parts (plugins/router-policy): the weights file read as
// hostile input, the route choice checked against a model of its contract,
// the ridge fit against a known answer; and the features memosd computes for
// a router (kernel/routing/route_features.h).
#define BOOST_TEST_MODULE router_policy
#include <sys/stat.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kernel/routing/route_features.h"
#include "plugins/router-policy/policy_weights.h"
#include "plugins/router-policy/ridge_fit.h"
#include "plugins/router-policy/route_policy.h"
#include "tests/support/memosd_process.h"

namespace rp = memos::router_policy;

namespace {

const char* const kValid =
    "memos-router-policy 1\n"
    "note two routes\n"
    "embedder hash-v1 2\n"
    "features words low_margin\n"
    "route retrieve=low,compress=low ms 0.2 tokens 400\n"
    "quality 0.5 0 0.1 0 0\n"
    "# a comment\n"
    "\n"
    "route retrieve=mid,compress=mid ms 1 tokens 250\n"
    "quality 0.6 0.01 0 0.2 -0.2\n";

rp::PolicyWeights parse_ok(const std::string& text) {
  rp::PolicyWeights w;
  std::string why = rp::parse_weights(text, &w);
  BOOST_TEST_REQUIRE(why.empty(), why);
  return w;
}

std::string refusal(const std::string& text) {
  rp::PolicyWeights w;
  return rp::parse_weights(text, &w);
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  BOOST_TEST_REQUIRE(at != std::string::npos, from);
  return text.replace(at, from.size(), to);
}

rp::RouteQuery every_tier_query(double lambda) {
  rp::RouteQuery q;
  q.features = {{"words", 2.0f}, {"low_margin", 0.5f}};
  q.vector = {0.5f, -0.5f};
  q.offered = {{"retrieve", {"low", "mid", "high"}}, {"compress", {"low", "mid"}}};
  q.lambda = lambda;
  return q;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_valid_file_reads_and_writes_back_the_same) {
  rp::PolicyWeights w = parse_ok(kValid);
  BOOST_TEST(w.note == "two routes");
  BOOST_TEST(w.embedder == "hash-v1");
  BOOST_TEST(w.dimension == 2u);
  BOOST_TEST(w.features.size() == 2u);
  BOOST_TEST_REQUIRE(w.routes.size() == 2u);
  BOOST_TEST(w.routes[1].name == "retrieve=mid,compress=mid");
  BOOST_TEST(w.routes[1].tiers[1].second == "mid");
  BOOST_TEST(w.routes[1].quality[4] == -0.2);
  rp::PolicyWeights again = parse_ok(rp::format_weights(w));
  BOOST_TEST(rp::format_weights(again) == rp::format_weights(w));
  BOOST_TEST(again.routes[0].ms == 0.2);
}

BOOST_AUTO_TEST_CASE(malformed_and_hostile_weights_are_refused_with_the_line) {
  const std::string v = kValid;
  struct Case {
    std::string text;
    std::string says;
  } cases[] = {
      {"", "empty"},
      {replace(v, "memos-router-policy 1", "memos-router-policy 2"), "line 1"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 0.1 0"), "5 are expected"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 0.1 0 0 7"), "more than"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 nan 0 0"), "finite"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 inf 0 0"), "finite"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 1e300 0 0"), "within 1e6"},
      {replace(v, "quality 0.5 0 0.1 0 0", "quality 0.5 0 0x10 0 0"), "finite"},
      {replace(v, "ms 0.2", "ms -1"), "not negative"},
      {replace(v, "tokens 400", "tokens"), "ms N tokens N"},
      {replace(v, "retrieve=low,compress=low", "retrieve=low,retrieve=mid"), "each module once"},
      {replace(v, "retrieve=low,compress=low", "retrieve=LOW"), "[a-z0-9_]"},
      {replace(v, "retrieve=low,compress=low", "retrieve=low,"), "MODULE=TIER"},
      {replace(v, "retrieve=low,compress=low", "retrieve=mid,compress=mid"), "given twice"},
      {replace(v, "features words low_margin", "features words words"), "named twice"},
      {replace(v, "features words low_margin", "features Words"), "[a-z0-9_]"},
      {replace(v, "embedder hash-v1 2", "embedder hash-v1 5000"), "0..4096"},
      {replace(v, "embedder hash-v1 2", "embedder none 2"), "dimension 0"},
      {replace(v, "embedder hash-v1 2", "embedder hash-v1 2.5"), "DIMENSION"},
      {replace(v, "note two routes", "weights 1"), "unknown keyword"},
      {replace(v, "note two routes", "note a\nnote b"), "given twice"},
      {v + "route retrieve=high,compress=mid ms 1 tokens 1\n", "no quality line"},
      {v + "quality 1 1 1 1 1\n", "follows its route"},
      {v + std::string(1, '\0'), "NUL"},
      {"memos-router-policy 1\nembedder none 0\nfeatures\n", "no routes"},
      {std::string(rp::kMaxWeightsBytes + 1, '#'), "MiB"},
  };
  for (const auto& c : cases) {
    std::string why = refusal(c.text);
    BOOST_TEST_INFO(c.text.substr(0, 200));
    BOOST_TEST(!why.empty());
    BOOST_TEST(why.find(c.says) != std::string::npos, why << " (expected: " << c.says << ")");
  }
}

BOOST_AUTO_TEST_CASE(random_damage_to_a_file_never_crashes_the_reader) {
  std::mt19937 rng(19);
  const std::string v = kValid;
  for (int i = 0; i < 5000; ++i) {
    std::string text = v;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.insert(at, std::string(1 + rng() % 4, " =,\n-9e"[rng() % 7]));
      }
      if (text.empty()) text = "x";
    }
    rp::PolicyWeights w;
    std::string why = rp::parse_weights(text, &w);
    if (!why.empty()) continue;
    // What reads is consistent: every route has its weights.
    for (const auto& r : w.routes) BOOST_TEST(r.quality.size() == w.inputs());
  }
}

BOOST_AUTO_TEST_CASE(an_unsafe_weights_file_is_refused) {
  memos::testing::TempDir dir;
  const std::string path = dir.path() + "/router.weights";
  std::ofstream(path) << kValid;
  ::chmod(path.c_str(), 0644);
  rp::PolicyWeights w;
  BOOST_TEST(rp::read_weights_file(path, &w).empty());
  ::chmod(path.c_str(), 0666);
  BOOST_TEST(rp::read_weights_file(path, &w).find("others may write") != std::string::npos);
  BOOST_TEST(rp::read_weights_file(dir.path(), &w).find("not a regular file") != std::string::npos);
  BOOST_TEST(!rp::read_weights_file(dir.path() + "/missing", &w).empty());
}

BOOST_AUTO_TEST_CASE(the_choice_is_always_an_offered_route_within_budget) {
  // A model of the contract: over random weights, offers and budgets, the
  // choice uses only offered tiers, fits the budget when any route does
  // (else is the cheapest offered), and scores best among those that fit.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0, 1);
  const std::vector<std::string> tiers = {"low", "mid", "high"};
  for (int trial = 0; trial < 500; ++trial) {
    rp::PolicyWeights w;
    w.features = {"a", "b"};
    for (const auto& r : tiers)
      for (const auto& c : {"low", "mid"}) {
        rp::RouteModel m;
        m.name = "retrieve=" + r + ",compress=" + c;
        rp::split_route(m.name, &m.tiers);
        m.ms = unit(rng) * 5;
        m.tokens = unit(rng) * 800;
        m.quality = {unit(rng), unit(rng) - 0.5, unit(rng) - 0.5};
        w.routes.push_back(m);
      }
    rp::RouteQuery q;
    q.features = {{"a", static_cast<float>(unit(rng))}, {"b", static_cast<float>(unit(rng))}};
    auto& retrieve = q.offered["retrieve"];
    for (const auto& t : tiers)
      if (unit(rng) < 0.7) retrieve.push_back(t);
    q.offered["compress"] = {"low", "mid"};
    q.lambda = unit(rng) * 3;
    q.ms_budget = unit(rng) < 0.5 ? unit(rng) * 5 : 0;
    q.token_budget = unit(rng) < 0.5 ? static_cast<std::uint32_t>(unit(rng) * 800) : 0;
    rp::RouteChoice choice;
    std::string why = rp::choose_route(w, q, &choice);
    if (retrieve.empty()) {
      BOOST_TEST(!why.empty());
      continue;
    }
    BOOST_TEST_REQUIRE(why.empty(), why);
    const rp::RouteModel& chosen = *choice.ranked.front().route;
    BOOST_TEST(
        (std::find(retrieve.begin(), retrieve.end(), chosen.tiers[0].second) != retrieve.end()));
    auto fits = [&](const rp::RouteModel& m) {
      return (q.ms_budget == 0 || m.ms <= q.ms_budget) &&
             (q.token_budget == 0 || m.tokens <= q.token_budget);
    };
    bool any_fits = false;
    for (const auto& m : w.routes)
      any_fits = any_fits || (fits(m) && std::find(retrieve.begin(), retrieve.end(),
                                                   m.tiers[0].second) != retrieve.end());
    if (any_fits) {
      BOOST_TEST(fits(chosen));
      for (const auto& s : choice.ranked) BOOST_TEST(s.score <= choice.ranked.front().score);
    } else {
      for (const auto& s : choice.ranked) BOOST_TEST(s.cost >= choice.ranked.front().cost);
    }
  }
}

BOOST_AUTO_TEST_CASE(lambda_trades_recall_for_cost) {
  rp::PolicyWeights w = parse_ok(kValid);
  rp::RouteChoice free_choice, dear_choice;
  BOOST_TEST_REQUIRE(rp::choose_route(w, every_tier_query(0), &free_choice).empty());
  BOOST_TEST_REQUIRE(rp::choose_route(w, every_tier_query(100), &dear_choice).empty());
  BOOST_TEST(free_choice.ranked.front().quality >= dear_choice.ranked.front().quality);
  BOOST_TEST(free_choice.ranked.front().cost >= dear_choice.ranked.front().cost);
  BOOST_TEST(dear_choice.ranked.front().route->name == "retrieve=low,compress=low");
  // An embedding of the wrong length, a bad lambda, nothing offered: refused.
  rp::RouteChoice c;
  auto q = every_tier_query(1);
  q.vector = {1};
  BOOST_TEST(rp::choose_route(w, q, &c).find("dimensions") != std::string::npos);
  q = every_tier_query(-1);
  BOOST_TEST(!rp::choose_route(w, q, &c).empty());
  q = every_tier_query(std::nan(""));
  BOOST_TEST(!rp::choose_route(w, q, &c).empty());
  q = every_tier_query(1);
  q.offered["retrieve"] = {"high"};
  BOOST_TEST(rp::choose_route(w, q, &c).find("offers") != std::string::npos);
  // A module memosd runs that the weights do not route: no route qualifies.
  q = every_tier_query(1);
  q.offered["expand"] = {"low"};
  BOOST_TEST(!rp::choose_route(w, q, &c).empty());
}

BOOST_AUTO_TEST_CASE(the_ridge_fit_recovers_a_linear_truth) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 0.01);
  rp::RidgeFit fit(3, 2);
  for (int i = 0; i < 400; ++i) {
    const double a = noise(rng) * 100, b = noise(rng) * 100;
    fit.add({1, a, b}, {0.5 + 2 * a - b + noise(rng), -1 + 0.5 * b + noise(rng)});
  }
  std::vector<std::vector<double>> w;
  BOOST_TEST_REQUIRE(fit.solve({0, 1e-6, 1e-6}, &w));
  BOOST_TEST(std::fabs(w[0][0] - 0.5) < 0.01);
  BOOST_TEST(std::fabs(w[0][1] - 2) < 0.01);
  BOOST_TEST(std::fabs(w[0][2] + 1) < 0.01);
  BOOST_TEST(std::fabs(w[1][0] + 1) < 0.01);
  BOOST_TEST(std::fabs(w[1][2] - 0.5) < 0.01);
  // A heavy penalty pulls the weights to 0 (but not the unpenalised bias).
  BOOST_TEST_REQUIRE(fit.solve({0, 1e9, 1e9}, &w));
  BOOST_TEST(std::fabs(w[0][1]) < 0.01);
  // An input that never varies, unpenalised: singular.
  rp::RidgeFit flat(2, 1);
  for (int i = 0; i < 10; ++i) flat.add({1, 0}, {1});
  BOOST_TEST(!flat.solve({0, 0}, &w));
}

BOOST_AUTO_TEST_CASE(route_features_read_the_question_and_the_low_retrieval) {
  using memos::kernel::SearchHit;
  using memos::kernel::routing::route_features;
  auto value = [](const auto& features, const std::string& name) {
    for (const auto& f : features)
      if (f.name == name) return f.value;
    BOOST_FAIL("no feature " + name);
    return 0.0f;
  };
  const std::int64_t june_2023 = 1687219200000;
  std::vector<SearchHit> hits(4);
  hits[0].score = 10;
  hits[1].score = 5;
  hits[2].score = 4;
  hits[3].score = 2;
  auto f = route_features("When did Caroline go to the LGBTQ support group last May?", june_2023,
                          hits, 10);
  BOOST_TEST(value(f, "q_when") == 1.0f);
  BOOST_TEST(value(f, "q_what") == 0.0f);
  BOOST_TEST(value(f, "time_question") == 1.0f);
  BOOST_TEST(value(f, "time_window") == 1.0f);
  BOOST_TEST(value(f, "names") == std::log1p(3.0f));  // Caroline, LGBTQ, May
  BOOST_TEST(value(f, "low_margin") == 0.5f);
  BOOST_TEST(value(f, "low_tail") == 0.2f);
  BOOST_TEST(value(f, "low_hits") == 0.4f);
  BOOST_TEST(value(f, "low_top") == std::log1p(10.0f));
  // Nothing at all: every feature defined, finite.
  auto empty = route_features("", 0, {}, 0);
  for (const auto& e : empty) BOOST_TEST(std::isfinite(e.value), e.name);
  BOOST_TEST(value(empty, "low_top") == 0.0f);
  auto yesno = route_features("Did Mel paint a sunrise in 2022?", june_2023, {}, 10);
  BOOST_TEST(value(yesno, "q_yesno") == 1.0f);
  BOOST_TEST(value(yesno, "digits") == 1.0f);
  // The same names in the same order, whatever the question: the contract.
  BOOST_TEST_REQUIRE(f.size() == empty.size());
  for (std::size_t i = 0; i < f.size(); ++i) BOOST_TEST(f[i].name == empty[i].name);
}
