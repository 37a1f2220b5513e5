#define BOOST_TEST_MODULE xapian_retriever
#include <boost/test/unit_test.hpp>

#include <capnp/message.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/retriever_plugin.h"

namespace fs = std::filesystem;
namespace wire = memos::plugin_wire;
using memos::lexical::Bm25Params;
using memos::lexical::Error;
using memos::lexical::LexicalCollection;
using memos::lexical::LexicalDocument;
using memos::lexical::LexicalHit;
using memos::retrieval::Attributes;
using memos::retrieval::FilterSpec;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "xapian-retriever-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// What a default Filter gives: active items valid and unexpired now.
FilterSpec default_filter() {
  FilterSpec f;
  f.states = {"active"};
  f.now_ms = kNow;
  f.as_of_ms = kNow;
  return f;
}

LexicalDocument doc(std::uint64_t id, std::string text, Attributes a = {}) {
  return LexicalDocument{id, std::move(text), std::move(a)};
}

std::vector<std::uint64_t> ids_of(const std::vector<LexicalHit>& hits) {
  std::vector<std::uint64_t> ids;
  for (const auto& h : hits) ids.push_back(h.id);
  return ids;
}

std::set<std::uint64_t> id_set(const std::vector<LexicalHit>& hits) {
  auto v = ids_of(hits);
  return {v.begin(), v.end()};
}

bool best_first(const std::vector<LexicalHit>& hits) {
  for (std::size_t i = 1; i < hits.size(); ++i) {
    if (hits[i].score > hits[i - 1].score) return false;
  }
  return true;
}

// Drives the plugin class directly with Cap'n Proto messages, as memosd does.
class Harness {
 public:
  explicit Harness(std::map<std::string, std::string> settings)
      : plugin_(memos::plugin_sdk::Config(std::move(settings))) {
    plugin_.attach(&host_);
  }

  struct Answer {
    memos_status status;
    std::unique_ptr<capnp::MallocMessageBuilder> message;
    wire::PluginResponse::Reader reply() const {
      return message->getRoot<wire::PluginResponse>().asReader();
    }
    std::string error() const {
      return reply().isError() ? std::string(reply().getError().getMessage()) : "";
    }
    std::vector<std::uint64_t> hits() const {
      std::vector<std::uint64_t> ids;
      if (reply().isHits())
        for (auto h : reply().getHits()) ids.push_back(h.getId());
      return ids;
    }
  };

  Answer call(const std::function<void(wire::PluginRequest::Builder)>& build) {
    capnp::MallocMessageBuilder request;
    build(request.initRoot<wire::PluginRequest>());
    Answer a{MEMOS_OK, std::make_unique<capnp::MallocMessageBuilder>()};
    a.status = plugin_.handle(request.getRoot<wire::PluginRequest>().asReader(),
                              a.message->initRoot<wire::PluginResponse>());
    return a;
  }

  Answer open(std::uint64_t collection, const std::string& language = "") {
    return call([&](auto r) {
      auto o = r.initOpen();
      o.setCollection(collection);
      o.setLanguage(language);
    });
  }
  struct Tagged {
    std::uint64_t id;
    std::string text;
    std::vector<std::string> tags;
  };
  Answer index(std::uint64_t collection, std::uint64_t version,
               const std::vector<std::pair<std::uint64_t, std::string>>& docs) {
    std::vector<Tagged> untagged;
    for (const auto& [id, text] : docs) untagged.push_back({id, text, {}});
    return index_tagged(collection, version, untagged);
  }
  Answer search(std::uint64_t collection, const std::string& query, std::uint32_t k = 10) {
    return call([&](auto r) {
      auto s = r.initSearch();
      s.setCollection(collection);
      s.setQuery(query);
      s.setK(k);
      s.initFilter().setNowMs(kNow);
    });
  }
  Answer save(std::uint64_t collection) {
    return call([&](auto r) { r.setSave(collection); });
  }
  Answer index_tagged(std::uint64_t collection, std::uint64_t version,
                      const std::vector<Tagged>& docs) {
    return call([&](auto r) {
      auto i = r.initIndex();
      i.setCollection(collection);
      i.setVersion(version);
      auto list = i.initDocuments(static_cast<unsigned>(docs.size()));
      for (unsigned n = 0; n < docs.size(); ++n) {
        list[n].setId(docs[n].id);
        list[n].setText(docs[n].text);
        list[n].setState("active");
        list[n].setTier("plaintext");
        auto tags = list[n].initTags(static_cast<unsigned>(docs[n].tags.size()));
        for (unsigned t = 0; t < docs[n].tags.size(); ++t) tags.set(t, docs[n].tags[t]);
      }
    });
  }
  Answer remove(std::uint64_t collection, std::uint64_t version,
                const std::vector<std::uint64_t>& ids) {
    return call([&](auto r) {
      auto rm = r.initRemove();
      rm.setCollection(collection);
      rm.setVersion(version);
      auto list = rm.initIds(static_cast<unsigned>(ids.size()));
      for (unsigned n = 0; n < ids.size(); ++n) list.set(n, ids[n]);
    });
  }
  // Documents carrying `tag`.
  Answer search_tag(std::uint64_t collection, const std::string& query, const std::string& tag,
                    std::uint32_t k = 10) {
    return call([&](auto r) {
      auto s = r.initSearch();
      s.setCollection(collection);
      s.setQuery(query);
      s.setK(k);
      auto f = s.initFilter();
      f.setNowMs(kNow);
      f.initAllTags(1).set(0, tag);
    });
  }
  Answer export_snapshot(std::uint64_t collection, const std::string& path) {
    return call([&](auto r) {
      auto x = r.initExportSnapshot();
      x.setCollection(collection);
      x.setPath(path);
    });
  }
  Answer import_snapshot(std::uint64_t collection, const std::string& path) {
    return call([&](auto r) {
      auto x = r.initImportSnapshot();
      x.setCollection(collection);
      x.setPath(path);
    });
  }

  std::vector<std::string> logged() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

 private:
  static void log_fn(void* self, int, const char* message, size_t size) {
    auto* h = static_cast<Harness*>(self);
    std::lock_guard lock(h->log_mutex_);
    h->log_.emplace_back(message, size);
  }

  std::mutex log_mutex_;
  std::vector<std::string> log_;
  memos_host_api api_{
      sizeof(memos_host_api), MEMOS_PLUGIN_ABI_MINOR, this, &log_fn, nullptr, nullptr, nullptr};
  memos::plugin_sdk::Host host_{&api_};
  memos::lexical::XapianRetriever plugin_;
};

}  // namespace

// ---- (1) ranking sanity -------------------------------------------------------

BOOST_AUTO_TEST_CASE(bm25_ranks_the_rare_term_first) {
  LexicalCollection c("", "english", Bm25Params{});
  c.index({doc(1, "apple pie with cream for dessert"), doc(2, "apple juice with ice for breakfast"),
           doc(3, "apple tart with quince for dessert"), doc(4, "apple cake with nuts for tea"),
           doc(5, "apple crumble with custard for lunch")},
          5);
  auto hits = c.search("apple quince", 10, default_filter());
  BOOST_TEST_REQUIRE(hits.size() == 5u);
  BOOST_TEST(hits[0].id == 3u);
  BOOST_TEST(hits[0].score > hits[1].score);
  BOOST_TEST(best_first(hits));
}

