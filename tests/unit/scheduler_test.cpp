// The scheduler's parts that need no daemon (kernel/scheduler/): strength
// and retention arithmetic against hand-computed values, recall weights,
// the access log's batches, working-set selection and its order
// stability, the decision log, and the store's rows (strengths and
// working sets) across a restart, an old row format and damage.
#define BOOST_TEST_MODULE scheduler
#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <set>

#include "kernel/access_log.h"
#include "kernel/scheduler/decision_log.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/scheduler/strength.h"
#include "kernel/scheduler/working_set_selection.h"
#include "memcube/crc32c.h"
#include "memcube/store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/raw_write.h"
#include "tests/support/store_helpers.h"

using namespace memos::kernel::scheduler;
using memos::kernel::AccessLog;
using memos::policies::SchedulerSettings;
using memos::store::AccessStats;
using memos::testing::open_store;
using memos::testing::raw_write;
using memos::testing::TempDir;
using memos::testing::write;
namespace store = memos::store;

namespace {

constexpr std::int64_t kDayMs = 86400000;
constexpr std::uint64_t kDay = 86400;

AccessStats strength(double s, std::int64_t last_recall_ms) {
  AccessStats a;
  a.strength = s;
  a.last_recall_ms = last_recall_ms;
  return a;
}

}  // namespace

BOOST_AUTO_TEST_CASE(retention_follows_the_forgetting_curve) {
  const double tol = 1e-9;
  // Never recalled, S = 1, a day after its creation: R = e^-1 = 0.3678794412.
  BOOST_TEST(std::abs(retention(AccessStats{}, 0, kDayMs, kDay) - 0.3678794412) < tol);
  // Created now: R = 1.
  BOOST_TEST(retention(AccessStats{}, 5, 5, kDay) == 1.0);
  // Two recalls of gain 1 (S = 3), the last on day 2; on day 5, t = 3:
  // R = e^(-3/3) = e^-1.
  BOOST_TEST(std::abs(retention(strength(3, 2 * kDayMs), 0, 5 * kDayMs, kDay) - 0.3678794412) <
             tol);
  // S = 2, half a day: R = e^-0.25 = 0.7788007831.
  BOOST_TEST(std::abs(retention(strength(2, kDayMs), 0, kDayMs + kDayMs / 2, kDay) - 0.7788007831) <
             tol);
  // In seconds: S = 4, 2 s: e^-0.5 = 0.6065306597.
  BOOST_TEST(std::abs(retention(strength(4, 1000), 0, 3000, 1) - 0.6065306597) < tol);
  // A clock that went back: t = 0, never above 1.
  BOOST_TEST(retention(strength(1, 10 * kDayMs), 0, kDayMs, kDay) == 1.0);
  // A stored strength below 1 (impossible through the store) counts as 1.
  BOOST_TEST(std::abs(retention(strength(0.1, 0), 0, kDayMs, kDay) - 0.3678794412) < tol);
}

BOOST_AUTO_TEST_CASE(the_moment_retention_falls_below_a_threshold) {
  // S = 2, threshold 0.5: t = 2 ln 2 = 1.3862943611 days = 119775832.8 ms
  // after the last recall.
  const std::int64_t at = falls_below_at_ms(strength(2, 1000), 0, kDay, 0.5);
  BOOST_TEST(std::llabs(at - (1000 + 119775832)) <= 1);
  // Never recalled: from the creation. S = 1, threshold e^-1: one unit.
  BOOST_TEST(
      std::llabs(falls_below_at_ms(AccessStats{}, 7000, 60, std::exp(-1.0)) - (7000 + 60000)) <= 1);
  // Consistent with retention(): just before, above; just after, below.
  AccessStats s = strength(3, 0);
  std::int64_t t = falls_below_at_ms(s, 0, 1, 0.2);
  BOOST_TEST(retention(s, 0, t - 5, 1) > 0.2);
  BOOST_TEST(retention(s, 0, t + 5, 1) < 0.2);
}

