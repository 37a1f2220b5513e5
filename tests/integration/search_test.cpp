// Search through a real memosd: the three modes, every filter checked
// against a brute-force scan of what the store holds, tenants kept apart in
// every mode, and indexes that come back right after kill -9 (also while a
// snapshot is being written) or with damaged snapshot files.
#define BOOST_TEST_MODULE search
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/printing.h"
#include "tests/support/raw_request.h"

using memos::testing::Daemon;
using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;

namespace {

const memos::SearchMode kModes[] = {memos::SearchMode::dense, memos::SearchMode::lexical,
                                    memos::SearchMode::hybrid};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::set<std::uint64_t> ids_of(const std::vector<memos::Hit>& hits) {
  std::set<std::uint64_t> ids;
  for (const auto& h : hits) ids.insert(h.item.id);
  return ids;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The filter semantics of memos(7), evaluated on an item's head version.
bool admitted(const memos::Item& item, const memos::SearchOptions& f, std::int64_t now) {
  if (item.deleted) return false;
  std::vector<memos::State> states = f.states;
  if (states.empty()) states.push_back(memos::State::active);
  if (f.include_archived) states.push_back(memos::State::archived);
  if (std::find(states.begin(), states.end(), item.state) == states.end()) return false;
  if (!f.tiers.empty() && std::find(f.tiers.begin(), f.tiers.end(), item.tier) == f.tiers.end())
    return false;
  if (item.state != memos::State::frozen && item.expires_at_ms != 0 && item.expires_at_ms <= now)
    return false;
  std::int64_t as_of = f.as_of_ms ? f.as_of_ms : now;
  if (as_of < item.valid_from_ms) return false;
  if (item.valid_to_ms != 0 && as_of >= item.valid_to_ms) return false;
  if (f.recorded_since_ms && item.recorded_at_ms < f.recorded_since_ms) return false;
  if (f.recorded_until_ms && item.recorded_at_ms >= f.recorded_until_ms) return false;
  if (f.valid_until_ms && item.valid_from_ms >= f.valid_until_ms) return false;
  if (f.valid_since_ms && item.valid_to_ms != 0 && item.valid_to_ms <= f.valid_since_ms)
    return false;
  for (const auto& t : f.tags)
    if (!has(item.tags, t)) return false;
  if (!f.any_tags.empty() &&
      std::none_of(f.any_tags.begin(), f.any_tags.end(),
                   [&](const std::string& t) { return has(item.tags, t); })) {
    return false;
  }
  for (const auto& m : f.meta) {
    bool found = std::any_of(item.meta.begin(), item.meta.end(), [&](const memos::MetaEntry& e) {
      return e.key == m.key && e.value == m.value;
    });
    if (!found) return false;
  }
  return true;
}

// Random memories that all contain the word "memo", so a search for it
// can return every item a filter admits.
struct Population {
  std::vector<std::uint64_t> ids;
  std::int64_t first_recorded = 0, last_recorded = 0;
};

Population populate(memos::Client& c, const std::string& cube, std::mt19937& rng, int n) {
  static const char* const kWords[] = {"garden", "river",  "violin", "ticket", "lemon",
                                       "harbor", "pencil", "winter", "candle", "meadow"};
  static const char* const kTags[] = {"a", "b", "c", "d"};
  Population p;
  auto pick = [&](int below) { return static_cast<int>(rng() % static_cast<unsigned>(below)); };
  const std::int64_t base = now_ms() - 10LL * 86'400'000;
  for (int i = 0; i < n; ++i) {
    memos::NewItem item;
    item.text =
        "memo " + std::string(kWords[pick(10)]) + " " + kWords[pick(10)] + " " + std::to_string(i);
    for (const char* t : kTags)
      if (pick(3) == 0) item.tags.push_back(t);
    if (pick(2) == 0) item.meta.push_back({"color", pick(2) ? "red" : "blue"});
    item.importance = static_cast<float>(pick(10)) / 10;
    if (pick(3) == 0) item.valid_from_ms = base + pick(20) * 86'400'000LL;  // some in the future
    if (pick(4) == 0) item.valid_to_ms = base + (10 + pick(10)) * 86'400'000LL + 1;
    if (item.valid_to_ms && item.valid_from_ms >= item.valid_to_ms) item.valid_to_ms = 0;
    if (i > 5 && pick(10) == 0) item.supersedes = p.ids[static_cast<std::size_t>(pick(i - 1))];
    auto added = c.add(cube, item);
    if (!added.ok()) continue;  // e.g. a supersede that would start too early
    p.ids.push_back(added->id);
  }
  // Changes after the fact: states, edits, deletions.
  for (std::uint64_t id : p.ids) {
    switch (pick(12)) {
      case 0:
        c.set_state(cube, id, memos::State::archived);
        break;
      case 1:
        c.set_state(cube, id, memos::State::frozen);
        break;
      case 2:
        c.remove(cube, id);
        break;
      case 3:
        c.update(cube, id, {"memo rewritten " + std::to_string(id), {{"b"}}, {}});
        break;
      default:
        break;
    }
  }
  return p;
}

memos::SearchOptions random_filter(std::mt19937& rng, std::int64_t first, std::int64_t last) {
  auto pick = [&](int below) { return static_cast<int>(rng() % static_cast<unsigned>(below)); };
  static const char* const kTags[] = {"a", "b", "c", "d"};
  memos::SearchOptions f;
  f.k = 1000;
  if (pick(3) == 0) f.tags.push_back(kTags[pick(4)]);
  if (pick(3) == 0) {
    int one = pick(4);
    f.any_tags.push_back(kTags[one]);
    f.any_tags.push_back(kTags[(one + 1 + pick(3)) % 4]);
  }
  if (pick(4) == 0) f.meta.push_back({"color", pick(2) ? "red" : "blue"});
  if (pick(4) == 0) f.include_archived = true;
  if (pick(5) == 0) f.states = {memos::State::frozen, memos::State::active};
  if (pick(6) == 0) f.states = {memos::State::archived};
  const std::int64_t day = 86'400'000;
  const std::int64_t now = now_ms();
  if (pick(4) == 0) f.as_of_ms = now - 10 * day + pick(20) * day;
  std::int64_t span = std::max<std::int64_t>(last - first, 1);
  if (pick(4) == 0) f.recorded_since_ms = first + pick(100) * span / 100;
  if (pick(4) == 0) f.recorded_until_ms = f.recorded_since_ms + 1 + pick(100) * span / 100;
  if (pick(4) == 0) {
    f.valid_since_ms = now - 10 * day + pick(10) * day;
    f.valid_until_ms = f.valid_since_ms + (1 + pick(10)) * day;
  }
  if (pick(8) == 0) f.tiers = {memos::Tier::plaintext};
  if (pick(12) == 0) f.tiers = {memos::Tier::activation};
  return f;
}

// Every live head version of the cube, by id.
std::map<std::uint64_t, memos::Item> heads(memos::Client& c, const std::string& cube,
                                           const std::vector<std::uint64_t>& ids) {
  std::map<std::uint64_t, memos::Item> out;
  for (std::uint64_t id : ids) {
    auto item = c.get(cube, id);
    if (item.ok()) out[id] = *item;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_mode_finds_the_memory_and_explains_its_ranking) {
  Daemon d;
  auto c = d.client();
  auto cube = c->cube_create("notes");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->default_retriever == memos::SearchMode::hybrid);
  BOOST_TEST(cube->language == "english");
  for (const char* text :
       {"Maya is allergic to peanuts and cashews", "Maya plays the violin on Sunday mornings",
        "The car needs new tyres before winter", "Jonas runs a bakery in Lyon"}) {
    BOOST_REQUIRE(c->add("notes", {text, {}}).ok());
  }
  for (memos::SearchMode mode : kModes) {
    memos::SearchOptions o;
    o.k = 3;
    o.mode = mode;
    o.explain = true;
    auto hits = c->search("notes", "which nuts is Maya allergic to", o);
    BOOST_REQUIRE_MESSAGE(hits.ok(), mode << ": " << why(hits));
    BOOST_REQUIRE(!hits->empty());
    BOOST_TEST(hits->front().item.text == "Maya is allergic to peanuts and cashews", mode);
    BOOST_TEST(hits->front().cube == "notes");
    BOOST_REQUIRE(!hits->front().ranks.empty());
    BOOST_TEST(hits->front().ranks.front().retriever == mode);
    BOOST_TEST(hits->front().ranks.front().rank == 1u);
    if (mode == memos::SearchMode::hybrid) {
      BOOST_REQUIRE(hits->front().ranks.size() == 3u);
      BOOST_TEST(hits->front().ranks[1].retriever == memos::SearchMode::dense);
      BOOST_TEST(hits->front().ranks[2].retriever == memos::SearchMode::lexical);
      BOOST_TEST(hits->front().ranks[2].rank == 1u);
    }
  }
  // Stemming: "running" finds "runs" lexically.
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  auto runs = c->search("notes", "running", lexical);
  BOOST_REQUIRE(runs.ok());
  BOOST_REQUIRE(runs->size() == 1u);
  BOOST_TEST(runs->front().item.text == "Jonas runs a bakery in Lyon");
  // cube show says what each retriever holds.
  auto shown = c->cube_show("notes");
  BOOST_REQUIRE(shown.ok());
  BOOST_TEST(shown->indexes.find("dense: exact, 4 documents") != std::string::npos, shown->indexes);
  BOOST_TEST(shown->indexes.find("lexical: 4 documents") != std::string::npos, shown->indexes);
  // Without explain, no ranks.
  auto plain = c->search("notes", "violin");
  BOOST_REQUIRE(plain.ok());
  BOOST_TEST(plain->front().ranks.empty());
}

BOOST_AUTO_TEST_CASE(filters_match_a_brute_force_scan_in_every_mode) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("f").ok());
  std::mt19937 rng(20261127);
  Population p = populate(*c, "f", rng, 160);
  auto items = heads(*c, "f", p.ids);
  std::int64_t first = INT64_MAX, last = 0;
  for (const auto& [id, item] : items) {
    first = std::min(first, item.recorded_at_ms);
    last = std::max(last, item.recorded_at_ms);
  }
  int checked = 0, nonempty = 0;
  for (int round = 0; round < 60; ++round) {
    memos::SearchOptions f = random_filter(rng, first, last);
    const std::int64_t before = now_ms();
    std::set<std::uint64_t> expected;
    for (const auto& [id, item] : items) {
      if (admitted(item, f, before)) expected.insert(id);
    }
    for (memos::SearchMode mode : kModes) {
      f.mode = mode;
      auto hits = c->search("f", "memo", f);
      BOOST_REQUIRE_MESSAGE(hits.ok(), mode << ": " << why(hits));
      std::set<std::uint64_t> got = ids_of(*hits);
      BOOST_TEST(got == expected, "mode " << mode << ", round " << round);
      if (got != expected) {
        for (const auto& [id, item] : items) {
          if (got.count(id) != expected.count(id)) {
            BOOST_TEST_MESSAGE(
                "  " << (got.count(id) ? "unexpected " : "missing ") << id << " state "
                     << static_cast<int>(item.state) << " valid [" << item.valid_from_ms << ", "
                     << item.valid_to_ms << ") recorded " << item.recorded_at_ms << " expires "
                     << item.expires_at_ms << " filter as_of " << f.as_of_ms << " rec ["
                     << f.recorded_since_ms << ", " << f.recorded_until_ms << ") valid ["
                     << f.valid_since_ms << ", " << f.valid_until_ms << ")");
          }
        }
      }
      ++checked;
    }
    if (!expected.empty()) ++nonempty;
  }
  BOOST_TEST(checked == 180);
  BOOST_TEST(nonempty > 20);  // the filters are not all trivially empty
  // Deleted items never come back, whatever is asked.
  memos::SearchOptions all;
  all.k = 1000;
  all.states = {memos::State::active, memos::State::archived, memos::State::frozen};
  for (memos::SearchMode mode : kModes) {
    all.mode = mode;
    auto hits = c->search("f", "memo", all);
    BOOST_REQUIRE(hits.ok());
    for (const auto& h : *hits) BOOST_TEST(!h.item.deleted);
    std::set<std::uint64_t> expected;
    for (const auto& [id, item] : items) {
      if (admitted(item, all, now_ms())) expected.insert(id);
    }
    BOOST_TEST(ids_of(*hits) == expected);
  }
}