BOOST_AUTO_TEST_CASE(stemming_finds_other_forms) {
  LexicalCollection c("", "en", Bm25Params{});  // Xapian's short name for english
  c.index({doc(1, "She runs along the river every morning"), doc(2, "I like to run"),
           doc(3, "We went swimming in the pool"), doc(4, "A runner's guide")},
          1);
  auto found = id_set(c.search("running", 10, default_filter()));
  BOOST_TEST(found.count(1) == 1u);
  BOOST_TEST(found.count(2) == 1u);
  BOOST_TEST(found.count(3) == 0u);
  BOOST_TEST(id_set(c.search("swim", 10, default_filter())) == std::set<std::uint64_t>{3});
}

BOOST_AUTO_TEST_CASE(stop_words_are_ignored) {
  LexicalCollection c("", "english", Bm25Params{});
  c.index({doc(1, "the zebra is in the zoo"), doc(2, "there is a lion"), doc(3, "of the and")}, 1);
  // Only stop words: no hits, no error.
  BOOST_TEST(c.search("the of and is there", 10, default_filter()).empty());
  // A stop word adds nothing to the score.
  auto with = c.search("the zebra", 10, default_filter());
  auto without = c.search("zebra", 10, default_filter());
  BOOST_TEST_REQUIRE(with.size() == 1u);
  BOOST_TEST_REQUIRE(without.size() == 1u);
  BOOST_TEST(with[0].id == 1u);
  BOOST_TEST(with[0].score == without[0].score);
}

BOOST_AUTO_TEST_CASE(natural_questions_find_their_answer) {
  LexicalCollection c("", "english", Bm25Params{});
  c.index({doc(1, "Caroline went to an LGBTQ support group on 7 May 2023."),
           doc(2, "Melanie painted a sunrise over the lake."),
           doc(3, "Caroline is researching adoption agencies."),
           doc(4, "The support team answered the ticket in a day."),
           doc(5, "Melanie's kids love the group swimming lessons.")},
          1);
  auto hits = c.search("When did Caroline go to the LGBTQ support group?", 3, default_filter());
  BOOST_TEST_REQUIRE(!hits.empty());
  BOOST_TEST(hits[0].id == 1u);
  BOOST_TEST(hits.size() <= 3u);
  // Questions with quotes, apostrophes and odd punctuation parse too.
  BOOST_TEST(c.search("What's \"Caroline's\" plan -- adoption??", 3, default_filter())[0].id == 3u);
}

// ---- (2) filters against brute force ------------------------------------------

namespace {

// With a path, the documents end up in both layers: the first batch merged
// to disk, then removals (buffered deletions on disk) and replacements (new
// versions in memory, old ones deleted on disk).
void check_filters_against_brute_force(const std::string& path) {
  const std::vector<std::string> vocabulary = {
      "alpha", "bravo",  "charlie", "delta",  "echo",  "foxtrot", "golf",
      "hotel", "india",  "juliet",  "kilo",   "lima",  "mike",    "november",
      "oscar", "quebec", "romeo",   "sierra", "tango", "uniform"};
  const std::vector<std::string> tags = {"t0", "t1", "t2", "t3"};
  const std::vector<std::string> states = {"active", "archived", "frozen"};
  const std::vector<std::string> tiers = {"plaintext", "activation", "parametric"};
  Xapian::Stem stem("english");
  std::mt19937_64 rng(20240611);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  auto time = [&]() { return static_cast<std::int64_t>(1000 + pick(1000)); };

  struct Truth {
    std::set<std::string> stems;
    Attributes attributes;
  };
  std::map<std::uint64_t, Truth> truth;

  auto random_document = [&](std::uint64_t id) {
    std::string text;
    Truth t;
    for (std::size_t n = 1 + pick(6); n > 0; --n) {
      const std::string& w = vocabulary[pick(vocabulary.size())];
      text += (text.empty() ? "" : " ") + w;
      t.stems.insert(stem(w));
    }
    Attributes& a = t.attributes;
    for (const auto& tag : tags)
      if (chance(35)) a.tags.push_back(tag);
    if (chance(50)) a.meta.emplace_back("colour", chance(50) ? "red" : "blue");
    if (chance(30)) a.meta.emplace_back("source", chance(50) ? "chat" : "mail");
    a.state = chance(70) ? "active" : states[pick(states.size())];
    a.tier = chance(70) ? "plaintext" : tiers[pick(tiers.size())];
    a.valid_from_ms = time();
    a.valid_to_ms = chance(60) ? 0 : a.valid_from_ms + static_cast<std::int64_t>(pick(800));
    a.recorded_at_ms = time();
    a.expires_at_ms = chance(70) ? 0 : time();
    truth[id] = t;
    return doc(id, text, a);
  };

  auto random_filter = [&]() {
    FilterSpec f;
    if (chance(30)) f.all_tags.push_back(tags[pick(tags.size())]);
    if (chance(30))
      for (std::size_t n = 1 + pick(2); n > 0; --n) f.any_tags.push_back(tags[pick(tags.size())]);
    if (chance(25)) f.meta.emplace_back("colour", chance(50) ? "red" : "blue");
    if (chance(20))
      for (std::size_t n = 1 + pick(2); n > 0; --n) f.tiers.push_back(tiers[pick(tiers.size())]);
    f.states.push_back(chance(70) ? "active" : states[pick(states.size())]);
    if (chance(30)) f.states.push_back(states[pick(states.size())]);
    f.now_ms = chance(50) ? 5000 : time();
    f.as_of_ms = chance(50) ? f.now_ms : time();
    if (chance(25)) f.recorded_from_ms = time();
    if (chance(25)) f.recorded_to_ms = time();
    if (chance(20)) f.valid_from_ms = time();
    if (chance(20)) f.valid_to_ms = time();
    return f;
  };

  LexicalCollection c(path, "english", Bm25Params{});
  std::vector<LexicalDocument> batch;
  for (std::uint64_t id = 1; id <= 400; ++id) batch.push_back(random_document(id * 7919));
  c.index(batch, 1);
  c.merge();  // in memory: nothing to do
  // Some replaced, some removed, before and between searches.
  std::vector<std::uint64_t> gone;
  for (std::uint64_t id = 1; id <= 400; id += 9) gone.push_back(id * 7919);
  c.remove(gone, 2);
  for (auto id : gone) truth.erase(id);
  batch.clear();
  for (std::uint64_t id = 3; id <= 400; id += 11) batch.push_back(random_document(id * 7919));
  c.index(batch, 3);
  BOOST_TEST(c.info().documents == truth.size());

  int nonempty = 0;
  for (int round = 0; round < 400; ++round) {
    FilterSpec f = random_filter();
    std::string query;
    std::set<std::string> query_stems;
    for (std::size_t n = 1 + pick(3); n > 0; --n) {
      const std::string& w = vocabulary[pick(vocabulary.size())];
      query += (query.empty() ? "" : " ") + w;
      query_stems.insert(stem(w));
    }
    std::set<std::uint64_t> expected;
    for (const auto& [id, t] : truth) {
      bool matches = std::any_of(query_stems.begin(), query_stems.end(),
                                 [&](const std::string& s) { return t.stems.count(s) != 0; });
      if (matches && memos::retrieval::admits(t.attributes, f)) expected.insert(id);
    }
    auto hits = c.search(query, 1000, f);
    BOOST_TEST_INFO("round " << round << ", query '" << query << "'");
    BOOST_TEST(id_set(hits) == expected);
    BOOST_TEST(hits.size() == expected.size());  // no duplicates
    BOOST_TEST(best_first(hits));
    // A small k gives the best k of the same set.
    std::uint32_t k = 1 + static_cast<std::uint32_t>(pick(5));
    auto top = c.search(query, k, f);
    BOOST_TEST(top.size() == std::min<std::size_t>(k, expected.size()));
    for (std::size_t i = 0; i < top.size(); ++i) BOOST_TEST(top[i].score == hits[i].score);
    if (!expected.empty()) ++nonempty;
  }
  BOOST_TEST(nonempty > 100);  // the filters leave something to find
}

}  // namespace