BOOST_AUTO_TEST_CASE(recalls_weigh_by_use_and_scores_by_importance) {
  SchedulerSettings settings;
  BOOST_TEST(recall_weight(Recall::read, settings) == 1.0);
  BOOST_TEST(recall_weight(Recall::context, settings) == 1.0);
  BOOST_TEST(recall_weight(Recall::search_hit, settings) == 0.25);
  settings.search_recall_weight = 0.1;
  BOOST_TEST(recall_weight(Recall::search_hit, settings) == 0.1);
  // No importance given counts 0.5.
  BOOST_TEST(working_set_score(0.5, 0) == 0.25);
  BOOST_TEST(std::abs(working_set_score(0.5, 0.8f) - 0.4) < 1e-6);
}

BOOST_AUTO_TEST_CASE(the_access_log_batches_reads_and_recalls) {
  AccessLog log;
  SchedulerSettings settings;
  settings.strength_gain = 2;
  record_use(log, settings, true, 1, 10, Recall::read, 100);        // +2
  record_use(log, settings, true, 1, 10, Recall::search_hit, 300);  // +0.5
  record_use(log, settings, true, 1, 10, Recall::context, 200);     // +2
  record_use(log, settings, false, 1, 11, Recall::read, 400);       // a grantee: a read only
  auto batch = log.take();
  BOOST_REQUIRE(batch.size() == 2u);
  const auto& a = batch[0].item == 10 ? batch[0] : batch[1];
  const auto& b = batch[0].item == 10 ? batch[1] : batch[0];
  BOOST_TEST(a.hits == 3u);
  BOOST_TEST(a.last_access_ms == 300);
  BOOST_TEST(a.recalls == 2.25);
  BOOST_TEST(a.strength == 4.5);
  BOOST_TEST(a.last_recall_ms == 300);
  BOOST_TEST(b.hits == 1u);
  BOOST_TEST(b.recalls == 0.0);
  BOOST_TEST(b.strength == 0.0);
  BOOST_TEST(b.last_recall_ms == 0);
  BOOST_TEST(log.take().empty());
}

BOOST_AUTO_TEST_CASE(selection_takes_the_best_that_fit) {
  // Budget 10: a (score 0.9, 4) and c (0.7, 5) fit; b (0.8, 7) does not
  // after a, d (0.1, 1) fills the last token.
  auto sel = select_working_set({}, {{1, 0.9, 4}, {2, 0.8, 7}, {3, 0.7, 5}, {4, 0.1, 1}}, 10, 100);
  BOOST_TEST((sel.items == std::vector<memos::store::ItemId>{1, 3, 4}));
  BOOST_TEST(sel.tokens == 10u);
  BOOST_TEST((sel.joined == sel.items));
  BOOST_TEST(sel.left.empty());
  // Ties go to the lower id; a cap on members holds.
  auto tie = select_working_set({}, {{9, 0.5, 1}, {3, 0.5, 1}, {5, 0.5, 1}}, 100, 2);
  BOOST_TEST((tie.items == std::vector<memos::store::ItemId>{3, 5}));
  // Nothing fits a budget of 0.
  BOOST_TEST(select_working_set({}, {{1, 1, 1}}, 0, 100).items.empty());
}