BOOST_AUTO_TEST_CASE(plugin_settings_from_the_configuration_reach_the_retriever) {
  // A low HNSW threshold: the cube's dense index becomes a graph early.
  Daemon d("[plugins.settings.faiss-retriever]\nhnsw_threshold = 50\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("g").ok());
  for (int i = 0; i < 120; ++i)
    BOOST_REQUIRE(c->add("g", {"graph memo " + std::to_string(i), {}}).ok());
  std::string indexes;
  for (int i = 0; i < 200 && indexes.find("dense: hnsw") == std::string::npos; ++i) {
    indexes = c->cube_show("g")->indexes;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(indexes.find("dense: hnsw, 120 documents") != std::string::npos, indexes);
  memos::SearchOptions o;
  o.mode = memos::SearchMode::dense;
  o.k = 200;
  auto hits = c->search("g", "graph memo", o);
  BOOST_REQUIRE(hits.ok());
  BOOST_TEST(hits->size() == 120u);
  // A setting the plugin refuses stops memosd with a clear error.
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[plugins.settings.faiss-retriever]\nhnsw_m = \"many\"\n";
  MemosdProcess bad(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_TEST(!bad.start(5s));
  BOOST_TEST(bad.log().find("hnsw_m") != std::string::npos, bad.log());
}

// Writes are answered once durable and indexed behind the answer. A search
// with `fresh` sees every write answered before it, in every mode, however
// far behind the indexer is; a write with wait_searchable is searchable when
// answered; and the backlog drains, bounded by index_max_backlog, with the
// lag reported by status.
BOOST_AUTO_TEST_CASE(writes_answered_on_durability_are_seen_by_fresh_searches) {
  // A tiny bound: the writer keeps waiting for the indexer.
  Daemon d("[search]\nindex_max_backlog = 8\n");
  auto c = d.client(Daemon::Ack::durable);
  BOOST_REQUIRE(c->cube_create("f").ok());
  constexpr int kAdds = 600;
  std::vector<std::future<memos::Result<memos::Item>>> adds;
  for (int i = 0; i < kAdds; ++i) {
    adds.push_back(c->add_async("f", {"pipelined note number n" + std::to_string(i) + "x"}));
  }
  std::vector<std::uint64_t> ids;
  for (auto& f : adds) {
    auto r = f.get();
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    ids.push_back(r->id);
  }
  // Each of the last writes is found at once by a fresh search, in every mode.
  for (memos::SearchMode mode : kModes) {
    memos::SearchOptions o;
    o.mode = mode;
    o.fresh = true;
    o.k = 1;
    auto hits = c->search("f", "n" + std::to_string(kAdds - 1) + "x", o);
    BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
    BOOST_REQUIRE_EQUAL(hits->size(), 1u);
    if (mode != memos::SearchMode::dense)  // the hash embedder ranks by shared words
      BOOST_TEST(hits->front().item.id == ids.back(), mode);
  }
  memos::SearchOptions every;
  every.mode = memos::SearchMode::lexical;
  every.fresh = true;
  every.k = kAdds;
  auto all = c->search("f", "pipelined note", every);
  BOOST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == static_cast<std::size_t>(kAdds));
  // Answered once searchable: a plain search right after finds it.
  memos::NewItem waited{"a waited for zebra crossing"};
  waited.wait_searchable = true;
  auto w = c->add("f", waited);
  BOOST_REQUIRE(w.ok());
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  auto found = c->search("f", "zebra crossing", lexical);
  BOOST_REQUIRE(found.ok());
  BOOST_REQUIRE_EQUAL(found->size(), 1u);
  BOOST_TEST(found->front().item.id == w->id);
  // Removes too: a fresh search no longer finds the item.
  BOOST_REQUIRE(c->remove("f", w->id).ok());
  lexical.fresh = true;
  auto gone = c->search("f", "zebra crossing", lexical);
  BOOST_REQUIRE(gone.ok());
  BOOST_TEST(gone->empty());
  // The lag is reported (memosd's own uid is an admin).
  auto st = c->status();
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->admin);
  BOOST_TEST(st->index_backlog == 0u);
  BOOST_TEST(st->freshness_p99_ms > 0);
  BOOST_TEST(st->freshness_p50_ms <= st->freshness_p99_ms);
}

BOOST_AUTO_TEST_CASE(a_search_may_span_several_cubes_of_the_tenant) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("work").ok());
  BOOST_REQUIRE(c->cube_create("home").ok());
  BOOST_REQUIRE(c->add("work", {"the quarterly report is due on Friday", {}}).ok());
  BOOST_REQUIRE(c->add("home", {"the dentist appointment is on Friday", {}}).ok());
  for (memos::SearchMode mode : kModes) {
    memos::SearchOptions o;
    o.mode = mode;
    o.more_cubes = {"home"};
    auto hits = c->search("work", "what happens on Friday", o);
    BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
    BOOST_REQUIRE(hits->size() == 2u);
    std::set<std::string> cubes{(*hits)[0].cube, (*hits)[1].cube};
    BOOST_TEST((cubes == std::set<std::string>{"work", "home"}));
  }
  memos::SearchOptions missing;
  missing.more_cubes = {"nope"};
  BOOST_TEST(c->search("work", "Friday", missing).error().code == memos::ErrorCode::not_found);
}