BOOST_AUTO_TEST_CASE(filtered_searches_match_brute_force) {
  check_filters_against_brute_force("");
}

BOOST_AUTO_TEST_CASE(filtered_searches_match_brute_force_across_layers) {
  TempDir dir;
  check_filters_against_brute_force(dir.path("1.xapian"));
}

// ---- (3) removals, updates and unsaved changes -------------------------------------

BOOST_AUTO_TEST_CASE(removed_and_updated_documents_are_never_returned) {
  TempDir dir;
  LexicalCollection c(dir.path("1.xapian"), "english", Bm25Params{});
  c.index({doc(1, "penguins live in antarctica"), doc(2, "camels live in deserts"),
           doc(3, "penguins cannot fly")},
          1);
  // Nothing saved yet: searches see the buffered changes.
  BOOST_TEST(id_set(c.search("penguins", 10, default_filter())) == (std::set<std::uint64_t>{1, 3}));
  c.remove(std::vector<std::uint64_t>{3, 999}, 2);  // 999 was never there
  BOOST_TEST(ids_of(c.search("penguins", 10, default_filter())) == std::vector<std::uint64_t>{1});
  c.index({doc(1, "pelicans live on the coast")}, 3);  // replaced text
  BOOST_TEST(c.search("penguins", 10, default_filter()).empty());
  BOOST_TEST(ids_of(c.search("pelicans", 10, default_filter())) == std::vector<std::uint64_t>{1});
  // Replaced attributes: archived now, so a default filter skips it.
  Attributes archived;
  archived.state = "archived";
  c.index({doc(1, "pelicans live on the coast", archived)}, 4);
  BOOST_TEST(c.search("pelicans", 10, default_filter()).empty());
  FilterSpec with_archived = default_filter();
  with_archived.states.push_back("archived");
  BOOST_TEST(c.search("pelicans", 10, with_archived).size() == 1u);
  BOOST_TEST(c.info().documents == 2u);
  BOOST_TEST(c.info().version == 4u);

  // After a save, later changes are still seen before the next one.
  c.save();
  c.index({doc(4, "penguins again")}, 5);
  c.remove(std::vector<std::uint64_t>{2}, 6);
  BOOST_TEST(ids_of(c.search("penguins", 10, default_filter())) == std::vector<std::uint64_t>{4});
  BOOST_TEST(c.search("camels", 10, default_filter()).empty());
}

// ---- (3b) recent documents in memory, older ones on disk ------------------------

