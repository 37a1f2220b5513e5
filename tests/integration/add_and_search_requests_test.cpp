// What a user meets adding and searching (issue 15, items 8 and 9), against a
// real memosd through memctl and the SDK: an empty or blank text is refused;
// an exact duplicate of a live memory of the cube is refused naming it, and
// stored with --allow-duplicate; once removed it may be added again; adds of
// one text pipelined together store one; search's minimum score in every
// mode, "nothing relevant found", and hostile minimum scores.
#define BOOST_TEST_MODULE add_and_search_requests
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <future>
#include <limits>
#include <string>
#include <vector>

#include "memos/client.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"

using memos::testing::Daemon;
using memos::testing::run_command;

namespace {

struct Fixture : Daemon {
  Fixture() { sdk = client(); }
  // Runs memctl against this memosd; returns its exit status.
  int memctl(std::vector<std::string> args, std::string* out = nullptr,
             std::string* err = nullptr) {
    args.insert(args.begin(), {MEMOS_MEMCTL, "--socket", process->socket()});
    std::string o, e;
    int rc = run_command(args, &o, &e);
    if (out) *out = o;
    if (err) *err = e;
    return rc;
  }
  std::unique_ptr<memos::Client> sdk;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

memos::NewItem text(std::string t) {
  memos::NewItem item;
  item.text = std::move(t);
  return item;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(empty_and_blank_texts_are_refused_by_memctl_and_memosd, Fixture) {
  std::string out, err;
  BOOST_REQUIRE(memctl({"cube", "create", "notes"}) == 0);
  BOOST_TEST(memctl({"add", "notes", ""}, &out, &err) == 2);  // usage: before connecting
  BOOST_TEST(contains(err, "empty"), err);
  BOOST_TEST(memctl({"add", "notes", "  \t\n"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "whitespace"), err);
  BOOST_TEST(memctl({"add", "notes", "Maya likes tea"}, &out) == 0);
  const std::string id = trim(out);
  BOOST_TEST(memctl({"update", "notes", id, " "}, &out, &err) == 2);

  // Every client, not just memctl: memosd refuses them too.
  for (const char* blank : {"", " ", "\n\n", "\t \r\n\v\f"}) {
    auto added = sdk->add("notes", text(blank));
    BOOST_REQUIRE(!added.ok());
    BOOST_TEST((added.error().code == memos::ErrorCode::bad_request), added.error().message);
    BOOST_TEST(contains(added.error().message, "text is"), added.error().message);
  }
  auto parsed = memos::parse_id(id);
  BOOST_REQUIRE(parsed.has_value());
  auto updated = sdk->update("notes", *parsed, memos::ItemChange{""});
  BOOST_REQUIRE(!updated.ok());
  BOOST_TEST((updated.error().code == memos::ErrorCode::bad_request));
  // Nothing was written by the refusals.
  auto cube = sdk->cube_show("notes");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->live_items == 1u);
  BOOST_TEST(cube->head_version == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_duplicate_is_refused_naming_the_item_until_allowed_or_removed, Fixture) {
  std::string out, err;
  BOOST_REQUIRE(memctl({"cube", "create", "maya"}) == 0);
  BOOST_REQUIRE(memctl({"cube", "create", "sam"}) == 0);
  BOOST_REQUIRE(memctl({"add", "maya", "Maya is allergic to peanuts", "--tag", "health"}, &out) ==
                0);
  const std::string first = trim(out);

  // Same text, other tags: still the same memory.
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts", "--tag", "food"}, &out, &err) ==
             1);
  BOOST_TEST(contains(err, "memctl: alreadyExists:"), err);
  BOOST_TEST(contains(err, first), err);  // the item, in base32, as memctl prints ids
  BOOST_TEST(contains(err, "--allow-duplicate"), err);
  BOOST_TEST(out.empty(), out);

  // Another cube, or another text (case, a trailing space), is no duplicate.
  BOOST_TEST(memctl({"add", "sam", "Maya is allergic to peanuts"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "maya is allergic to peanuts"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts "}) == 0);

  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts", "--allow-duplicate"}, &out) ==
             0);
  const std::string second = trim(out);
  BOOST_TEST(second.size() == 13u);
  BOOST_TEST(second != first);

  // An archived memory is still live: a duplicate.
  BOOST_REQUIRE(memctl({"add", "maya", "Maya moved to Lyon"}, &out) == 0);
  const std::string moved = trim(out);
  BOOST_REQUIRE(memctl({"archive", "maya", moved}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya moved to Lyon"}, &out, &err) == 1);
  BOOST_TEST(contains(err, moved), err);

  // Removed: the text may be added again.
  BOOST_REQUIRE(memctl({"rm", "maya", first}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts"}, &out, &err) == 1);
  BOOST_TEST(contains(err, second), err);  // the copy stored anyway is still there
  BOOST_REQUIRE(memctl({"rm", "maya", second}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts"}, &out, &err) == 0, err);

  // An update that changes the text frees the old one.
  BOOST_REQUIRE(memctl({"add", "maya", "Maya drinks tea"}, &out) == 0);
  const std::string tea = trim(out);
  BOOST_REQUIRE(memctl({"update", "maya", tea, "Maya drinks coffee"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya drinks tea"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya drinks coffee"}) == 1);

  // --json carries the code for scripts.
  BOOST_TEST(memctl({"--json", "add", "maya", "Maya drinks coffee"}, &out) == 1);
  BOOST_TEST(contains(out, "\"alreadyExists\""), out);
}

// Adds of one text in flight together (one commit group, or several) store
// exactly one: the check runs in the write transaction.
BOOST_FIXTURE_TEST_CASE(pipelined_duplicates_store_one, Fixture) {
  BOOST_REQUIRE(sdk->cube_create("batch").ok());
  auto durable = client(Ack::durable);
  std::vector<std::future<memos::Result<memos::Item>>> adds;
  for (int i = 0; i < 32; ++i) {
    adds.push_back(durable->add_async("batch", text(i % 2 ? "odd one" : "even one")));
  }
  int stored = 0, refused = 0;
  for (auto& f : adds) {
    auto r = f.get();
    if (r.ok()) {
      ++stored;
    } else {
      BOOST_TEST((r.error().code == memos::ErrorCode::already_exists), r.error().message);
      ++refused;
    }
  }
  BOOST_TEST(stored == 2);
  BOOST_TEST(refused == 30);
  memos::NewItem again = text("odd one");
  again.allow_duplicate = true;
  BOOST_TEST(durable->add("batch", again).ok());
  auto cube = sdk->cube_show("batch");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->live_items == 3u);
}

// What a minimum score compares with, in each mode; memctl says when
// nothing passes; hostile values are refused.
BOOST_FIXTURE_TEST_CASE(min_score_keeps_only_hits_that_are_relevant_in_every_mode, Fixture) {
  BOOST_REQUIRE(sdk->cube_create("maya").ok());
  for (const char* t : {"Maya is allergic to peanuts", "Maya swims on Saturdays",
                        "The quarterly report is due on Friday"}) {
    BOOST_REQUIRE(sdk->add("maya", text(t)).ok());
  }
  for (auto mode :
       {memos::SearchMode::dense, memos::SearchMode::lexical, memos::SearchMode::hybrid}) {
    memos::SearchOptions all;
    all.mode = mode;
    all.explain = true;
    auto every = sdk->search("maya", "peanut allergy", all);
    BOOST_REQUIRE(every.ok());
    BOOST_REQUIRE(!every->empty());
    // The relevance min_score compares with: the score, or in hybrid the
    // dense retriever's.
    auto relevance = [&](const memos::Hit& h) -> std::optional<float> {
      if (mode != memos::SearchMode::hybrid) return h.score;
      for (const auto& r : h.ranks) {
        if (r.retriever == memos::SearchMode::dense && r.rank != 0) return r.score;
      }
      return std::nullopt;
    };
    std::optional<float> top = relevance(every->front());
    BOOST_REQUIRE(top.has_value());
    memos::SearchOptions strict = all;
    strict.min_score = *top;
    auto passed = sdk->search("maya", "peanut allergy", strict);
    BOOST_REQUIRE(passed.ok());
    BOOST_TEST(!passed->empty());
    std::size_t expected = 0;
    for (const auto& h : *every) expected += relevance(h) && *relevance(h) >= *top;
    BOOST_TEST(passed->size() == expected, memos::to_string(mode));
    for (const auto& h : *passed) {
      BOOST_TEST(relevance(h).has_value());
      BOOST_TEST(*relevance(h) >= *top);
    }
    BOOST_TEST(contains(passed->front().item.text, "peanuts"));
    // Past every score: none; below every score: all of them.
    strict.min_score = 1e30f;
    auto none = sdk->search("maya", "peanut allergy", strict);
    BOOST_REQUIRE(none.ok());
    BOOST_TEST(none->empty());
    strict.min_score = -1e30f;
    auto below = sdk->search("maya", "peanut allergy", strict);
    BOOST_REQUIRE(below.ok());
    std::size_t ranked = 0;
    for (const auto& h : *every) ranked += relevance(h).has_value();
    BOOST_TEST(below->size() == ranked);
  }

  // Hostile values: NaN and infinities are refused, not compared.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    memos::SearchOptions o;
    o.min_score = bad;
    auto r = sdk->search("maya", "peanut", o);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST((r.error().code == memos::ErrorCode::bad_request), r.error().message);
  }

  std::string out, err;
  BOOST_TEST(
      memctl({"search", "maya", "peanut allergy", "--mode", "lexical", "--min-score", "1000000"},
             &out, &err) == 0);
  BOOST_TEST(out.empty(), out);
  BOOST_TEST(contains(err, "nothing relevant found"), err);
  BOOST_TEST(memctl({"search", "maya", "peanut allergy", "--min-score", "-5"}, &out, &err) == 0);
  BOOST_TEST(contains(out, "peanuts"), out);
  BOOST_TEST(!contains(err, "nothing relevant"), err);
  for (const char* bad : {"nan", "inf", "-inf", "1e999", "lots", ""}) {
    BOOST_TEST(memctl({"search", "maya", "peanut", "--min-score", bad}, &out, &err) == 2, bad);
  }
}