BOOST_AUTO_TEST_CASE(the_working_set_order_is_stable) {
  // Members keep the order they joined in, even when their scores change
  // order; a leaver's place closes up; newcomers go last, best first.
  std::vector<memos::store::ItemId> previous{30, 10, 20};
  auto sel = select_working_set(
      previous, {{10, 0.9, 1}, {20, 0.1, 1}, {30, 0.5, 1}, {40, 0.2, 1}, {50, 0.8, 1}}, 4, 100);
  // The best four: 10, 50, 30, 40 (20 leaves).
  BOOST_TEST((sel.items == std::vector<memos::store::ItemId>{30, 10, 50, 40}));
  BOOST_TEST((sel.joined == std::vector<memos::store::ItemId>{50, 40}));
  BOOST_TEST((sel.left == std::vector<memos::store::ItemId>{20}));
  // The same input again changes nothing.
  auto again = select_working_set(
      sel.items, {{10, 0.9, 1}, {20, 0.1, 1}, {30, 0.5, 1}, {40, 0.2, 1}, {50, 0.8, 1}}, 4, 100);
  BOOST_TEST((again.items == sel.items));
  BOOST_TEST(!again.changed());

  // Property: over random score drifts, members that stay keep their
  // relative order, and the set is always the best that fits.
  std::mt19937 rng(17);
  std::vector<memos::store::ItemId> set;
  for (int round = 0; round < 200; ++round) {
    std::vector<Candidate> cands;
    for (memos::store::ItemId id = 1; id <= 30; ++id) {
      cands.push_back({id, std::uniform_real_distribution<double>(0, 1)(rng),
                       static_cast<std::uint32_t>(1 + rng() % 5)});
    }
    auto next = select_working_set(set, cands, 20, 100);
    std::vector<memos::store::ItemId> stayed_before, stayed_after;
    std::set<memos::store::ItemId> now(next.items.begin(), next.items.end());
    for (auto id : set)
      if (now.contains(id)) stayed_before.push_back(id);
    std::set<memos::store::ItemId> was(set.begin(), set.end());
    for (auto id : next.items)
      if (was.contains(id)) stayed_after.push_back(id);
    BOOST_TEST_REQUIRE((stayed_before == stayed_after), "round " << round);
    // The stayers come first, then the newcomers.
    BOOST_TEST_REQUIRE((std::equal(stayed_after.begin(), stayed_after.end(), next.items.begin())),
                       "round " << round);
    BOOST_TEST_REQUIRE(next.tokens <= 20u);
    set = next.items;
  }
}

BOOST_AUTO_TEST_CASE(token_estimates_count_the_line) {
  BOOST_TEST(estimate_tokens("") == 3u);
  BOOST_TEST(estimate_tokens("abcd") == 3u);
  BOOST_TEST(estimate_tokens(std::string(400, 'x')) == 102u);
}

// The estimate learns from a measured block: at once when the set is larger
// than thought (over its bound), only past 5 % when it is smaller; it stays
// in its range and ignores a measure that means nothing.
BOOST_AUTO_TEST_CASE(the_token_estimate_is_calibrated_with_slack) {
  BOOST_TEST(calibrate_estimate(1.0, 1.19) == 1.19);   // learns
  BOOST_TEST(calibrate_estimate(1.19, 1.20) == 1.20);  // larger: at once
  BOOST_TEST(calibrate_estimate(0.89, 0.92) == 0.92);
  BOOST_TEST(calibrate_estimate(1.19, 1.15) == 1.19);  // smaller, within 5 %
  BOOST_TEST(calibrate_estimate(1.19, 1.10) == 1.10);  // smaller, past it
  BOOST_TEST(calibrate_estimate(1.0, 7.0) == kMaxCalibration);
  BOOST_TEST(calibrate_estimate(1.0, 0.1) == kMinCalibration);
  BOOST_TEST(calibrate_estimate(1.3, 0.0) == 1.3);
  BOOST_TEST(calibrate_estimate(1.3, -2.0) == 1.3);
  BOOST_TEST(calibrate_estimate(1.3, std::nan("")) == 1.3);
  BOOST_TEST(calibrate_estimate(1.3, std::numeric_limits<double>::infinity()) == 1.3);
  // Selecting with the calibrated budget keeps the real tokens in bound:
  // four memories of 100 estimated tokens that are really 120 each fit a
  // budget of 400 by the estimate, and three of them by the measure.
  std::vector<Candidate> four = {{1, 0.9, 100}, {2, 0.8, 100}, {3, 0.7, 100}, {4, 0.6, 100}};
  BOOST_TEST(select_working_set({}, four, 400, 100).items.size() == 4u);
  const double factor = calibrate_estimate(1.0, 1.2);
  const auto budget = static_cast<std::uint32_t>(400 / factor);
  const Selection calibrated = select_working_set({}, four, budget, 100);
  BOOST_TEST(calibrated.items.size() == 3u);
  BOOST_TEST(calibrated.tokens * factor <= 400.0);
}

