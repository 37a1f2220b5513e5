// Index snapshots that fall behind the store (a stop that ran out of time
// for them, a kill): the next start catches them up from the versions the
// store wrote since, rather than rebuilding, and answers exactly what the
// store holds; an item purged since the snapshot (no head left to say it
// went) sends the collection to a rebuild instead.
#define BOOST_TEST_MODULE index_catch_up
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;

namespace {

const memos::SearchMode kModes[] = {memos::SearchMode::dense, memos::SearchMode::lexical,
                                    memos::SearchMode::hybrid};

std::unique_ptr<memos::Client> connect(const MemosdProcess& process) {
  auto connected = memos::Client::connect(process.socket());
  BOOST_REQUIRE_MESSAGE(connected.ok(), why(connected));
  return std::move(connected.value());
}

// Every mode finds exactly `expected` for `query` (k large, fresh).
void expect_hits(memos::Client& c, const std::string& query,
                 const std::set<std::uint64_t>& expected, const std::string& when) {
  for (memos::SearchMode mode : kModes) {
    memos::SearchOptions options;
    options.k = 1000;
    options.mode = mode;
    options.fresh = true;
    auto hits = c.search("c", query, options);
    BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
    std::set<std::uint64_t> got;
    for (const auto& h : *hits) got.insert(h.item.id);
    // Dense search ranks every item (hash vectors share no threshold), so
    // compare the set of ids the store holds, not only the matching ones.
    if (mode == memos::SearchMode::lexical) {
      BOOST_TEST(got == expected, when << ", lexical, query " << query);
    } else {
      for (std::uint64_t id : expected) {
        BOOST_TEST(got.count(id) == 1, when << ", mode " << mode << ", query " << query << ": item "
                                            << id << " missing");
      }
    }
  }
}

// The ids every dense search can return: all the live items.
std::set<std::uint64_t> dense_ids(memos::Client& c) {
  memos::SearchOptions options;
  options.k = 1000;
  options.mode = memos::SearchMode::dense;
  options.fresh = true;
  auto hits = c.search("c", "anything", options);
  BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
  std::set<std::uint64_t> got;
  for (const auto& h : *hits) got.insert(h.item.id);
  return got;
}

std::string config(const TempDir& dir, const std::string& body) {
  std::string path = dir.path() + "/memosd.conf";
  std::ofstream(path) << body;
  return path;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_snapshot_behind_the_store_is_caught_up_not_rebuilt) {
  TempDir dir;
  // No periodic snapshots, and none at the stop: only the first clean stop
  // (default budget) writes them.
  MemosdProcess first(MEMOS_MEMOSD, dir.path());
  std::map<std::uint64_t, std::string> live;
  BOOST_REQUIRE_MESSAGE(first.start(), first.log());
  {
    auto c = connect(first);
    BOOST_REQUIRE(c->cube_create("c").ok());
    for (int i = 0; i < 60; ++i) {
      std::string text = "walrus note " + std::to_string(i);
      auto added = c->add("c", {text});
      BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
      live[added->id] = text;
    }
  }
  BOOST_TEST(first.stop() == 0);
  BOOST_TEST(first.log().find("index snapshots of 1 cube(s)") != std::string::npos);

  const std::string conf =
      config(dir, "[search]\nsnapshot_interval_s = 86400\nstop_snapshot_s = 0\n");
  MemosdProcess second(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_REQUIRE_MESSAGE(second.start(), second.log());
  std::set<std::uint64_t> walrus, heron, removed;
  {
    auto c = connect(second);
    // Behind the snapshot: new items, items changed to other words, items
    // removed (some from the snapshot, one added after it).
    for (int i = 0; i < 40; ++i) {
      auto added = c->add("c", {"heron entry " + std::to_string(i)});
      BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
      live[added->id] = added->text;
    }
    auto it = live.begin();
    for (int i = 0; i < 10; ++i, ++it) {
      memos::ItemChange change;
      change.text = "heron rewritten " + std::to_string(i);
      auto updated = c->update("c", it->first, change);
      BOOST_REQUIRE_MESSAGE(updated.ok(), why(updated));
      it->second = change.text;
    }
    for (int i = 0; i < 10; ++i, ++it) removed.insert(it->first);
    removed.insert(live.rbegin()->first);  // a heron entry, added after the snapshot
    for (std::uint64_t id : removed) {
      auto gone = c->remove("c", id);
      BOOST_REQUIRE_MESSAGE(gone.ok(), why(gone));
      live.erase(id);
    }
    for (const auto& [id, text] : live) (text.starts_with("walrus") ? walrus : heron).insert(id);
    expect_hits(*c, "walrus", walrus, "before the stop");
  }
  BOOST_TEST(second.stop() == 0);
  BOOST_TEST(second.log().find("not snapshot in time") != std::string::npos, second.log());

  MemosdProcess third(MEMOS_MEMOSD, dir.path());
  BOOST_REQUIRE_MESSAGE(third.start(), third.log());
  const std::string log = third.log();
  BOOST_TEST(log.find("catching up") != std::string::npos, log);
  BOOST_TEST(log.find("0 cube(s) rebuilt") != std::string::npos, log);
  auto c = connect(third);
  expect_hits(*c, "walrus", walrus, "after catching up");
  expect_hits(*c, "heron", heron, "after catching up");
  std::set<std::uint64_t> all;
  for (const auto& [id, text] : live) all.insert(id);
  BOOST_TEST(dense_ids(*c) == all);
  auto shown = c->cube_show("c");
  BOOST_REQUIRE(shown.ok());
  BOOST_TEST(shown->indexes.find(std::to_string(live.size()) + " documents") != std::string::npos,
             shown->indexes);
}

BOOST_AUTO_TEST_CASE(an_item_purged_since_the_snapshot_sends_it_to_a_rebuild) {
  TempDir dir;
  MemosdProcess first(MEMOS_MEMOSD, dir.path());
  std::set<std::uint64_t> live;
  std::uint64_t doomed = 0;
  BOOST_REQUIRE_MESSAGE(first.start(), first.log());
  {
    auto c = connect(first);
    BOOST_REQUIRE(c->cube_create("c").ok());
    for (int i = 0; i < 20; ++i) {
      auto added = c->add("c", {"otter fact " + std::to_string(i)});
      BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
      live.insert(added->id);
    }
    doomed = *live.begin();
  }
  BOOST_TEST(first.stop() == 0);

  // Tombstones purged at once; nothing snapshot at the stop.
  const std::string conf =
      config(dir,
             "[store]\ntombstone_retention_s = 0\nretention_interval_ms = 100\n"
             "[search]\nsnapshot_interval_s = 86400\nstop_snapshot_s = 0\n");
  MemosdProcess second(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_REQUIRE_MESSAGE(second.start(), second.log());
  {
    auto c = connect(second);
    BOOST_REQUIRE(c->remove("c", doomed).ok());
    live.erase(doomed);
    bool purged = false;
    for (int i = 0; i < 200 && !purged; ++i) {
      auto history = c->history("c", doomed);
      purged = !history.ok() && history.error().code == memos::ErrorCode::not_found;
      if (!purged) std::this_thread::sleep_for(20ms);
    }
    BOOST_REQUIRE_MESSAGE(purged, "the removed item was not purged");
  }
  BOOST_TEST(second.stop() == 0);

  MemosdProcess third(MEMOS_MEMOSD, dir.path());
  BOOST_REQUIRE_MESSAGE(third.start(), third.log());
  BOOST_TEST(third.log().find("after catching up") != std::string::npos, third.log());
  auto c = connect(third);
  expect_hits(*c, "otter", live, "after the rebuild");
  BOOST_TEST(dense_ids(*c) == live);
}