BOOST_AUTO_TEST_CASE(bad_search_requests_get_clear_errors) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  auto refused = [&](memos::SearchOptions o, const std::string& query = "q") {
    auto r = c->search("c", query, o);
    return !r.ok() && (r.error().code == memos::ErrorCode::bad_request ||
                       r.error().code == memos::ErrorCode::too_large);
  };
  // The SDK sends only the modes it knows; a client of another make may
  // send any name.
  auto unknown_mode = memos::testing::raw_request(d.process->socket(), [](auto r) {
    auto s = r.initSearch();
    s.setCube("c");
    s.setQuery("q");
    s.setMode("telepathy");
  });
  BOOST_TEST(unknown_mode.is_error);
  BOOST_TEST((unknown_mode.code == memos::wire::ErrorCode::BAD_REQUEST), unknown_mode.message);
  memos::SearchOptions o;
  o.states = {memos::State::deleted};
  BOOST_TEST(refused(o));
  o = {};
  o.recorded_since_ms = 10;
  o.recorded_until_ms = 10;
  BOOST_TEST(refused(o));
  o = {};
  o.valid_since_ms = -1;
  BOOST_TEST(refused(o));
  o = {};
  o.recency_weight = std::numeric_limits<float>::quiet_NaN();
  BOOST_TEST(refused(o));
  o = {};
  for (int i = 0; i < 70; ++i) o.more_cubes.push_back("c" + std::to_string(i));
  BOOST_TEST(refused(o));
  o = {};
  o.more_cubes = {"../etc"};
  BOOST_TEST(refused(o));
  o = {};
  o.tags = {std::string(100000, 'x')};
  BOOST_TEST(refused(o));
  BOOST_TEST(refused({}, std::string(2 << 20, 'q')));
  // Hostile query text is searched, not parsed as syntax.
  for (const char* query : {"\"unbalanced", "AND OR NOT", "*?~^", "((((", "", "\xff\xfe"}) {
    for (memos::SearchMode mode : kModes) {
      memos::SearchOptions m;
      m.mode = mode;
      auto r = c->search("c", query, m);
      BOOST_TEST((r.ok() || r.error().code == memos::ErrorCode::bad_request), query);
    }
  }
  auto unknown_retriever = memos::testing::raw_request(d.process->socket(), [](auto r) {
    auto create = r.initCubeCreate();
    create.setName("x");
    create.setRetriever("telepathy");
  });
  BOOST_TEST(unknown_retriever.is_error);
  BOOST_TEST((unknown_retriever.code == memos::wire::ErrorCode::BAD_REQUEST),
             unknown_retriever.message);
  BOOST_TEST(c->cube_show("x").error().code == memos::ErrorCode::not_found);
  BOOST_TEST(c->cube_create("y", std::nullopt, "klingon").error().code ==
             memos::ErrorCode::bad_request);
  auto french = c->cube_create("z", memos::SearchMode::lexical, "french");
  BOOST_REQUIRE(french.ok());
  BOOST_TEST(french->language == "french");
  BOOST_REQUIRE(c->add("z", {"les enfants mangeaient des pommes", {}}).ok());
  auto stemmed = c->search("z", "enfant mange");
  BOOST_REQUIRE(stemmed.ok());
  BOOST_TEST(stemmed->size() == 1u);
}

