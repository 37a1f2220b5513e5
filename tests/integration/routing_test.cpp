// Routed search through a real memosd (memos(7), "Routing"): every route
// over a two-session conversation keeps each module's contract (the k best
// hits, neighbours of the same session only, a context within its token
// budget, each module run at the tier asked), an empty cube and a query
// without time words are no error, the time words of a question lift the
// memories of the window they name, and malformed or unavailable routes get
// clear errors.
#define BOOST_TEST_MODULE routing
#include <boost/test/unit_test.hpp>

#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "memos/client.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/printing.h"
#include "tests/support/raw_request.h"

using memos::CostTier;
using memos::Module;
using memos::Route;
using memos::testing::Daemon;
using memos::testing::why;

namespace {

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kMay8 = 1683504000000;  // 2023-05-08T00:00Z
constexpr std::int64_t kJune20 = kMay8 + 43 * kDay;

struct Turn {
  const char* session;
  std::int64_t day;
  const char* text;
};

// Two sessions, six weeks apart, of one conversation; and a note of
// another session in between that is not part of it.
const Turn kTurns[] = {
    {"D1", kMay8, "Caroline: Hi Mel! I went to an LGBTQ support group yesterday."},
    {"D1", kMay8, "Melanie: That sounds lovely. How did it go?"},
    {"D1", kMay8, "Caroline: It was powerful. The transgender stories moved me."},
    {"D1", kMay8, "Melanie: I painted a lake sunrise last week. Painting relaxes me."},
    {"other", kMay8, "Shopping list: eggs, milk, and bread."},
    {"D2", kJune20, "Caroline: I am researching adoption agencies now."},
    {"D2", kJune20, "Melanie: Wow, that is a big step. Which agencies?"},
    {"D2", kJune20, "Caroline: Ones that support LGBTQ families. It matters to me."},
    {"D2", kJune20, "Melanie: We went camping with the kids at the beach."},
};

std::vector<Route> every_runnable_route() {
  std::vector<Route> routes;
  for (CostTier r : {CostTier::low, CostTier::mid, CostTier::high})
    for (CostTier t : {CostTier::low, CostTier::mid})
      for (CostTier e : {CostTier::low, CostTier::mid})
        for (CostTier c : {CostTier::low, CostTier::mid}) routes.push_back({{r, t, e, c}});
  return routes;
}

// The conversation in cube "talk"; its items by id.
std::map<std::uint64_t, memos::Item> add_conversation(memos::Client& c) {
  BOOST_REQUIRE(c.cube_create("talk").ok());
  std::map<std::uint64_t, memos::Item> items;
  for (const Turn& t : kTurns) {
    memos::NewItem item;
    item.text = t.text;
    item.session_id = t.session;
    item.valid_from_ms = t.day;
    auto added = c.add("talk", item);
    BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
    items[added->id] = *added;
  }
  return items;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_route_keeps_each_modules_contract) {
  Daemon d;
  auto c = d.client();
  auto items = add_conversation(*c);
  const char* questions[] = {"What did Caroline research?", "Where did Melanie go camping?",
                             "What did Melanie paint in May 2023?", "zebra quantum", ""};
  for (const Route& route : every_runnable_route()) {
    for (const char* question : questions) {
      memos::SearchOptions o;
      o.k = 3;
      o.routing.route = route;
      o.routing.reference_ms = kJune20 + kDay;
      o.routing.context_tokens = 24;
      auto r = c->search_routed("talk", question, o);
      BOOST_REQUIRE_MESSAGE(r.ok(), memos::to_string(route) << ": " << why(r));
      const std::string where = memos::to_string(route) + " '" + question + "'";
      BOOST_TEST(r->hits.size() <= 3u, where);
      // Each module ran, in pipeline order, at the tier asked.
      BOOST_REQUIRE(r->modules.size() == memos::kModules);
      for (std::size_t m = 0; m < memos::kModules; ++m) {
        BOOST_TEST((r->modules[m].module == static_cast<Module>(m)), where);
        BOOST_TEST((r->modules[m].tier == route[static_cast<Module>(m)]), where);
        BOOST_TEST(r->modules[m].ms >= 0, where);
      }
      std::set<std::uint64_t> hit_ids, seen;
      for (const auto& h : r->hits) hit_ids.insert(h.item.id);
      std::uint32_t tokens = 0;
      for (const auto& p : r->context) {
        BOOST_TEST(seen.insert(p.item_id).second, where << ": a piece twice");
        BOOST_REQUIRE_MESSAGE(items.contains(p.item_id), where << ": a piece never added");
        const memos::Item& item = items[p.item_id];
        tokens += p.tokens;
        BOOST_TEST(p.cube == "talk");
        if (p.neighbour_of == 0) {
          BOOST_TEST(hit_ids.contains(p.item_id), where << ": a piece neither hit nor neighbour");
        } else {
          // A neighbour only with expand=mid, of a hit, of its session.
          BOOST_TEST((route[Module::expand] == CostTier::mid), where);
          BOOST_TEST(hit_ids.contains(p.neighbour_of), where);
          BOOST_TEST(item.session_id == items[p.neighbour_of].session_id, where);
          BOOST_TEST(item.session_id != "other", where);
        }
        if (route[Module::compress] == CostTier::low) {
          BOOST_TEST(p.text == item.text, where << ": compress=low keeps pieces whole");
        } else {
          // Sentences of the memory, none added.
          BOOST_TEST(p.text.size() <= item.text.size(), where);
          BOOST_TEST(item.text.find(p.text.substr(0, 10)) != std::string::npos, where);
        }
      }
      BOOST_TEST(tokens == r->context_tokens, where);
      if (route[Module::compress] == CostTier::mid)
        BOOST_TEST(((r->context_tokens <= 24u) || (r->context.size() == 1u)), where);
      if (route[Module::compress] == CostTier::low && route[Module::expand] == CostTier::low)
        BOOST_TEST(r->context.size() == r->hits.size(), where);
      // search() with a route answers the same hits.
      auto plain = c->search("talk", question, o);
      BOOST_REQUIRE(plain.ok());
      BOOST_TEST(plain->size() == r->hits.size(), where);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_empty_cube_and_a_question_without_time_words_are_no_error) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("empty").ok());
  for (const Route& route : every_runnable_route()) {
    memos::SearchOptions o;
    o.routing.route = route;
    auto r = c->search_routed("empty", "what happened last May?", o);
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    BOOST_TEST(r->hits.empty());
    BOOST_TEST(r->context.empty());
    BOOST_TEST(r->context_tokens == 0u);
  }
  add_conversation(*c);
  memos::SearchOptions o;
  o.routing.route = Route::all(CostTier::mid);
  auto r = c->search_routed("talk", "adoption agencies", o);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->modules[1].detail == "no time words");
}

