// The router's spending (kernel/router_ledger.h over the store's
// `router_usage`): charges add up within a UTC day and start again the
// next, what was flushed survives a reopen, and a damaged row reads as
// nothing spent and is replaced, never an error that stops routing.
#define BOOST_TEST_MODULE router_ledger
#include <lmdb.h>
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>

#include "kernel/router_ledger.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

namespace store = memos::store;
using memos::kernel::RouterLedger;
using memos::testing::open_store;

namespace {

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kNoon = 20'000 * kDay + kDay / 2;

std::uint64_t spent(RouterLedger& ledger, store::Store& st, store::TenantId t, std::int64_t now) {
  std::optional<store::ReadTxn> txn;
  BOOST_REQUIRE(st.begin_read(&txn).ok());
  return ledger.spent(t, now, *txn);
}

void flush(RouterLedger& ledger, store::Store& st) {
  auto batch = ledger.take();
  BOOST_REQUIRE(memos::testing::write(st, [&](store::WriteTxn& w) {
                  return w.add_router_usage(batch);
                }).ok());
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_days_spending_adds_up_survives_a_reopen_and_ends_at_midnight) {
  memos::testing::TempDir dir;
  {
    auto st = open_store(dir.path());
    RouterLedger ledger;
    BOOST_TEST(spent(ledger, *st, 1000, kNoon) == 0u);
    ledger.charge(1000, 120, kNoon);
    ledger.charge(1000, 30, kNoon + 1000);
    ledger.charge(2000, 7, kNoon);
    BOOST_TEST(spent(ledger, *st, 1000, kNoon) == 150u);
    flush(ledger, *st);
    BOOST_TEST(ledger.take().empty());
    ledger.charge(1000, 50, kNoon + 2000);  // after the flush: still counted
    BOOST_TEST(spent(ledger, *st, 1000, kNoon) == 200u);
    flush(ledger, *st);
    std::optional<store::ReadTxn> txn;
    BOOST_REQUIRE(st->begin_read(&txn).ok());
    store::RouterUsage row;
    BOOST_REQUIRE(txn->router_usage(1000, &row).ok());
    BOOST_TEST(row.day == RouterLedger::day_of(kNoon));
    BOOST_TEST(row.tokens == 200u);
    BOOST_TEST(row.queries == 3u);
  }
  // A new ledger (a restart) reads the day from the store.
  auto st = open_store(dir.path());
  RouterLedger ledger;
  BOOST_TEST(spent(ledger, *st, 1000, kNoon + 3000) == 200u);
  BOOST_TEST(spent(ledger, *st, 2000, kNoon) == 7u);
  BOOST_TEST(spent(ledger, *st, 3000, kNoon) == 0u);
  // The next day starts at zero, in memory and in the store.
  BOOST_TEST(spent(ledger, *st, 1000, kNoon + kDay) == 0u);
  ledger.charge(1000, 9, kNoon + kDay);
  BOOST_TEST(spent(ledger, *st, 1000, kNoon + kDay) == 9u);
  flush(ledger, *st);
  RouterLedger fresh;
  BOOST_TEST(spent(fresh, *st, 1000, kNoon + kDay) == 9u);
}

BOOST_AUTO_TEST_CASE(a_damaged_row_reads_as_nothing_spent_and_is_replaced) {
  memos::testing::TempDir dir;
  { open_store(dir.path()); }  // creates the tables
  for (std::string bad : {std::string("short"), std::string(24, '\x7f')}) {
    {
      MDB_env* env = nullptr;
      BOOST_REQUIRE(mdb_env_create(&env) == 0);
      mdb_env_set_maxdbs(env, 32);
      BOOST_REQUIRE(mdb_env_open(env, dir.path().c_str(), 0, 0600) == 0);
      MDB_txn* t = nullptr;
      MDB_dbi dbi;
      BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &t) == 0);
      BOOST_REQUIRE(mdb_dbi_open(t, "router_usage", 0, &dbi) == 0);
      std::string key("\0\0\x03\xe8", 4);  // tenant 1000
      MDB_val k{key.size(), key.data()}, v{bad.size(), bad.data()};
      BOOST_REQUIRE(mdb_put(t, dbi, &k, &v, 0) == 0);
      BOOST_REQUIRE(mdb_txn_commit(t) == 0);
      mdb_env_close(env);
    }
    auto st = open_store(dir.path());
    std::optional<store::ReadTxn> txn;
    BOOST_REQUIRE(st->begin_read(&txn).ok());
    store::RouterUsage row;
    BOOST_TEST((txn->router_usage(1000, &row).code == store::Errc::corrupt));
    txn.reset();
    RouterLedger ledger;
    BOOST_TEST(spent(ledger, *st, 1000, kNoon) == 0u);
    ledger.charge(1000, 5, kNoon);
    flush(ledger, *st);
    BOOST_REQUIRE(st->begin_read(&txn).ok());
    BOOST_REQUIRE(txn->router_usage(1000, &row).ok());
    BOOST_TEST(row.tokens == 5u);
  }
}