// Connects as other uids: needs root.
BOOST_AUTO_TEST_CASE(tenants_never_see_each_other_in_any_mode,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  Daemon d;
  chmod(d.folder.c_str(), 0755);
  // Each tenant fills a cube of the same name with its own memories, then
  // searches with random filters in every mode: every hit must be its own.
  auto run_tenant = [&](std::uint32_t seed) -> int {
    auto connected = memos::Client::connect(d.process->socket());
    if (!connected.ok()) return 11;
    auto& c = *connected.value();
    if (!c.cube_create("shared").ok()) return 12;
    std::mt19937 rng(seed);
    Population p = populate(c, "shared", rng, 60);
    std::set<std::uint64_t> mine(p.ids.begin(), p.ids.end());
    for (int round = 0; round < 30; ++round) {
      memos::SearchOptions f = random_filter(rng, 0, now_ms());
      f.include_archived = true;
      for (memos::SearchMode mode : kModes) {
        f.mode = mode;
        auto hits = c.search("shared", "memo", f);
        if (!hits.ok()) return 13;
        for (const auto& h : *hits)
          if (!mine.count(h.item.id)) return 14;
      }
    }
    memos::SearchOptions other;
    other.more_cubes = {"root-only"};
    auto r = c.search("shared", "memo", other);
    if (getuid() != 0 && (r.ok() || r.error().code != memos::ErrorCode::not_found)) return 15;
    return 0;
  };
  auto root = d.client();
  BOOST_REQUIRE(root->cube_create("root-only").ok());
  // Both tenants at once: the child runs while root does.
  memos::testing::ChildAs child(65534, [&] {
    int failed = run_tenant(2);
    return failed == 0 ? std::string() : "check " + std::to_string(failed);
  });
  int mine = run_tenant(1);
  BOOST_TEST(mine == 0);
  BOOST_TEST(child.report() == "");
}