BOOST_AUTO_TEST_CASE(time_words_lift_the_memories_of_their_window) {
  Daemon d;
  auto c = d.client();
  auto items = add_conversation(*c);
  // "LGBTQ" is in one turn of each session; the question's month picks.
  memos::SearchOptions o;
  o.k = 1;
  o.routing.reference_ms = kJune20 + kDay;
  for (CostTier retrieve : {CostTier::low, CostTier::mid}) {
    o.routing.route = Route{{retrieve, CostTier::mid, CostTier::low, CostTier::low}};
    for (auto [question, day] : {std::pair{"LGBTQ support in May 2023", kMay8},
                                 std::pair{"LGBTQ support this month", kJune20}}) {
      auto r = c->search_routed("talk", question, o);
      BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
      BOOST_REQUIRE(r->hits.size() == 1u);
      BOOST_TEST(r->hits.front().item.valid_from_ms == day, question);
      BOOST_TEST(r->modules[1].detail.find("window") == 0, r->modules[1].detail);
    }
  }
}

BOOST_AUTO_TEST_CASE(malformed_and_unavailable_routes_get_clear_errors) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  auto raw = [&](const char* budget, const std::string& route, auto&& more) {
    return memos::testing::raw_request(d.process->socket(), [&](auto r) {
      auto s = r.initSearch();
      s.setCube("c");
      s.setQuery("q");
      s.setBudget(budget);
      s.setRoute(capnp::Text::Reader(route.data(), route.size()));  // NULs too
      more(s);
    });
  };
  auto nothing = [](auto) {};
  using Code = memos::wire::ErrorCode;
  struct Case {
    const char* budget;
    std::string route;
    Code code;
  };
  const Case cases[] = {
      {"cheap", "", Code::BAD_REQUEST},
      {"", "retrieve=", Code::BAD_REQUEST},
      {"", "retrieve=mid,retrieve=low", Code::BAD_REQUEST},
      {"", "answer=high", Code::BAD_REQUEST},
      {"", std::string(1 << 20, ','), Code::BAD_REQUEST},
      {"", std::string("retrieve=mid\0", 13), Code::BAD_REQUEST},
      {"", "temporal=high", Code::UNAVAILABLE},
      {"low", "expand=high", Code::UNAVAILABLE},
      {"mid", "compress=high", Code::UNAVAILABLE},
      {"auto", "retrieve=low", Code::BAD_REQUEST},
  };
  for (const Case& k : cases) {
    auto reply = raw(k.budget, k.route, nothing);
    BOOST_TEST_INFO(k.budget << " / " << k.route.substr(0, 40));
    BOOST_TEST(reply.is_error);
    BOOST_TEST((reply.code == k.code), reply.message);
  }
  // A budget runs what it can: high is every module's best here.
  auto high = raw("high", "", nothing);
  BOOST_TEST(!high.is_error, high.message);
  // Options that do not combine.
  auto with_mode = raw("low", "", [](auto s) { s.setMode("dense"); });
  BOOST_TEST((with_mode.code == Code::BAD_REQUEST), with_mode.message);
  auto with_min = raw("low", "", [](auto s) {
    s.setMinScore(0.5f);
    s.setHasMinScore(true);
  });
  BOOST_TEST((with_min.code == Code::BAD_REQUEST), with_min.message);
  auto reference_alone = raw("", "", [](auto s) { s.setReferenceMs(5); });
  BOOST_TEST((reference_alone.code == Code::BAD_REQUEST), reference_alone.message);
  auto negative = raw("mid", "", [](auto s) { s.setReferenceMs(-5); });
  BOOST_TEST((negative.code == Code::BAD_REQUEST), negative.message);
  auto lambda_alone = raw("", "", [](auto s) { s.setLambda(1); });
  BOOST_TEST((lambda_alone.code == Code::BAD_REQUEST), lambda_alone.message);
  auto lambda_fixed = raw("mid", "", [](auto s) { s.setLambda(1); });
  BOOST_TEST((lambda_fixed.code == Code::BAD_REQUEST), lambda_fixed.message);
  for (float bad : {-1.0f, 101.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    auto reply = raw("auto", "", [bad](auto s) { s.setLambda(bad); });
    BOOST_TEST((reply.code == Code::BAD_REQUEST), reply.message);
  }
  BOOST_TEST(c->search("c", "q").ok());  // the daemon still serves
}