BOOST_AUTO_TEST_CASE(the_decision_log_keeps_the_last_of_each_tenant) {
  DecisionLog log(3);
  for (int i = 0; i < 5; ++i) {
    log.add({i, static_cast<memos::store::TenantId>(i % 2 ? 2000 : 1000), 7, "c",
             static_cast<std::uint64_t>(i), Action::promoted, "r"});
  }
  // Capacity 3 overall: 2, 3, 4 remain; tenant 1000 has 2 and 4.
  auto a = log.list(1000, 0, 10);
  BOOST_REQUIRE(a.size() == 2u);
  BOOST_TEST(a[0].item == 2u);
  BOOST_TEST(a[1].item == 4u);
  BOOST_TEST(log.list(1000, 0, 1).at(0).item == 4u);  // the last one
  BOOST_TEST(log.list(1000, 8, 10).empty());          // another cube
  BOOST_TEST(log.list(3000, 0, 10).empty());
  DecisionLog none(0);
  none.add({1, 1, 1, "c", 1, Action::archived, "r"});
  BOOST_TEST(none.list(1, 0, 10).empty());
}

BOOST_AUTO_TEST_CASE(strengths_and_working_sets_survive_a_restart) {
  TempDir dir;
  store::Cube cube;
  store::Item item;
  {
    auto st = open_store(dir.path());
    BOOST_REQUIRE(write(*st, [&](store::WriteTxn& t) {
                    store::Status s = t.create_cube(1000, "c", "hash-v1", 8, 1, &cube);
                    store::ItemDraft d;
                    d.text = "a memory";
                    if (s.ok()) s = t.add_item(cube.id, d, 0, 5, &item);
                    return s;
                  }).ok());
    BOOST_REQUIRE(write(*st, [&](store::WriteTxn& t) {
                    store::Status s = t.record_access({{cube.id, item.id, 2, 50, 1.25, 1.25, 40},
                                                       {cube.id, 999, 1, 60, 1, 1, 60}});
                    if (!s.ok()) return s;
                    // Hostile additions change nothing.
                    s = t.record_access({{cube.id, item.id, 1, 70, -5, NAN, 0}});
                    if (!s.ok()) return s;
                    store::WorkingSet w;
                    w.cube = cube.id;
                    w.tenant = 1000;
                    w.generation = 3;
                    w.items = {item.id, 42};
                    w.estimated_tokens = 9;
                    w.state = 77;
                    w.block_tokens = 128;
                    w.updated_at_ms = 123;
                    return t.put_working_set(w);
                  }).ok());
  }
  auto st = open_store(dir.path());
  std::optional<store::ReadTxn> txn;
  BOOST_REQUIRE(st->begin_read(&txn).ok());
  AccessStats a;
  BOOST_REQUIRE(txn->access_stats(cube.id, item.id, &a).ok());
  BOOST_TEST(a.hits == 3u);
  BOOST_TEST(a.last_access_ms == 70);
  BOOST_TEST(a.strength == 2.25);
  BOOST_TEST(a.recalls == 1.25);
  BOOST_TEST(a.last_recall_ms == 40);
  AccessStats gone;  // item 999 does not exist: nothing kept
  BOOST_REQUIRE(txn->access_stats(cube.id, 999, &gone).ok());
  BOOST_TEST((gone == AccessStats{}));
  store::WorkingSet w;
  BOOST_REQUIRE(txn->working_set(cube.id, &w).ok());
  BOOST_TEST((w.items == std::vector<memos::store::ItemId>{item.id, 42}));
  BOOST_TEST(w.generation == 3u);
  BOOST_TEST(w.state == 77u);
  BOOST_TEST(w.block_tokens == 128u);
  std::vector<store::WorkingSet> all;
  BOOST_REQUIRE(txn->list_working_sets(&all).ok());
  BOOST_REQUIRE(all.size() == 1u);
  BOOST_TEST((all[0] == w));
  txn.reset();

  // Removing the cube removes its working set; a set for a missing cube
  // is refused.
  BOOST_REQUIRE(write(*st, [&](store::WriteTxn& t) {
                  store::Cube removed;
                  return t.remove_cube(1000, "c", true, &removed);
                }).ok());
  BOOST_REQUIRE(st->begin_read(&txn).ok());
  BOOST_TEST((txn->working_set(cube.id, &w).code == store::Errc::not_found));
  txn.reset();
  BOOST_TEST((write(*st, [&](store::WriteTxn& t) { return t.put_working_set(w); }).code ==
              store::Errc::not_found));
  store::WorkingSet huge;
  huge.cube = cube.id;
  huge.items.assign(store::kMaxWorkingSetItems + 1, 1);
  BOOST_TEST((write(*st, [&](store::WriteTxn& t) { return t.put_working_set(huge); }).code ==
              store::Errc::conflict));
}