BOOST_AUTO_TEST_CASE(indexes_come_back_after_kill_during_snapshots_and_damage) {
  // Snapshots every second, so kills land before, during and after them.
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[search]\nsnapshot_interval_s = 1\n";
  MemosdProcess process(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  std::mt19937 rng(7);
  std::map<std::uint64_t, std::string> live;  // acknowledged, not removed
  std::set<std::uint64_t> removed;
  int serial = 0;
  auto verify = [&](const char* when) {
    auto connected = memos::Client::connect(process.socket());
    BOOST_REQUIRE(connected.ok());
    auto& c = *connected.value();
    for (memos::SearchMode mode : kModes) {
      memos::SearchOptions all;
      all.k = 1000;
      all.mode = mode;
      all.fresh = true;  // writes are answered before they are indexed
      auto hits = c.search("k", "entry", all);
      BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
      std::set<std::uint64_t> expected;
      for (const auto& [id, text] : live) expected.insert(id);
      BOOST_TEST(ids_of(*hits) == expected, when << ", mode " << mode);
    }
  };
  // A writer adds and removes (with idempotency keys) while the daemon is
  // killed at a random moment; the write in flight at the kill is replayed
  // with its key after the restart, so the ledger is exact.
  struct Pending {
    bool add = false;
    std::string key, text;
    std::uint64_t id = 0;
  };
  auto replay = [&](memos::Client& c, const Pending& p) {
    if (p.add) {
      auto added = c.add("k", {p.text, {}, {}, 0, 0, 0, 0, "", {}, 0, p.key});
      BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
      live[added->id] = p.text;
    } else {
      auto gone = c.remove("k", p.id, p.key);
      BOOST_REQUIRE_MESSAGE(gone.ok(), why(gone));
      live.erase(p.id);
      removed.insert(p.id);
    }
  };
  for (int round = 0; round < 6; ++round) {
    BOOST_REQUIRE_MESSAGE(process.start(), process.log());
    auto connected = memos::Client::connect(process.socket());
    BOOST_REQUIRE(connected.ok());
    auto& c = *connected.value();
    if (round == 0) BOOST_REQUIRE(c.cube_create("k").ok());
    std::optional<Pending> pending;
    std::atomic<bool> stop{false};
    std::mutex ledger;
    std::thread writer([&] {
      std::mt19937 wrng(static_cast<unsigned>(round));
      for (int n = 0; n < 120 && !stop; ++n) {
        Pending p;
        {
          std::lock_guard lock(ledger);
          p.key = "op-" + std::to_string(serial++);
          p.add = live.empty() || wrng() % 5 != 0;
          if (p.add) {
            p.text = "entry number " + p.key;
          } else {
            auto victim = live.begin();
            std::advance(victim, static_cast<long>(wrng() % live.size()));
            p.id = victim->first;
          }
          pending = p;
        }
        bool ok;
        std::uint64_t id = 0;
        if (p.add) {
          auto added = c.add("k", {p.text, {}, {}, 0, 0, 0, 0, "", {}, 0, p.key});
          ok = added.ok();
          if (ok) id = added->id;
        } else {
          ok = c.remove("k", p.id, p.key).ok();
        }
        std::lock_guard lock(ledger);
        if (!ok) return;  // killed: `pending` stays for the replay
        if (p.add) {
          live[id] = p.text;
        } else {
          live.erase(p.id);
          removed.insert(p.id);
        }
        pending.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(wrng() % 15));
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 1800));
    BOOST_TEST(process.stop(SIGKILL) == 128 + SIGKILL);
    stop = true;
    writer.join();
    BOOST_REQUIRE_MESSAGE(process.start(), process.log());
    if (pending) {
      auto again = memos::Client::connect(process.socket());
      BOOST_REQUIRE(again.ok());
      replay(*again.value(), *pending);
    }
    verify("after kill -9");
    BOOST_TEST(process.stop() == 0);
  }
  // A clean stop wrote snapshots; the next start opens them as they are.
  const std::size_t mark = process.log().size();
  BOOST_REQUIRE(process.start());
  BOOST_TEST(process.log().substr(mark).find("0 cube(s) rebuilt") != std::string::npos);
  verify("after a clean restart");
  BOOST_TEST(process.stop() == 0);
  // Damage every snapshot file: the indexes are rebuilt from the store.
  namespace fs = std::filesystem;
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(process.data_dir() + "/index")) {
    if (!e.is_regular_file()) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(e.file_size() / 2));
    f.write("\xde\xad\xbe\xef garbage", 12);
    ++damaged;
  }
  BOOST_TEST(damaged > 0);
  BOOST_REQUIRE_MESSAGE(process.start(), process.log());
  verify("after damaged snapshots");
  BOOST_TEST(process.stop() == 0);
}
