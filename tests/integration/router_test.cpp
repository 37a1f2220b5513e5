// Budget "auto" through a real memosd (memos(7), "Routing"; memos-plugin(7),
// "Routers"): the shipped router-policy chooses a valid route of the tiers
// memosd runs, reports its scores and features, trades recall for cost as
// lambda rises; without a router, or with one whose weights are corrupt or
// unsafe (the plugin is refused, memosd still starts), budget auto runs at
// the default tier and says why.
#define BOOST_TEST_MODULE router
#include <sys/stat.h>
#include <sys/types.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "memos/client.h"
#include "memos/routing.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/printing.h"

using memos::CostTier;
using memos::Module;
using memos::Route;
using memos::testing::Daemon;
using memos::testing::why;

namespace {

constexpr std::int64_t kMay8 = 1683504000000;  // 2023-05-08T00:00Z

const char* const kTurns[] = {
    "Caroline: Hi Mel! I went to an LGBTQ support group yesterday.",
    "Melanie: That sounds lovely. How did it go?",
    "Caroline: It was powerful. The transgender stories moved me.",
    "Melanie: I painted a lake sunrise last week. Painting relaxes me.",
    "Caroline: I am researching adoption agencies now.",
    "Melanie: We went camping with the kids at the beach.",
};

void add_conversation(memos::Client& c) {
  BOOST_REQUIRE(c.cube_create("talk").ok());
  for (const char* text : kTurns) {
    memos::NewItem item;
    item.text = text;
    item.session_id = "D1";
    item.valid_from_ms = kMay8;
    auto added = c.add("talk", item);
    BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
  }
}

memos::RoutedSearch search_auto(memos::Client& c, const std::string& query, float lambda = 0,
                                bool explain = false) {
  memos::SearchOptions o;
  o.k = 3;
  o.explain = explain;
  o.routing.auto_route = true;
  o.routing.lambda = lambda;
  o.routing.reference_ms = kMay8 + 86'400'000;
  auto r = c.search_routed("talk", query, o);
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_REQUIRE(r->router.has_value());
  return std::move(r.value());
}

bool runnable(const Route& route) {
  for (Module m : {Module::temporal, Module::expand, Module::compress})
    if (route[m] == CostTier::high) return false;
  return true;
}

memos::PluginInfo plugin(memos::Client& c, const std::string& name) {
  auto list = c.plugin_list();
  BOOST_REQUIRE_MESSAGE(list.ok(), why(list));
  for (const auto& p : *list)
    if (p.name == name) return p;
  BOOST_FAIL("no plugin " + name);
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_shipped_router_chooses_a_runnable_route_and_says_why) {
  Daemon d;
  auto c = d.client();
  BOOST_TEST((plugin(*c, "router-policy").state == memos::PluginState::loaded));
  add_conversation(*c);
  for (const char* q :
       {"When did Caroline go to the LGBTQ support group?", "What does Melanie paint?",
        "Who is researching adoption agencies?", "", "zzzz unknown words"}) {
    BOOST_TEST_INFO(q);
    auto r = search_auto(*c, q);
    const memos::RouterChoice& router = *r.router;
    BOOST_TEST(router.source == "router-policy", router.source << ": " << router.reason);
    BOOST_TEST(runnable(router.route), memos::to_string(router.route));
    // The modules ran at the tiers it chose.
    BOOST_REQUIRE(r.modules.size() == memos::kModules);
    for (const auto& m : r.modules) BOOST_TEST((m.tier == router.route[m.module]));
    BOOST_REQUIRE(!router.scores.empty());
    BOOST_TEST(router.scores.front().route == memos::to_string(router.route));
    for (std::size_t i = 1; i < router.scores.size(); ++i)
      BOOST_TEST(router.scores[i].score <= router.scores[i - 1].score);
    BOOST_TEST(router.features.size() >= 10u);
    BOOST_TEST(router.vector.empty());  // only when explained
    BOOST_TEST(router.ms >= 0);
  }
}

BOOST_AUTO_TEST_CASE(a_higher_lambda_never_buys_a_costlier_route) {
  Daemon d;
  auto c = d.client();
  add_conversation(*c);
  for (const char* q : {"When did Caroline go to the support group?", "What relaxes Melanie?"}) {
    auto cheap = search_auto(*c, q, 100);
    auto dear = search_auto(*c, q, 0.001f);
    BOOST_TEST_INFO(q << ": " << memos::to_string(cheap.router->route) << " vs "
                      << memos::to_string(dear.router->route));
    BOOST_TEST(cheap.router->scores.front().cost <= dear.router->scores.front().cost);
    BOOST_TEST(cheap.router->scores.front().quality <= dear.router->scores.front().quality + 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(an_explained_fixed_route_shows_the_features_a_router_reads) {
  Daemon d;
  auto c = d.client();
  add_conversation(*c);
  memos::SearchOptions o;
  o.routing.route = Route::all(CostTier::low);
  o.explain = true;
  auto r = c->search_routed("talk", "What did Melanie paint last week?", o);
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_REQUIRE(r->router.has_value());
  BOOST_TEST(r->router->source == "fixed route");
  BOOST_TEST((r->router->route == Route::all(CostTier::low)));
  auto cube = c->cube_show("talk");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(r->router->vector.size() > 0u);
  BOOST_TEST(r->router->scores.empty());  // the router was not asked
  // Not explained, a fixed route carries no router view.
  o.explain = false;
  auto plain = c->search_routed("talk", "What did Melanie paint last week?", o);
  BOOST_REQUIRE(plain.ok());
  BOOST_TEST(!plain->router.has_value());
}

BOOST_AUTO_TEST_CASE(without_a_router_auto_runs_at_the_default_tier) {
  Daemon d("[plugins]\nrouter = \"\"\n[routing]\ndefault_tier = \"low\"\n");
  auto c = d.client();
  add_conversation(*c);
  auto r = search_auto(*c, "What does Melanie paint?");
  BOOST_TEST(r.router->source == "default tier");
  BOOST_TEST(r.router->reason.find("plugins.router") != std::string::npos, r.router->reason);
  BOOST_TEST((r.router->route == Route::all(CostTier::low)));
  BOOST_TEST(!r.context.empty());
}

BOOST_AUTO_TEST_CASE(corrupt_or_unsafe_weights_refuse_the_router_and_auto_falls_back) {
  struct Case {
    const char* name;
    std::string text;
    mode_t mode;
  } cases[] = {
      {"corrupt", "memos-router-policy 1\nembedder none 0\nfeatures\nroute x ms 1 tokens 1\n",
       0644},
      {"hostile", "memos-router-policy 1\nembedder none 99999999\n", 0644},
      {"binary",
       std::string("\x7f"
                   "ELF\0\0\0garbage",
                   14),
       0644},
      {"writable by anyone",
       "memos-router-policy 1\nembedder none 0\nfeatures\n"
       "route retrieve=low,temporal=low,expand=low,compress=low ms 1 tokens 1\n"
       "quality 1\n",
       0666},
  };
  for (const Case& k : cases) {
    BOOST_TEST_CONTEXT(k.name) {
      memos::testing::TempDir dir;
      const std::string path = dir.path() + "/router.weights";
      std::ofstream(path, std::ios::binary) << k.text;
      ::chmod(path.c_str(), k.mode);
      Daemon d(dir.path(), "[plugins.settings.router-policy]\nweights = \"" + path + "\"\n");
      auto c = d.client();
      auto p = plugin(*c, "router-policy");
      BOOST_TEST((p.state == memos::PluginState::failed), p.detail);
      add_conversation(*c);
      auto r = search_auto(*c, "What does Melanie paint?");
      BOOST_TEST(r.router->source == "default tier");
      BOOST_TEST(r.router->reason.find("did not load") != std::string::npos, r.router->reason);
      BOOST_TEST((r.router->route == Route::all(CostTier::mid)));
      BOOST_TEST(d.process->log().find("weights refused") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_days_budget_is_kept_across_restarts_and_spent_routes_low) {
  memos::testing::TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  const std::string policies = dir.path() + "/tenants.d";
  ::mkdir(policies.c_str(), 0755);
  std::ofstream(policies + "/default.toml") << "[router]\ntokens_per_day = 60\n";
  const std::string conf = "policies_dir = \"" + policies + "\"\n";
  std::uint64_t spent = 0;
  {
    Daemon d(dir.path(), conf);
    auto c = d.client();
    add_conversation(*c);
    // The context never exceeds what is left of the day.
    for (int i = 0; i < 20; ++i) {
      auto usage = c->tenant_usage();
      BOOST_REQUIRE_MESSAGE(usage.ok(), why(usage));
      const std::uint64_t before = usage->router_tokens;
      auto r = search_auto(*c, "What did Caroline and Melanie talk about?");
      if (r.router->source == "budget spent") break;
      BOOST_TEST(r.context_tokens <= 60 - before);
      auto after = c->tenant_usage();
      BOOST_REQUIRE(after.ok());
      BOOST_TEST(after->router_tokens == before + r.context_tokens);
    }
    auto usage = c->tenant_usage();
    BOOST_REQUIRE(usage.ok());
    spent = usage->router_tokens;
    BOOST_TEST(spent + 16 > 60u, spent);
    auto bound = std::find_if(usage->bounds.begin(), usage->bounds.end(),
                              [](const auto& b) { return b.name == "router.tokens_per_day"; });
    BOOST_REQUIRE(bound != usage->bounds.end());
    BOOST_TEST(bound->limit == 60u);
    BOOST_TEST(bound->used == spent);
    // Spent: auto runs every module low, a fixed route above low is refused.
    auto low = search_auto(*c, "What does Melanie paint?");
    BOOST_TEST(low.router->source == "budget spent");
    BOOST_TEST((low.router->route == Route::all(CostTier::low)));
    memos::SearchOptions fixed;
    fixed.routing.route = Route::all(CostTier::mid);
    auto refused = c->search_routed("talk", "What does Melanie paint?", fixed);
    BOOST_REQUIRE(!refused.ok());
    BOOST_TEST((refused.error().code == memos::ErrorCode::quota_exceeded), refused.error().message);
    fixed.routing.route = Route::all(CostTier::low);
    BOOST_TEST(c->search_routed("talk", "What does Melanie paint?", fixed).ok());
    auto more = c->tenant_usage();
    BOOST_REQUIRE(more.ok());
    spent = more->router_tokens;  // the low searches count too
    BOOST_TEST(d.process->stop() == 0);
  }
  // A restart keeps the day's spending.
  Daemon again(dir.path(), conf);
  auto c = again.client();
  auto usage = c->tenant_usage();
  BOOST_REQUIRE(usage.ok());
  BOOST_TEST(usage->router_tokens == spent);
  BOOST_TEST(search_auto(*c, "What does Melanie paint?").router->source == "budget spent");
}