BOOST_AUTO_TEST_CASE(an_old_access_row_reads_as_never_recalled_and_damage_is_reported) {
  TempDir dir;
  store::Cube cube;
  store::Item item;
  {
    auto st = open_store(dir.path());
    BOOST_REQUIRE(write(*st, [&](store::WriteTxn& t) {
                    store::Status s = t.create_cube(1000, "c", "hash-v1", 8, 1, &cube);
                    store::ItemDraft d;
                    d.text = "a memory";
                    if (s.ok()) s = t.add_item(cube.id, d, 0, 5, &item);
                    if (s.ok()) s = t.record_access({{cube.id, item.id, 1, 50, 1, 1, 50}});
                    return s;
                  }).ok());
  }
  // A row as memosd wrote it before strengths: hits 7, last access 99.
  std::string old;
  for (std::uint64_t v : {std::uint64_t{7}, std::uint64_t{99}}) {
    for (int i = 0; i < 8; ++i) old.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::uint32_t crc = memos::store::crc32c(old.data(), 16);
  for (int i = 0; i < 4; ++i) old.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  std::string key;
  for (std::uint64_t v : {cube.id, item.id}) {
    for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  raw_write(dir.path(), "access", [&](MDB_txn* t, MDB_dbi dbi) {
    MDB_val k{key.size(), key.data()}, v{old.size(), old.data()};
    BOOST_REQUIRE(mdb_put(t, dbi, &k, &v, 0) == 0);
  });
  {
    auto st = open_store(dir.path());
    std::optional<store::ReadTxn> txn;
    BOOST_REQUIRE(st->begin_read(&txn).ok());
    AccessStats a;
    BOOST_REQUIRE(txn->access_stats(cube.id, item.id, &a).ok());
    BOOST_TEST(a.hits == 7u);
    BOOST_TEST(a.last_access_ms == 99);
    BOOST_TEST(a.strength == 1.0);
    BOOST_TEST(a.last_recall_ms == 0);
  }
  // A flipped byte, and a row of another length: corrupt, not a wrong
  // strength.
  for (std::string bad : {std::string(44, '\x01'), std::string(30, '\0')}) {
    raw_write(dir.path(), "access", [&](MDB_txn* t, MDB_dbi dbi) {
      MDB_val k{key.size(), key.data()}, v{bad.size(), bad.data()};
      BOOST_REQUIRE(mdb_put(t, dbi, &k, &v, 0) == 0);
    });
    auto st = open_store(dir.path());
    std::optional<store::ReadTxn> txn;
    BOOST_REQUIRE(st->begin_read(&txn).ok());
    AccessStats a;
    BOOST_TEST((txn->access_stats(cube.id, item.id, &a).code == store::Errc::corrupt));
  }
  // A damaged working-set row likewise.
  raw_write(dir.path(), "working_sets", [&](MDB_txn* t, MDB_dbi dbi) {
    std::string k;
    for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((cube.id >> (8 * i)) & 0xff));
    std::string bad(50, '\x01');
    MDB_val kv{k.size(), k.data()}, v{bad.size(), bad.data()};
    BOOST_REQUIRE(mdb_put(t, dbi, &kv, &v, 0) == 0);
  });
  auto st = open_store(dir.path());
  std::optional<store::ReadTxn> txn;
  BOOST_REQUIRE(st->begin_read(&txn).ok());
  store::WorkingSet w;
  BOOST_TEST((txn->working_set(cube.id, &w).code == store::Errc::corrupt));
}