namespace {

// Some words, shared unevenly, so BM25's statistics matter.
std::string layered_text(std::uint64_t id, int edition = 0) {
  static const std::vector<std::string> words = {"harbour", "lantern", "meadow", "orchard",
                                                 "quarry",  "river",   "summit", "valley"};
  std::string text;
  for (std::uint64_t w = 0; w < words.size(); ++w) {
    if ((id + static_cast<std::uint64_t>(edition)) % (w + 2) == 0) text += words[w] + " ";
  }
  return text + "note " + std::to_string(id);
}

// Every query's hits in `c` equal those of `reference`, id for id, score for
// score: the layers share their statistics as one database would.
void expect_same_ranking(const LexicalCollection& c, const LexicalCollection& reference,
                         const FilterSpec& filter) {
  for (const std::string query : {"harbour", "lantern meadow", "orchard quarry river", "summit",
                                  "valley harbour note", "note"}) {
    BOOST_TEST_CONTEXT("query '" << query << "'") {
      auto got = c.search(query, 1000, filter);
      auto want = reference.search(query, 1000, filter);
      BOOST_TEST_REQUIRE(got.size() == want.size());
      BOOST_TEST(id_set(got) == id_set(want));
      BOOST_TEST(id_set(got).size() == got.size());  // none twice
      std::map<std::uint64_t, double> want_score;
      for (const auto& h : want) want_score[h.id] = h.score;
      for (const auto& h : got) {
        BOOST_TEST(h.score == want_score[h.id], boost::test_tools::tolerance(1e-9));
      }
      BOOST_TEST(best_first(got));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(layers_rank_like_one_database) {
  TempDir dir;
  LexicalCollection c(dir.path("1.xapian"), "english", Bm25Params{});
  LexicalCollection reference("", "english", Bm25Params{});
  std::vector<LexicalDocument> older, newer;
  for (std::uint64_t id = 1; id <= 120; ++id) older.push_back(doc(id, layered_text(id)));
  for (std::uint64_t id = 121; id <= 200; ++id) newer.push_back(doc(id, layered_text(id)));
  c.index(older, 1);
  c.merge();          // 1-120 on disk
  c.index(newer, 2);  // 121-200 in memory
  reference.index(older, 1);
  reference.index(newer, 2);
  expect_same_ranking(c, reference, default_filter());

  // Replaced and removed on disk and in memory alike: each id once, with its
  // latest text, and the statistics still those of the latest texts.
  std::vector<LexicalDocument> replaced;
  for (std::uint64_t id : {3, 50, 119, 150, 199}) replaced.push_back(doc(id, layered_text(id, 1)));
  const std::vector<std::uint64_t> gone = {7, 64, 130, 177, 999};
  for (LexicalCollection* x : {&c, &reference}) {
    x->index(replaced, 3);
    x->remove(gone, 4);
  }
  expect_same_ranking(c, reference, default_filter());
  BOOST_TEST(c.info().documents == reference.info().documents);

  // A merge moves the recent documents to disk: nothing changes for searches.
  c.merge();
  expect_same_ranking(c, reference, default_filter());
  // Replaced again, now that the first replacements are on disk.
  for (LexicalCollection* x : {&c, &reference}) {
    x->index({doc(3, layered_text(3, 2)), doc(121, layered_text(121, 2))}, 5);
  }
  expect_same_ranking(c, reference, default_filter());
  BOOST_TEST(c.info().documents == 200u - 4u);
  BOOST_TEST(c.info().version == 5u);
}

BOOST_AUTO_TEST_CASE(filters_apply_in_every_layer) {
  TempDir dir;
  LexicalCollection c(dir.path("1.xapian"), "english", Bm25Params{});
  Attributes red, archived;
  red.tags = {"red"};
  archived.state = "archived";
  c.index({doc(1, "kettle on disk", red), doc(2, "kettle on disk"),
           doc(3, "kettle archived", archived)},
          1);
  c.merge();
  c.index({doc(4, "kettle in memory", red), doc(5, "kettle in memory"),
           doc(6, "kettle archived in memory", archived)},
          2);
  FilterSpec only_red = default_filter();
  only_red.all_tags = {"red"};
  BOOST_TEST(id_set(c.search("kettle", 10, only_red)) == (std::set<std::uint64_t>{1, 4}));
  BOOST_TEST(id_set(c.search("kettle", 10, default_filter())) ==
             (std::set<std::uint64_t>{1, 2, 4, 5}));
  // k admitted hits, from whichever layer.
  BOOST_TEST(c.search("kettle", 2, only_red).size() == 2u);
  // Attributes changed by a replacement, across the layers.
  c.index({doc(2, "kettle on disk", red), doc(4, "kettle in memory")}, 3);
  BOOST_TEST(id_set(c.search("kettle", 10, only_red)) == (std::set<std::uint64_t>{1, 2}));
  c.merge();
  BOOST_TEST(id_set(c.search("kettle", 10, only_red)) == (std::set<std::uint64_t>{1, 2}));
  FilterSpec with_archived = default_filter();
  with_archived.states.push_back("archived");
  BOOST_TEST(id_set(c.search("archived", 10, with_archived)) == (std::set<std::uint64_t>{3, 6}));
}

// Merges while searches run: every search sees each document exactly once,
// whichever layer holds it at that moment and whatever is being replaced.
BOOST_AUTO_TEST_CASE(searches_during_merges_miss_nothing_and_see_nothing_twice) {
  TempDir dir;
  LexicalCollection c(dir.path("1.xapian"), "english", Bm25Params{});
  constexpr std::uint64_t kFixed = 300;  // always held, often replaced
  std::vector<LexicalDocument> fixed;
  for (std::uint64_t id = 1; id <= kFixed; ++id) fixed.push_back(doc(id, "pebble fixed"));
  c.index(fixed, 1);
  c.merge();

  constexpr int kRounds = 60;
  std::atomic<bool> done{false};
  std::atomic<int> merges{0};
  std::atomic<int> failures{0};
  std::thread indexer([&] {
    std::mt19937_64 rng(7);
    for (int round = 0; round < kRounds; ++round) {
      std::vector<LexicalDocument> batch;
      for (int i = 0; i < 40; ++i) {  // replacements of fixed documents
        batch.push_back(doc(1 + rng() % kFixed, "pebble fixed round " + std::to_string(round)));
      }
      for (int i = 0; i < 20; ++i) {  // and newcomers, some removed again
        std::uint64_t id = 1000 + static_cast<std::uint64_t>(round * 20 + i);
        batch.push_back(doc(id, "pebble newcomer"));
      }
      c.index(batch, static_cast<std::uint64_t>(2 + round));
      std::vector<std::uint64_t> gone = {1000 + static_cast<std::uint64_t>(round * 20)};
      c.remove(gone, static_cast<std::uint64_t>(2 + round));
    }
    done = true;
  });
  std::thread merger([&] {
    while (!done) {
      c.merge();
      ++merges;
    }
  });
  std::thread searcher([&] {
    while (!done) {
      auto hits = c.search("pebble", 100000, default_filter());
      auto ids = ids_of(hits);
      std::set<std::uint64_t> unique(ids.begin(), ids.end());
      bool all_fixed = true;
      for (std::uint64_t id = 1; id <= kFixed; ++id) all_fixed = all_fixed && unique.count(id) == 1;
      if (unique.size() != ids.size() || !all_fixed) ++failures;
    }
  });
  indexer.join();
  merger.join();
  searcher.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(merges.load() > 0);
  auto hits = c.search("pebble", 100000, default_filter());
  BOOST_TEST(hits.size() == kFixed + kRounds * 19);
  BOOST_TEST(id_set(hits).size() == hits.size());
}

BOOST_AUTO_TEST_CASE(save_covers_both_layers_and_reopen_restores_them) {
  TempDir dir;
  std::string path = dir.path("9.xapian");
  LexicalCollection reference("", "english", Bm25Params{});
  {
    LexicalCollection c(path, "english", Bm25Params{});
    std::vector<LexicalDocument> older, newer;
    for (std::uint64_t id = 1; id <= 60; ++id) older.push_back(doc(id, layered_text(id)));
    for (std::uint64_t id = 61; id <= 100; ++id) newer.push_back(doc(id, layered_text(id)));
    for (LexicalCollection* x : {&c, &reference}) {
      x->index(older, 1);
      if (x == &c) c.merge();
      x->index(newer, 2);  // in memory, not merged
      x->index({doc(5, layered_text(5, 1)), doc(70, layered_text(70, 1))}, 3);
      x->remove(std::vector<std::uint64_t>{6, 71}, 4);
    }
    auto saved = c.save();
    BOOST_TEST(saved.version == 4u);
    BOOST_TEST(saved.documents == 98u);
    expect_same_ranking(c, reference, default_filter());  // still searchable after the save
  }
  LexicalCollection reopened(path, "english", Bm25Params{});
  BOOST_TEST(reopened.info().version == 4u);
  BOOST_TEST(reopened.info().documents == 98u);
  expect_same_ranking(reopened, reference, default_filter());
}

BOOST_AUTO_TEST_CASE(the_plugin_merges_in_the_background) {
  TempDir dir;
  Harness h({{"state_dir", dir.path()}});
  BOOST_TEST_REQUIRE(h.open(4).status == MEMOS_OK);
  // Enough recent documents to ask for a merge.
  std::vector<std::pair<std::uint64_t, std::string>> docs;
  for (std::uint64_t id = 1; id <= 5000; ++id)
    docs.emplace_back(id, "lighthouse " + std::to_string(id));
  BOOST_TEST_REQUIRE(h.index(4, 1, docs).status == MEMOS_OK);
  // The merge commits without a save: wait (no deadline to assert on, only
  // a bound so a broken merge fails instead of hanging) until the on-disk
  // database holds them.
  Xapian::doccount on_disk = 0;
  for (int i = 0; i < 3000 && on_disk < docs.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    on_disk = Xapian::Database(dir.path("4.xapian")).get_doccount();
  }
  BOOST_TEST(on_disk == docs.size());
  BOOST_TEST(h.search(4, "lighthouse", 10000).hits().size() == docs.size());
  // Not saved: the snapshot's version is still 0.
  auto reopened_version = [&] {
    return Xapian::Database(dir.path("4.xapian")).get_metadata("memos.version");
  };
  BOOST_TEST(reopened_version() == "");
  BOOST_TEST(h.save(4).status == MEMOS_OK);
  BOOST_TEST(reopened_version() == "1");
}

// ---- (4) snapshots -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(save_and_reopen_restores_results_and_version) {
  TempDir dir;
  std::string path = dir.path("42.xapian");
  std::vector<LexicalHit> before;
  std::vector<LexicalHit> before_filtered;
  FilterSpec tagged = default_filter();
  tagged.all_tags = {"travel"};
  {
    LexicalCollection c(path, "english", Bm25Params{});
    BOOST_TEST(c.info().version == 0u);
    Attributes travel;
    travel.tags = {"travel"};
    travel.meta = {{"who", "maya"}};
    std::vector<LexicalDocument> docs;
    for (std::uint64_t i = 0; i < 50; ++i) {
      docs.push_back(
          doc((1ull << 40) + i,
              "trip number " + std::to_string(i) + " to lisbon" + (i % 3 == 0 ? " and porto" : ""),
              i % 2 == 0 ? travel : Attributes{}));
    }
    c.index(docs, 7);
    before = c.search("lisbon porto", 100, default_filter());
    before_filtered = c.search("lisbon porto", 100, tagged);
    auto saved = c.save();
    BOOST_TEST(saved.version == 7u);
    BOOST_TEST(saved.documents == 50u);
    // Unsaved changes after the save: the snapshot still claims version 7.
    c.index({doc(1, "unsaved porto")}, 8);
  }
  LexicalCollection reopened(path, "english", Bm25Params{});
  auto info = reopened.info();
  BOOST_TEST(info.version == 7u);
  BOOST_TEST(!info.rebuilt);
  BOOST_TEST(info.detail.find("version 7") != std::string::npos);
  reopened.remove(std::vector<std::uint64_t>{1}, 7);  // what a rebuild would not have
  auto after = reopened.search("lisbon porto", 100, default_filter());
  BOOST_TEST(ids_of(after) == ids_of(before));
  for (std::size_t i = 0; i < after.size() && i < before.size(); ++i) {
    BOOST_TEST(after[i].score == before[i].score, boost::test_tools::tolerance(1e-9));
  }
  BOOST_TEST(ids_of(reopened.search("lisbon porto", 100, tagged)) == ids_of(before_filtered));
  BOOST_TEST(before_filtered.size() == 25u);
}

BOOST_AUTO_TEST_CASE(the_plugin_saves_and_reopens) {
  TempDir dir;
  {
    Harness h({{"state_dir", dir.path("index")}});
    BOOST_TEST(h.open(3).status == MEMOS_OK);
    BOOST_TEST(h.index(3, 12, {{10, "tea in kyoto"}, {11, "coffee in rome"}}).status == MEMOS_OK);
    auto saved = h.save(3);
    BOOST_TEST_REQUIRE(saved.status == MEMOS_OK);
    BOOST_TEST(saved.reply().getCollection().getVersion() == 12u);
    BOOST_TEST(saved.reply().getCollection().getDocuments() == 2u);
  }
  BOOST_TEST(fs::is_directory(dir.path("index/3.xapian")));
  Harness h({{"state_dir", dir.path("index")}});
  auto opened = h.open(3);
  BOOST_TEST_REQUIRE(opened.status == MEMOS_OK);
  BOOST_TEST(opened.reply().getCollection().getVersion() == 12u);
  BOOST_TEST(opened.reply().getCollection().getDocuments() == 2u);
  BOOST_TEST(h.search(3, "Kyoto tea").hits() == std::vector<std::uint64_t>{10});
  // Opening again answers the same state.
  BOOST_TEST(h.open(3).reply().getCollection().getVersion() == 12u);
  // Drop deletes its files; opening again starts empty.
  BOOST_TEST(h.call([](auto r) { r.setDrop(3); }).status == MEMOS_OK);
  BOOST_TEST(!fs::exists(dir.path("index/3.xapian")));
  BOOST_TEST(h.search(3, "tea").status == MEMOS_ERR_INVALID);
  opened = h.open(3);
  BOOST_TEST(opened.reply().getCollection().getVersion() == 0u);
  BOOST_TEST(opened.reply().getCollection().getDocuments() == 0u);
  // Dropping what is not open deletes its files too, and is not an error.
  BOOST_TEST(h.call([](auto r) { r.setDrop(77); }).status == MEMOS_OK);
}

BOOST_AUTO_TEST_CASE(corrupt_or_missing_databases_open_empty) {
  TempDir dir;
  std::string path = dir.path("5.xapian");
  auto fill = [&] {
    LexicalCollection c(path, "english", Bm25Params{});
    c.index({doc(1, "first memory"), doc(2, "second memory")}, 3);
    c.save();
  };
  auto expect_empty_rebuilt = [&](const std::string& what) {
    BOOST_TEST_CONTEXT(what) {
      LexicalCollection c(path, "english", Bm25Params{});
      auto info = c.info();
      BOOST_TEST(info.version == 0u);
      BOOST_TEST(info.documents == 0u);
      BOOST_TEST(info.rebuilt);
      BOOST_TEST(!info.detail.empty());
      BOOST_TEST_MESSAGE(what << ": " << info.detail);
      // And it works.
      c.index({doc(9, "fresh memory")}, 1);
      BOOST_TEST(ids_of(c.search("memory", 10, default_filter())) == std::vector<std::uint64_t>{9});
      c.save();
    }
  };

  // Garbage in every file of the folder.
  fill();
  for (const auto& entry : fs::directory_iterator(path)) {
    std::ofstream(entry.path(), std::ios::binary | std::ios::trunc) << std::string(5000, '\x5a');
  }
  expect_empty_rebuilt("garbage in every file");

  // Garbage in the postings only (the version file is intact).
  fill();
  for (const auto& entry : fs::directory_iterator(path)) {
    if (entry.path().filename().string().starts_with("postlist")) {
      std::fstream f(entry.path(), std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(0);
      f << std::string(8192, '\x11');
    }
  }
  {
    // Xapian may or may not notice; either way: no crash, no escaped exception.
    std::unique_ptr<LexicalCollection> c;
    BOOST_CHECK_NO_THROW(c = std::make_unique<LexicalCollection>(path, "english", Bm25Params{}));
    if (c) {
      try {
        c->search("memory", 10, default_filter());
      } catch (const Error& e) {
        BOOST_TEST_MESSAGE("search on damaged postings: " << e.what());
      }
    }
  }

  // A file where the folder should be.
  fs::remove_all(path);
  std::ofstream(path) << "not a database";
  expect_empty_rebuilt("a file instead of a folder");

  // Another language.
  fill();
  {
    LexicalCollection c(path, "french", Bm25Params{});
    BOOST_TEST(c.info().version == 0u);
    BOOST_TEST(c.info().rebuilt);
    BOOST_TEST(c.info().detail.find("english") != std::string::npos);
  }

  // Locked by another writer (here another collection object): replaced.
  fill();
  {
    LexicalCollection holder(path, "english", Bm25Params{});
    LexicalCollection c(path, "english", Bm25Params{});
    BOOST_TEST(c.info().rebuilt);
    BOOST_TEST(c.info().detail.find("Lock") != std::string::npos, c.info().detail);
    BOOST_CHECK_NO_THROW(holder.search("memory", 10, default_filter()));
  }

  // Missing: a new, empty database, not a rebuild.
  fs::remove_all(path);
  LexicalCollection c(path, "english", Bm25Params{});
  BOOST_TEST(c.info().version == 0u);
  BOOST_TEST(c.info().documents == 0u);
  BOOST_TEST(!c.info().rebuilt);
}

BOOST_AUTO_TEST_CASE(the_plugin_logs_a_rebuild) {
  TempDir dir;
  {
    LexicalCollection c(dir.path("5.xapian"), "english", Bm25Params{});
    c.index({doc(1, "soon lost")}, 1);
    c.save();
  }
  std::ofstream(dir.path("5.xapian/iamglass")) << "garbage";
  Harness h({{"state_dir", dir.path()}});
  auto opened = h.open(5);
  BOOST_TEST_REQUIRE(opened.status == MEMOS_OK);
  BOOST_TEST(opened.reply().getCollection().getVersion() == 0u);
  std::string detail = opened.reply().getCollection().getDetail();
  BOOST_TEST(detail.find("unusable") != std::string::npos, detail);
  BOOST_TEST(h.logged().size() == 1u);
}

// ---- (4b) databases moved between nodes (exportSnapshot, importSnapshot) ----------

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// <root>/transfer/<name>, the folder memosd keeps for such files.
std::string transfer_path(const std::string& root, const std::string& name) {
  fs::create_directories(root + "/transfer");
  return root + "/transfer/" + name;
}

// Collection `c` of `h`: 120 notes (every tenth tagged "moved") at version
// 1, notes 1, 2 and 11 removed at 2, and 20 more at 3 (not merged: a
// save takes them).
void fill_notes(Harness& h, std::uint64_t c) {
  BOOST_TEST_REQUIRE(h.open(c).status == MEMOS_OK);
  std::vector<Harness::Tagged> docs;
  for (std::uint64_t id = 1; id <= 120; ++id) {
    std::vector<std::string> tags;
    if (id % 10 == 1) tags = {"moved"};
    std::string text = "note " + std::to_string(id) + " about the lighthouse";
    if (id % 3 == 0) text += " and the harbour";
    docs.push_back({id, text, tags});
  }
  BOOST_TEST_REQUIRE(h.index_tagged(c, 1, docs).status == MEMOS_OK);
  BOOST_TEST_REQUIRE(h.remove(c, 2, {1, 2, 11}).status == MEMOS_OK);
  docs.clear();
  for (std::uint64_t id = 200; id < 220; ++id) {
    docs.push_back({id, "late lighthouse keeper " + std::to_string(id), {"moved"}});
  }
  BOOST_TEST_REQUIRE(h.index_tagged(c, 3, docs).status == MEMOS_OK);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_database_moves_to_another_node) {
  TempDir a_dir, b_dir;
  Harness a({{"state_dir", a_dir.path("index")}});
  fill_notes(a, 3);
  std::string file = transfer_path(a_dir.path("index"), "3.snapshot");
  auto exported = a.export_snapshot(3, file);
  BOOST_TEST_REQUIRE(exported.status == MEMOS_OK, exported.error());
  BOOST_TEST(exported.reply().getCollection().getVersion() == 3u);
  BOOST_TEST(exported.reply().getCollection().getDocuments() == 137u);
  BOOST_TEST(!fs::exists(file + ".tmp"));
  // One file, which Xapian itself opens as the database.
  BOOST_TEST(fs::is_regular_file(file));
  BOOST_TEST(Xapian::Database(file).get_doccount() == 137u);
  BOOST_TEST(Xapian::Database(file).get_metadata("memos.collection") == "3");

  // memosd moves the bytes to the other node's transfer folder.
  std::string incoming = transfer_path(b_dir.path("index"), "3.snapshot");
  fs::copy_file(file, incoming);
  Harness b({{"state_dir", b_dir.path("index")}});
  auto imported = b.import_snapshot(3, incoming);
  BOOST_TEST_REQUIRE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(imported.reply().getCollection().getVersion() == 3u);
  BOOST_TEST(imported.reply().getCollection().getDocuments() == 137u);
  std::string detail = imported.reply().getCollection().getDetail();
  BOOST_TEST(detail.find("english") != std::string::npos, detail);
  BOOST_TEST(fs::is_directory(b_dir.path("index/3.xapian")));
  BOOST_TEST(!fs::exists(b_dir.path("index/3.xapian.import")));
  BOOST_TEST(!fs::exists(b_dir.path("index/3.xapian.old")));

  auto opened = b.open(3);
  BOOST_TEST_REQUIRE(opened.status == MEMOS_OK);
  BOOST_TEST(opened.reply().getCollection().getVersion() == 3u);
  BOOST_TEST(opened.reply().getCollection().getDocuments() == 137u);
  for (const char* query : {"lighthouse", "harbour", "note 42", "keeper", "moved"}) {
    BOOST_TEST_CONTEXT(query) {
      BOOST_TEST(b.search(3, query, 1000).hits() == a.search(3, query, 1000).hits());
    }
  }
  BOOST_TEST(b.search(3, "lighthouse", 1000).hits().size() == 137u);
  // The attributes came along: the tag filter admits the tagged notes only.
  std::set<std::uint64_t> expected;
  for (std::uint64_t id = 21; id <= 111; id += 10) expected.insert(id);
  for (std::uint64_t id = 200; id < 220; ++id) expected.insert(id);
  auto tagged = b.search_tag(3, "lighthouse", "moved", 1000).hits();
  BOOST_TEST(std::set<std::uint64_t>(tagged.begin(), tagged.end()) == expected);
  BOOST_TEST(tagged == a.search_tag(3, "lighthouse", "moved", 1000).hits());
  // And it goes on like any collection.
  BOOST_TEST(b.index(3, 4, {{500, "new lighthouse"}}).status == MEMOS_OK);
  BOOST_TEST(b.save(3).reply().getCollection().getVersion() == 4u);
}

BOOST_AUTO_TEST_CASE(transfer_requests_need_the_collection_in_the_right_state) {
  TempDir dir;
  Harness h({{"state_dir", dir.path("index")}});
  std::string file = transfer_path(dir.path("index"), "3.snapshot");
  auto not_open = h.export_snapshot(3, file);
  BOOST_TEST(not_open.status == MEMOS_ERR_INVALID);
  BOOST_TEST(not_open.error().find("collection 3 is not open") != std::string::npos,
             not_open.error());
  BOOST_TEST(!fs::exists(file));

  fill_notes(h, 3);
  BOOST_TEST_REQUIRE(h.export_snapshot(3, file).status == MEMOS_OK);
  auto open = h.import_snapshot(3, file);
  BOOST_TEST(open.status == MEMOS_ERR_INVALID);
  BOOST_TEST(open.error().find("collection 3 is open: drop it first") != std::string::npos,
             open.error());
  BOOST_TEST(h.search(3, "lighthouse", 1000).hits().size() == 137u);  // untouched
  BOOST_TEST(h.export_snapshot(3, "transfer/3.snapshot").status == MEMOS_ERR_INVALID);
  BOOST_TEST(h.import_snapshot(9, "3.snapshot").status == MEMOS_ERR_INVALID);

  // Dropped, then imported back.
  BOOST_TEST_REQUIRE(h.call([](auto r) { r.setDrop(3); }).status == MEMOS_OK);
  BOOST_TEST(h.export_snapshot(3, file).status == MEMOS_ERR_INVALID);
  auto imported = h.import_snapshot(3, file);
  BOOST_TEST_REQUIRE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(h.open(3).reply().getCollection().getVersion() == 3u);

  // In memory there are no database files.
  Harness memory({});
  BOOST_TEST_REQUIRE(memory.open(3).status == MEMOS_OK);
  auto unsupported = memory.export_snapshot(3, file);
  BOOST_TEST(unsupported.status == MEMOS_ERR_UNSUPPORTED);
  BOOST_TEST(unsupported.error().find("in memory") != std::string::npos, unsupported.error());
  BOOST_TEST(memory.import_snapshot(4, file).status == MEMOS_ERR_UNSUPPORTED);
  BOOST_TEST(memory.import_snapshot(3, file).status == MEMOS_ERR_UNSUPPORTED);  // open too
}

// Files an import must refuse, each after a good import: refused with
// invalid, and the good database stays what the next open loads.
BOOST_AUTO_TEST_CASE(hostile_transfer_files_are_refused_and_change_nothing) {
  TempDir a_dir, b_dir;
  Harness a({{"state_dir", a_dir.path("index")}});
  fill_notes(a, 3);
  fill_notes(a, 4);
  std::string good_file = transfer_path(a_dir.path("index"), "3.good");
  BOOST_TEST_REQUIRE(a.export_snapshot(3, good_file).status == MEMOS_OK);
  // What the bad files are made of: a later database (version 5).
  BOOST_TEST_REQUIRE(a.index(3, 5, {{300, "the last lighthouse"}}).status == MEMOS_OK);
  std::string later_file = transfer_path(a_dir.path("index"), "3.later");
  BOOST_TEST_REQUIRE(a.export_snapshot(3, later_file).status == MEMOS_OK);
  std::string later = read_bytes(later_file);
  std::string other_file = transfer_path(a_dir.path("index"), "4.snapshot");
  BOOST_TEST_REQUIRE(a.export_snapshot(4, other_file).status == MEMOS_OK);

  Harness b({{"state_dir", b_dir.path("index")}});
  std::string incoming = transfer_path(b_dir.path("index"), "3.snapshot");
  fs::copy_file(good_file, incoming);
  BOOST_TEST_REQUIRE(b.import_snapshot(3, incoming).status == MEMOS_OK);

  auto expect_refused = [&](const std::string& what, const std::string& path,
                            const std::string& reason) {
    BOOST_TEST_CONTEXT(what) {
      auto answer = b.import_snapshot(3, path);
      BOOST_TEST(answer.status == MEMOS_ERR_INVALID);
      BOOST_TEST(answer.error().find(reason) != std::string::npos, answer.error());
      BOOST_TEST(!fs::exists(b_dir.path("index/3.xapian.import")));
      Harness fresh({{"state_dir", b_dir.path("index")}});
      auto opened = fresh.open(3);
      BOOST_TEST(opened.reply().getCollection().getVersion() == 3u);
      BOOST_TEST(opened.reply().getCollection().getDocuments() == 137u);
      BOOST_TEST(fresh.search(3, "lighthouse", 1000).hits().size() == 137u);
    }
  };
  auto refuse_bytes = [&](const std::string& what, const std::string& bytes,
                          const std::string& reason) {
    write_bytes(incoming, bytes);
    expect_refused(what, incoming, reason);
    BOOST_TEST(read_bytes(incoming) == bytes);  // left where it was
  };
  refuse_bytes("truncated", later.substr(0, later.size() / 2), "truncated");
  std::string flipped = later;
  flipped[later.size() / 2] ^= 0x01;
  refuse_bytes("a flipped byte", flipped, "checksum mismatch");
  refuse_bytes("another collection", read_bytes(other_file), "holds collection '4', not 3");
  refuse_bytes("empty", "", "truncated");
  std::mt19937_64 rng(9);
  std::string noise(later.size(), '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  refuse_bytes("random bytes", noise, "snapshot refused");
  // A plain single-file Glass database: no trailer, so nothing vouches for
  // its bytes.
  std::string plain = b_dir.path("plain");
  Xapian::Database(a_dir.path("index/3.xapian")).compact(plain, Xapian::DBCOMPACT_SINGLE_FILE);
  refuse_bytes("no trailer", read_bytes(plain), "no transfer trailer");
  std::string version = later;
  version[later.size() - 12] ^= 0x01;  // the trailer's format version
  refuse_bytes("another format", version, "format version");

  // A link to a good file is still refused: memosd hands over files, not links.
  fs::remove(incoming);
  fs::create_symlink(later_file, incoming);
  expect_refused("a symbolic link", incoming, "symbolic link");
  fs::remove(incoming);
  fs::create_directory(incoming);
  expect_refused("a folder", incoming, "not a regular file");
  fs::remove(incoming);
  expect_refused("nothing there", incoming, "No such file");

  // And the later file itself is taken.
  fs::copy_file(later_file, incoming);
  auto imported = b.import_snapshot(3, incoming);
  BOOST_TEST_REQUIRE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(imported.reply().getCollection().getVersion() == 5u);
  BOOST_TEST(b.open(3).reply().getCollection().getDocuments() == 138u);
  BOOST_TEST(b.search(3, "last lighthouse", 1).hits() == std::vector<std::uint64_t>{300});
}

// Databases record their collection: one found under another collection's
// name is not that collection's. Those of older plugins record none, and
// are taken as they are.
BOOST_AUTO_TEST_CASE(a_database_records_its_collection) {
  TempDir dir;
  {
    Harness h({{"state_dir", dir.path()}});
    fill_notes(h, 3);
    BOOST_TEST_REQUIRE(h.save(3).status == MEMOS_OK);
  }
  BOOST_TEST(Xapian::Database(dir.path("3.xapian")).get_metadata("memos.collection") == "3");
  fs::copy(dir.path("3.xapian"), dir.path("4.xapian"));
  {
    // Without an id (as before), a database records none.
    LexicalCollection c(dir.path("6.xapian"), "english", Bm25Params{});
    c.index({doc(1, "older lighthouse")}, 2);
    c.save();
  }
  BOOST_TEST(Xapian::Database(dir.path("6.xapian")).get_metadata("memos.collection") == "");
  Harness h({{"state_dir", dir.path()}});
  auto foreign = h.open(4);
  BOOST_TEST_REQUIRE(foreign.status == MEMOS_OK);
  BOOST_TEST(foreign.reply().getCollection().getVersion() == 0u);
  std::string detail = foreign.reply().getCollection().getDetail();
  BOOST_TEST(detail.find("holds collection '3', not 4") != std::string::npos, detail);
  auto older = h.open(6);
  BOOST_TEST(older.reply().getCollection().getVersion() == 2u);
  BOOST_TEST(older.reply().getCollection().getDocuments() == 1u);
  BOOST_TEST_REQUIRE(h.save(6).status == MEMOS_OK);  // records it now
  BOOST_TEST(Xapian::Database(dir.path("6.xapian")).get_metadata("memos.collection") == "6");
  BOOST_TEST(h.open(3).reply().getCollection().getVersion() == 3u);
}

// ---- (5) hostile input ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hostile_input_gets_clear_answers) {
  Harness h({});  // no state_dir: in memory
  BOOST_TEST_REQUIRE(h.open(1).status == MEMOS_OK);
  BOOST_TEST(h.index(1, 1, {{1, "the quick brown fox"}, {2, "a lazy dog"}}).status == MEMOS_OK);

  // Huge query: refused, not parsed.
  auto huge = h.search(1, std::string(4 << 20, 'x'));
  BOOST_TEST(huge.status == MEMOS_ERR_INVALID);
  BOOST_TEST(huge.error().find("bytes") != std::string::npos);
  // A long but acceptable one works.
  std::string long_query;
  while (long_query.size() < 60000) long_query += "fox jumps over dogs ";
  BOOST_TEST(h.search(1, long_query).hits().size() == 2u);

  // Punctuation and query-syntax look-alikes never throw.
  for (const std::string& q : std::vector<std::string>{
           "?!.,;:()[]{}\"'*-+&|", "\"", "\"unterminated phrase fox", "((((", ")))", "AND OR NOT",
           "fox AND", "NOT fox", "-fox", "+fox", "fox*", "*", "title:fox", "fox NEAR dog",
           "fox ADJ/3 dog", "\xff\xfe\x80", std::string("fox\0dog", 7), "   ", ""}) {
    auto a = h.search(1, q);
    BOOST_TEST_CONTEXT("query '" << q << "'") {
      BOOST_TEST(a.status == MEMOS_OK);
      BOOST_TEST(a.reply().isHits());
    }
  }
  BOOST_TEST(h.search(1, "?!...").hits().empty());
  BOOST_TEST(h.search(1, "NOT fox").hits() == std::vector<std::uint64_t>{1});  // just words

  // k = 0: nothing, no error.
  auto none = h.search(1, "fox", 0);
  BOOST_TEST(none.status == MEMOS_OK);
  BOOST_TEST(none.hits().empty());

  // Unknown language.
  auto klingon = h.open(2, "klingon");
  BOOST_TEST(klingon.status == MEMOS_ERR_INVALID);
  BOOST_TEST(klingon.error().find("klingon") != std::string::npos);
  BOOST_TEST(klingon.error().find("english") != std::string::npos);
  BOOST_TEST(h.open(3, "german").status == MEMOS_OK);

  // Unknown collection.
  BOOST_TEST(h.search(99, "fox").status == MEMOS_ERR_INVALID);
  BOOST_TEST(h.index(99, 1, {{1, "x"}}).status == MEMOS_ERR_INVALID);
  BOOST_TEST(h.save(99).status == MEMOS_ERR_INVALID);
  BOOST_TEST(h.call([](auto r) {
                auto rm = r.initRemove();
                rm.setCollection(99);
              }).status == MEMOS_ERR_INVALID);

  // Saving in memory is refused.
  auto save = h.save(1);
  BOOST_TEST(save.status == MEMOS_ERR_UNSUPPORTED);
  BOOST_TEST(save.error().find("state_dir") != std::string::npos);

  // Requests for other kinds of plugin.
  BOOST_TEST(h.call([](auto r) { r.initEmbed(); }).status == MEMOS_ERR_UNSUPPORTED);
  auto caps = h.call([](auto r) { r.setDescribe(); });
  BOOST_TEST_REQUIRE(caps.status == MEMOS_OK);
  BOOST_TEST(caps.reply().getCapabilities().getKinds() == unsigned{MEMOS_KIND_RETRIEVER});
  BOOST_TEST(std::string(caps.reply().getCapabilities().getRetriever().getModes()[0]) == "lexical");
}

BOOST_AUTO_TEST_CASE(bad_settings_are_refused) {
  using Settings = std::map<std::string, std::string>;
  BOOST_CHECK_THROW(Harness(Settings{{"k1", "fast"}}), std::invalid_argument);
  BOOST_CHECK_THROW(Harness(Settings{{"b", "2"}}), std::invalid_argument);
  BOOST_CHECK_THROW(Harness(Settings{{"default_language", "klingon"}}), std::invalid_argument);
  Harness ok({{"k1", "0.9"}, {"b", "0.4"}, {"default_language", "en"}});
  BOOST_TEST(ok.open(1).status == MEMOS_OK);
}

BOOST_AUTO_TEST_CASE(concurrent_calls_are_safe) {
  TempDir dir;
  Harness h({{"state_dir", dir.path()}});
  for (std::uint64_t c = 1; c <= 2; ++c) BOOST_TEST_REQUIRE(h.open(c).status == MEMOS_OK);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        std::uint64_t c = 1 + (i + t) % 2;
        std::uint64_t id = static_cast<std::uint64_t>(t * 1000 + i);
        memos_status s = MEMOS_OK;
        if (i % 3 == 0) {
          s = h.index(c, id, {{id, "thread " + std::to_string(t) + " writes note"}}).status;
        } else if (i % 25 == 0) {
          s = h.save(c).status;
        } else {
          s = h.search(c, "thread note", 5).status;
        }
        if (s != MEMOS_OK) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(h.search(1, "note", 1000).hits().size() + h.search(2, "note", 1000).hits().size() ==
             200u);
}

// An import a crash cut short: between its two renames the database is
// aside (<path>.old) and comes back when the collection opens; the staged
// copy (<path>.import) goes. After both renames the aside copy goes.
BOOST_AUTO_TEST_CASE(what_an_interrupted_import_left_is_tidied_as_the_collection_opens) {
  TempDir dir;
  const std::string path = dir.path("7.xapian");
  {
    LexicalCollection c(path, "english", Bm25Params{});
    c.index({doc(1, "harbour lights at dusk"), doc(2, "a ferry to the islands")}, 5);
    c.save();
  }
  std::filesystem::rename(path, path + ".old");
  std::filesystem::create_directories(path + ".import");
  std::ofstream(path + ".import/postlist.glass") << "half written";
  {
    LexicalCollection c(path, "english", Bm25Params{});
    BOOST_TEST(c.info().version == 5u);
    BOOST_TEST(!c.info().rebuilt);
    BOOST_TEST(c.search("ferry", 10, default_filter()).size() == 1u);
  }
  BOOST_TEST(!std::filesystem::exists(path + ".old"));
  BOOST_TEST(!std::filesystem::exists(path + ".import"));
  // Both renames done: the database is the new one, the aside copy goes.
  std::filesystem::copy(path, path + ".old", std::filesystem::copy_options::recursive);
  LexicalCollection c(path, "english", Bm25Params{});
  BOOST_TEST(c.info().version == 5u);
  BOOST_TEST(!std::filesystem::exists(path + ".old"));
}
