#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "memcube/commit_queue.h"
#include "memcube/crc32c.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

using namespace memos::store;
using memos::testing::open_store;
using memos::testing::TempDir;
using memos::testing::write;

namespace {

ItemDraft draft(std::string text, std::vector<std::string> tags = {},
                std::vector<MetaEntry> meta = {}) {
  ItemDraft d;
  d.text = std::move(text);
  d.tags = std::move(tags);
  d.meta = std::move(meta);
  d.provenance.writer = 1000;
  return d;
}

ItemPatch text_patch(std::string text) {
  ItemPatch p;
  p.text = std::move(text);
  return p;
}

// Runs `edit` in a write transaction of raw LMDB on the closed store in
// `dir`, and commits it: how a test damages or ages a store. `edit` gets
// the transaction and the meta table.
void edit_raw_store(const std::string& dir, const std::function<void(MDB_txn*, MDB_dbi)>& edit) {
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 32);
  BOOST_REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0600) == 0);
  MDB_txn* txn;
  mdb_txn_begin(env, nullptr, 0, &txn);
  MDB_dbi meta;
  BOOST_REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
  edit(txn, meta);
  BOOST_REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

// Makes the closed store in `dir` look as a memosd of schema `version` left
// it: the tables a later schema added are dropped, the version rewritten.
void make_old_store(const std::string& dir, char version,
                    std::initializer_list<const char*> later_tables) {
  edit_raw_store(dir, [&](MDB_txn* txn, MDB_dbi meta) {
    for (const char* table : later_tables) {
      MDB_dbi dbi;
      BOOST_REQUIRE(mdb_dbi_open(txn, table, 0, &dbi) == 0);
      BOOST_REQUIRE(mdb_drop(txn, dbi, 1) == 0);
    }
    char schema[4] = {0, 0, 0, version};
    MDB_val k{6, const_cast<char*>("schema")}, v{4, schema};
    BOOST_REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
  });
}

}  // namespace

// The checksum of every record: the standard check value, whatever the
// length and alignment (the hardware path takes 8 bytes at a time), and
// continued across pieces.
BOOST_AUTO_TEST_CASE(crc32c_matches_the_standard_and_continues_across_pieces) {
  BOOST_TEST(memos::store::crc32c("123456789", 9) == 0xE3069283u);
  BOOST_TEST(memos::store::crc32c("", 0) == 0u);
  std::string data(1000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  for (std::size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    std::uint32_t whole = memos::store::crc32c(data.data() + 1, data.size() - 1);
    std::uint32_t first = memos::store::crc32c(data.data() + 1, split == 1000 ? 999 : split);
    std::uint32_t both =
        memos::store::crc32c(data.data() + 1 + std::min<std::size_t>(split, 999),
                             data.size() - 1 - std::min<std::size_t>(split, 999), first);
    BOOST_TEST(both == whole, "split at " << split);
  }
}

BOOST_AUTO_TEST_CASE(versions_history_and_tombstones) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  Item v1, v2, v3, tomb;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1000, "notes", "hash-v1", 64, 1, &cube);
                }).ok());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.add_item(cube.id, draft("first", {"a", "b"}, {{"k", "v"}}), 0, 10, &v1);
                }).ok());
  BOOST_TEST(v1.version == 1u);
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.update_item(cube.id, v1.id, text_patch("second"), 20, &v2);
                }).ok());
  BOOST_TEST(v2.version == 2u);
  BOOST_TEST(v2.tags == (std::vector<std::string>{"a", "b"}));  // kept when not given
  BOOST_TEST(v2.created_at_ms == 10);
  BOOST_TEST(v2.recorded_at_ms == 20);
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.update_item(
                      cube.id, v1.id,
                      {"third", std::vector<std::string>{"c"}, std::vector<MetaEntry>{}, 1000, ""},
                      30, &v3);
                }).ok());
  BOOST_TEST(v3.tags == (std::vector<std::string>{"c"}));
  BOOST_TEST(v3.meta.empty());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.remove_item(cube.id, v1.id, 1000, 40, &tomb);
                }).ok());
  BOOST_TEST(tomb.version == 4u);
  BOOST_TEST(tomb.deleted());

  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Item got;
  BOOST_TEST((r->get_item(cube.id, v1.id, 0, &got).code == Errc::not_found));
  BOOST_REQUIRE(r->get_item(cube.id, v1.id, 1, &got).ok());
  BOOST_TEST(got.text == "first");
  BOOST_REQUIRE(r->get_item(cube.id, v1.id, 3, &got).ok());
  BOOST_TEST(got.text == "third");
  BOOST_TEST((r->get_item(cube.id, v1.id, 9, &got).code == Errc::not_found));
  std::vector<Item> history;
  BOOST_REQUIRE(r->history(cube.id, v1.id, &history).ok());
  BOOST_REQUIRE_EQUAL(history.size(), 4u);
  for (std::size_t i = 0; i < history.size(); ++i) BOOST_TEST(history[i].version == i + 1);
  BOOST_TEST(history.back().deleted());
  Cube after;
  BOOST_REQUIRE(r->find_cube(1000, "notes", &after).ok());
  BOOST_TEST(after.live_items == 0u);
  r.reset();

  // A deleted item can be neither updated nor deleted again.
  Item ignored;
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.update_item(cube.id, v1.id, text_patch("x"), 50, &ignored);
              }).code == Errc::not_found));
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.remove_item(cube.id, v1.id, 1000, 50, &ignored);
              }).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(cubes_are_per_tenant_and_removal_needs_force) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube a, b, dup;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "same", "hash-v1", 64, 1, &a);
                }).ok());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(2, "same", "hash-v1", 64, 1, &b);
                }).ok());
  BOOST_TEST(a.id != b.id);
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.create_cube(1, "same", "hash-v1", 64, 1, &dup);
              }).code == Errc::already_exists));
  Item item;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.add_item(a.id, draft("x", {}, {}), 0, 5, &item);
                }).ok());
  Cube removed;
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.remove_cube(1, "same", false, &removed);
              }).code == Errc::conflict));
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1, "same", true, &removed); }).ok());

  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  std::vector<Cube> cubes;
  BOOST_REQUIRE(r->list_cubes(1, &cubes).ok());
  BOOST_TEST(cubes.empty());
  BOOST_REQUIRE(r->list_cubes(2, &cubes).ok());
  BOOST_REQUIRE_EQUAL(cubes.size(), 1u);
  BOOST_TEST(cubes[0].id == b.id);
  std::vector<Item> history;
  BOOST_TEST((r->history(a.id, item.id, &history).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(nested_failure_rolls_back_only_its_own_changes) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  Item kept, lost;
  std::optional<WriteTxn> txn;
  BOOST_REQUIRE(store->begin_write(&txn).ok());
  BOOST_REQUIRE(
      txn->nested([&](WriteTxn& t) { return t.create_cube(1, "c", "hash-v1", 16, 1, &cube); })
          .ok());
  BOOST_REQUIRE(txn->nested([&](WriteTxn& t) {
                     return t.add_item(cube.id, draft("kept", {}, {}), 0, 2, &kept);
                   })
                    .ok());
  Status failed = txn->nested([&](WriteTxn& t) -> Status {
    Status s = t.add_item(cube.id, draft("lost", {}, {}), 0, 3, &lost);
    if (!s.ok()) return s;
    return {Errc::conflict, "the job fails after writing"};
  });
  BOOST_TEST((failed.code == Errc::conflict));
  BOOST_REQUIRE(txn->commit().ok());

  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Item got;
  BOOST_TEST(r->get_item(cube.id, kept.id, 0, &got).ok());
  BOOST_TEST((r->get_item(cube.id, lost.id, 0, &got).code == Errc::not_found));
  Cube c;
  BOOST_REQUIRE(r->find_cube(1, "c", &c).ok());
  BOOST_TEST(c.live_items == 1u);
}

BOOST_AUTO_TEST_CASE(everything_survives_reopen_and_ids_stay_monotonic) {
  TempDir dir;
  std::uint64_t last_id = 0;
  CubeId cube_id = 0;
  {
    auto store = open_store(dir.path());
    Cube cube;
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.create_cube(7, "persist", "hash-v1", 32, 1, &cube);
                  }).ok());
    cube_id = cube.id;
    for (int i = 0; i < 100; ++i) {
      Item item;
      BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                      return t.add_item(cube.id, draft("item " + std::to_string(i), {"t"}), 0, 100,
                                        &item);
                    }).ok());
      BOOST_TEST(item.id > last_id);  // same clock reading, still increasing
      last_id = item.id;
    }
  }
  auto store = open_store(dir.path());
  std::optional<WriteTxn> txn;
  BOOST_REQUIRE(store->begin_write(&txn).ok());
  // A clock that went back still yields a larger id.
  BOOST_TEST(txn->next_id(1) > last_id);
  txn->abort();
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  std::size_t count = 0;
  BOOST_REQUIRE(r->for_each_live_item(cube_id, [&](const Item& item) {
                   BOOST_TEST(item.text == "item " + std::to_string(count));
                   ++count;
                 }).ok());
  BOOST_TEST(count == 100u);
}

// Owners of different shards issue ids on their own nodes: each shard's ids
// are its own residue modulo the shards, so no two shards ever issue the
// same id, and each shard's stay increasing, across a reopen too. One shard
// issues exactly what a store issued before there were shards.
BOOST_AUTO_TEST_CASE(each_shard_issues_ids_of_its_own_residue) {
  TempDir dir, legacy_dir;
  const std::int64_t now = 1'700'000'000'000;
  const std::uint64_t base = static_cast<std::uint64_t>(now) << 16;
  {
    auto store = open_store(legacy_dir.path());
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn).ok());
    BOOST_TEST(txn->shard() == 0u);
    BOOST_TEST(txn->next_id(now) == base);
    BOOST_TEST(txn->next_id(now) == base + 1);
    BOOST_TEST(txn->next_id(now - 5) == base + 2);  // the clock went back
    BOOST_REQUIRE(txn->commit().ok());
  }
  // A store keeps the shards it was made for: its tenants' rows belong to
  // shards of that count. One that issued ids with one shard never takes
  // several, and one made for several opens for no other count.
  auto refused = [](const std::string& path, std::uint32_t shards, const std::string& says) {
    Status s;
    StoreOptions options;
    options.shards = shards;
    BOOST_TEST(!Store::open(path, options, &s));
    BOOST_TEST((s.code == Errc::io));
    BOOST_TEST(s.message.find(says) != std::string::npos, s.message);
  };
  refused(legacy_dir.path(), 4, "made for 1 shard(s) (it holds ids issued before it had shards)");
  BOOST_TEST(open_store(legacy_dir.path())->shards() == 1u);
  std::set<std::uint64_t> issued;
  std::vector<std::uint64_t> last(4, 0);
  {
    auto store = open_store(dir.path(), 4);
    BOOST_TEST(store->shards() == 4u);
    std::optional<WriteTxn> txn;
    BOOST_TEST((store->begin_write(&txn, 4).code == Errc::conflict));
    for (int round = 0; round < 3; ++round) {
      for (std::uint32_t shard = 0; shard < 4; ++shard) {
        BOOST_REQUIRE(store->begin_write(&txn, shard).ok());
        for (int i = 0; i < 50; ++i) {
          // Every shard reads the same clock, which goes back in round 2.
          const std::uint64_t id = txn->next_id(round == 2 ? now - 1000 : now + round);
          BOOST_TEST(id % 4 == shard);
          BOOST_TEST(id > last[shard]);
          BOOST_TEST(id >= base);
          BOOST_TEST(issued.insert(id).second, "id " << id << " issued twice");
          last[shard] = id;
        }
        BOOST_REQUIRE(txn->commit().ok());
      }
    }
    // The first id of a new millisecond is the least of its residue there.
    BOOST_REQUIRE(store->begin_write(&txn, 3).ok());
    BOOST_TEST(txn->next_id(now + 10) == ((static_cast<std::uint64_t>(now + 10) << 16) | 3));
    txn->abort();
  }
  auto store = open_store(dir.path(), 4);  // each shard's last id was kept
  for (std::uint32_t shard = 0; shard < 4; ++shard) {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn, shard).ok());
    const std::uint64_t id = txn->next_id(now);
    BOOST_TEST(id > last[shard]);
    BOOST_TEST(id < last[shard] + 2 * 4);
  }
  for (std::uint32_t shards : {0u, Store::kMaxShards + 1}) refused(dir.path(), shards, "shards");
  store.reset();
  for (std::uint32_t shards : {1u, 2u, 5u}) refused(dir.path(), shards, "made for 4 shard(s)");
}

// What a node making a cluster asks of its store before it opens it
// (Store::shards_made_for): the count it must be opened for, or 0 when any
// will do; a damaged row is refused, not taken for a count.
BOOST_AUTO_TEST_CASE(a_store_says_the_shards_it_was_made_for) {
  auto made_for = [](const std::string& path) {
    std::uint32_t shards = 99;
    const Status s = Store::shards_made_for(path, &shards);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return shards;
  };
  TempDir none, empty, single, four, damaged;
  BOOST_TEST(made_for(none.path()) == 0u);  // no store yet
  open_store(empty.path()).reset();
  BOOST_TEST(made_for(empty.path()) == 0u);  // opened once, no id issued
  {
    auto store = open_store(single.path());
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn).ok());
    txn->next_id(1'700'000'000'000);
    BOOST_REQUIRE(txn->commit().ok());
  }
  BOOST_TEST(made_for(single.path()) == 1u);  // a single node's, with ids
  open_store(four.path(), 4).reset();
  BOOST_TEST(made_for(four.path()) == 4u);
  BOOST_TEST(open_store(four.path(), 4)->shards() == 4u);  // still opens after the read
  open_store(damaged.path(), 4).reset();
  edit_raw_store(damaged.path(), [](MDB_txn* txn, MDB_dbi meta) {
    MDB_val k{6, const_cast<char*>("shards")}, v{3, const_cast<char*>("\x01\x02\x03")};
    BOOST_REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
  });
  std::uint32_t shards = 0;
  const Status s = Store::shards_made_for(damaged.path(), &shards);
  BOOST_TEST((s.code == Errc::corrupt), s.message);
  BOOST_TEST(shards == 0u);
}

// The writers that sweep many tenants' rows write only their shard's:
// each shard's owner runs them for its own shard, and its record carries
// nothing another shard's owner writes.
BOOST_AUTO_TEST_CASE(sweeping_writers_write_only_their_shards_rows) {
  TempDir dir;
  auto store = open_store(dir.path(), 4);
  // Two tenants of different shards, each with a cube holding an item
  // that has expired, one deleted long ago, and reads to count.
  const TenantId a = 1000;
  TenantId b = 1001;
  while (store->shard_of(b) == store->shard_of(a)) ++b;
  const std::uint32_t sa = store->shard_of(a), sb = store->shard_of(b);
  struct Tenant {
    Cube cube;
    Item expiring, deleted;
  } ta, tb;
  for (auto [tenant, t] : {std::pair{a, &ta}, std::pair{b, &tb}}) {
    BOOST_REQUIRE(write(
                      *store,
                      [&](WriteTxn& txn) {
                        BOOST_TEST(txn.writes_for(tenant));
                        ItemDraft expiring = draft("milk");
                        expiring.expires_at_ms = 100;
                        Item removed;
                        Status s = txn.create_cube(tenant, "c", "hash-v1", 16, 1, &t->cube);
                        if (s.ok()) s = txn.add_item(t->cube.id, expiring, 0, 10, &t->expiring);
                        if (s.ok()) s = txn.add_item(t->cube.id, draft("tea"), 0, 10, &t->deleted);
                        if (s.ok()) s = txn.remove_item(t->cube.id, t->deleted.id, 1, 20, &removed);
                        return s;
                      },
                      store->shard_of(tenant))
                      .ok());
  }
  // Shard a's sweep: a's rows only.
  RetentionResult result;
  BOOST_REQUIRE(write(
                    *store,
                    [&](WriteTxn& txn) {
                      BOOST_TEST(!txn.writes_for(b));
                      bool mine = false;
                      BOOST_TEST(txn.writes_for_cube(tb.cube.id, &mine).ok());
                      BOOST_TEST(!mine);
                      BOOST_TEST(txn.writes_for_cube(ta.cube.id, &mine).ok());
                      BOOST_TEST(mine);
                      Status s = txn.run_retention(1'000'000, 0, 100, &result);
                      if (s.ok())
                        s = txn.record_access({{ta.cube.id, ta.deleted.id + 1, 0, 0},
                                               {ta.cube.id, ta.expiring.id, 3, 500},
                                               {tb.cube.id, tb.expiring.id, 5, 500}});
                      if (s.ok()) s = txn.add_router_usage({{a, 7, 100, 1}, {b, 7, 200, 2}});
                      return s;
                    },
                    sa)
                    .ok());
  BOOST_TEST(result.expired.size() == 1u);
  BOOST_TEST((result.expired.at(0) == std::pair{ta.cube.id, ta.expiring.id}));
  BOOST_TEST(result.purged == 2u);  // the deleted item, and the expired one (no delay)
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Item head;
  BOOST_REQUIRE(r->get_item(tb.cube.id, tb.expiring.id, 0, &head).ok());
  BOOST_TEST(!head.deleted());  // b's expired item waits for b's shard
  std::vector<Item> versions;   // b's deleted item is not purged
  BOOST_TEST(r->history(tb.cube.id, tb.deleted.id, &versions).ok());
  BOOST_TEST(versions.size() == 2u);
  AccessStats stats;
  BOOST_REQUIRE(r->access_stats(tb.cube.id, tb.expiring.id, &stats).ok());
  BOOST_TEST(stats.hits == 0u);
  RouterUsage usage;
  BOOST_REQUIRE(r->router_usage(a, &usage).ok());
  BOOST_TEST(usage.tokens == 100u);
  BOOST_REQUIRE(r->router_usage(b, &usage).ok());
  BOOST_TEST(usage.tokens == 0u);
  r.reset();
  // Then b's shard sweeps b's.
  result = {};
  BOOST_REQUIRE(write(
                    *store,
                    [&](WriteTxn& txn) {
                      Status s = txn.run_retention(1'000'000, 0, 100, &result);
                      if (s.ok()) s = txn.record_access({{tb.cube.id, tb.expiring.id, 5, 500}});
                      return s;
                    },
                    sb)
                    .ok());
  BOOST_TEST(result.expired.size() == 1u);
  BOOST_TEST((result.expired.at(0) == std::pair{tb.cube.id, tb.expiring.id}));
  BOOST_TEST(result.purged == 2u);
}

// The shard of a tenant is fixed forever (every node and version must
// agree): these values are the function's, not a sample of it; and the
// tenants spread over the shards.
BOOST_AUTO_TEST_CASE(a_tenants_shard_is_fixed_and_tenants_spread) {
  BOOST_TEST(shard_of(1000, 1) == 0u);
  BOOST_TEST(shard_of(0, 16) == 15u);
  BOOST_TEST(shard_of(1000, 16) == 8u);
  BOOST_TEST(shard_of(1001, 16) == 4u);
  BOOST_TEST(shard_of(65534, 16) == 5u);
  BOOST_TEST(shard_of(4294967295u, 4096) == 448u);
  std::vector<int> count(16, 0);
  for (std::uint32_t uid = 1000; uid < 1000 + 16 * 256; ++uid) ++count[shard_of(uid, 16)];
  for (int n : count) {
    BOOST_TEST(n > 256 / 2);
    BOOST_TEST(n < 256 * 2);
  }
}

BOOST_AUTO_TEST_CASE(commit_queue_groups_and_completes_every_job_after_commit) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "q", "hash-v1", 16, 1, &cube);
                }).ok());
  std::atomic<int> ok{0}, failed{0};
  {
    CommitQueue queue(*store, [](const Status& s) { BOOST_FAIL("fatal: " + s.message); });
    for (int i = 0; i < 500; ++i) {
      auto item = std::make_shared<Item>();
      queue.submit({[&, i, item](WriteTxn& t) -> Status {
                      if (i % 10 == 0) return {Errc::conflict, "refused"};
                      return t.add_item(cube.id, draft(std::to_string(i), {}, {}), 0, i,
                                        item.get());
                    },
                    [&](const Status& s) { (s.ok() ? ok : failed)++; }});
    }
    queue.stop();
    BOOST_TEST(queue.jobs_committed() == 500u);
    BOOST_TEST(queue.groups_committed() <= 500u);
    // After stop, new jobs are refused at once as unavailable.
    Status late;
    queue.submit({[](WriteTxn&) { return Status{}; }, [&](const Status& s) { late = s; }});
    BOOST_TEST((late.code == Errc::unavailable));
  }
  BOOST_TEST(ok.load() == 450);
  BOOST_TEST(failed.load() == 50);
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  BOOST_REQUIRE(r->find_cube(1, "q", &c).ok());
  BOOST_TEST(c.live_items == 450u);
}

// The queue's thread is the store's writer only while it runs: before it
// starts and after it stops, the test thread writes directly (in debug
// builds begin_write asserts which thread writes).
BOOST_AUTO_TEST_CASE(the_writer_thread_is_bound_only_while_a_commit_queue_runs) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "w", "hash-v1", 16, 1, &cube);
                }).ok());
  for (int round = 0; round < 2; ++round) {
    {
      CommitQueue queue(*store, [](const Status& s) { BOOST_FAIL("fatal: " + s.message); });
      Item item;
      BOOST_TEST(queue
                     .submit_and_wait({.apply =
                                           [&](WriteTxn& t) {
                                             return t.add_item(cube.id, draft("queued"), 0, 2,
                                                               &item);
                                           },
                                       .done = {}})
                     .ok());
    }
    Item direct;
    BOOST_TEST(write(*store, [&](WriteTxn& t) {
                 return t.add_item(cube.id, draft("direct"), 0, 3, &direct);
               }).ok());
  }
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  BOOST_REQUIRE(r->find_cube(1, "w", &c).ok());
  BOOST_TEST(c.live_items == 4u);
}

BOOST_AUTO_TEST_CASE(a_full_map_grows_up_to_its_limit_then_writes_fail_retryably) {
  TempDir dir;
  Status s;
  StoreOptions small;
  small.map_size_bytes = 256 * 1024;
  small.max_map_size_bytes = 1024 * 1024;
  auto store = Store::open(dir.path(), small, &s);
  BOOST_REQUIRE_MESSAGE(store, s.message);
  Cube cube;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "full", "hash-v1", 16, 1, &cube);
                }).ok());
  // A raw transaction sees the full map as map_full (growable)...
  Status raw;
  int fitted = 0;
  for (int i = 0; i < 200 && raw.ok(); ++i, ++fitted) {
    Item item;
    raw = write(*store, [&](WriteTxn& t) {
      return t.add_item(cube.id, draft(std::string(4000, 'x')), 0, i, &item);
    });
  }
  BOOST_TEST((raw.code == Errc::map_full));

  // ...and the commit queue grows the map, then fails only past the limit,
  // while a read transaction is open on another thread the whole time.
  std::optional<ReadTxn> reader;
  std::atomic<bool> stop_reading{false};
  std::thread readers([&] {
    while (!stop_reading) {
      std::optional<ReadTxn> r;
      BOOST_REQUIRE(store->begin_read(&r).ok());
      Cube c;
      BOOST_REQUIRE(r->find_cube(1, "full", &c).ok());
    }
  });
  std::vector<Status> outcomes;
  {
    CommitQueue queue(*store, [](const Status& st) { BOOST_FAIL("fatal: " + st.message); });
    for (int i = 0; i < 400; ++i) {
      Item item;
      outcomes.push_back(queue.submit_and_wait(
          {.apply =
               [&](WriteTxn& t) {
                 return t.add_item(cube.id, draft(std::string(4000, 'y')), 0, i, &item);
               },
           .done = {}}));
      if (!outcomes.back().ok()) break;
    }
  }
  stop_reading = true;
  readers.join();
  BOOST_TEST(store->map_size() == 1024u * 1024u);
  BOOST_REQUIRE(!outcomes.back().ok());
  BOOST_TEST((outcomes.back().code == Errc::storage_full));
  // The grown map held more than the first one did.
  BOOST_TEST(outcomes.size() > static_cast<std::size_t>(fitted), outcomes.size()
                                                                     << " vs " << fitted);
  // Everything acknowledged is there, and reads still work.
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  BOOST_REQUIRE(r->find_cube(1, "full", &c).ok());
  BOOST_TEST(c.live_items >= outcomes.size() - 1);
}

BOOST_AUTO_TEST_CASE(corrupt_records_are_reported_not_crashed_on) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  Item item;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "c", "hash-v1", 16, 1, &cube);
                }).ok());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.add_item(cube.id, draft("fine", {}, {}), 0, 1, &item);
                }).ok());
  store.reset();
  // Overwrite the item's head with garbage through raw LMDB.
  edit_raw_store(dir.path(), [](MDB_txn* txn, MDB_dbi) {
    MDB_dbi items;
    BOOST_REQUIRE(mdb_dbi_open(txn, "items", 0, &items) == 0);
    MDB_cursor* cursor;
    mdb_cursor_open(txn, items, &cursor);
    MDB_val k, v;
    BOOST_REQUIRE(mdb_cursor_get(cursor, &k, &v, MDB_FIRST) == 0);
    std::string garbage(24, '\xff');
    MDB_val g{garbage.size(), garbage.data()};
    BOOST_REQUIRE(mdb_cursor_put(cursor, &k, &g, MDB_CURRENT) == 0);
    mdb_cursor_close(cursor);
  });

  store = open_store(dir.path());
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Item got;
  BOOST_TEST((r->get_item(cube.id, item.id, 0, &got).code == Errc::corrupt));
  BOOST_TEST(r->get_item(cube.id, item.id, 1, &got).ok());  // the version row is intact
}

namespace {

struct OneItem {
  TempDir dir;
  std::unique_ptr<Store> store = open_store(dir.path());
  Cube cube;
  Item item;
  OneItem() {
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.create_cube(1, "c", "hash-v1", 16, 1, &cube);
                  }).ok());
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.add_item(cube.id, draft("v1 text", {"a"}), 0, 100, &item);
                  }).ok());
  }
  Status state(State to) {
    Item out;
    return write(*store,
                 [&](WriteTxn& t) { return t.set_state(cube.id, item.id, to, 1, 200, &out); });
  }
  Status change(const std::string& text) {
    Item out;
    return write(*store, [&](WriteTxn& t) {
      return t.update_item(cube.id, item.id, text_patch(text), 300, &out);
    });
  }
  Status remove() {
    Item out;
    return write(*store,
                 [&](WriteTxn& t) { return t.remove_item(cube.id, item.id, 1, 400, &out); });
  }
  Item head() {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::vector<Item> h;
    BOOST_REQUIRE(r->history(cube.id, item.id, &h).ok());
    return h.back();
  }
  std::uint64_t live() {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    Cube c;
    BOOST_REQUIRE(r->find_cube(1, "c", &c).ok());
    return c.live_items;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(lifecycle_transitions_are_enforced) {
  OneItem f;
  BOOST_TEST((f.state(State::active).code == Errc::conflict));   // already active
  BOOST_TEST((f.state(State::deleted).code == Errc::conflict));  // only through remove
  BOOST_TEST(f.state(State::archived).ok());
  BOOST_TEST(f.change("archived items may still change").ok());
  BOOST_TEST(f.state(State::frozen).ok());
  BOOST_TEST((f.change("frozen").code == Errc::conflict));
  BOOST_TEST((f.remove().code == Errc::conflict));
  BOOST_TEST(f.state(State::active).ok());
  BOOST_TEST(f.remove().ok());
  BOOST_TEST((f.state(State::active).code == Errc::not_found));  // deleted is terminal here
  BOOST_TEST((f.head().state == State::deleted));
  BOOST_TEST(f.head().version == 6u);
  BOOST_TEST(f.live() == 0u);
}

BOOST_AUTO_TEST_CASE(rollback_restores_content_and_revives_deleted_items) {
  OneItem f;
  BOOST_REQUIRE(f.change("v2 text").ok());
  Item out;
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.rollback_item(f.cube.id, f.item.id, 1, 7, 500, &out);
                }).ok());
  BOOST_TEST(out.version == 3u);
  BOOST_TEST(out.text == "v1 text");
  BOOST_TEST(out.provenance.writer == 7u);
  BOOST_TEST(out.created_at_ms == 100);
  BOOST_REQUIRE(f.remove().ok());
  BOOST_TEST(f.live() == 0u);
  // Rolling back to a tombstone is refused; to a live version revives.
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.rollback_item(f.cube.id, f.item.id, 4, 7, 600, &out);
              }).code == Errc::conflict));
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.rollback_item(f.cube.id, f.item.id, 2, 7, 600, &out);
                }).ok());
  BOOST_TEST((out.state == State::active));
  BOOST_TEST(out.text == "v2 text");
  BOOST_TEST(f.live() == 1u);
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.rollback_item(f.cube.id, f.item.id, 99, 7, 700, &out);
              }).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(superseding_closes_the_old_fact_and_keeps_it) {
  OneItem f;
  ItemDraft next = draft("new fact");
  next.valid_from_ms = 1000;
  Item added, closed;
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.add_item(f.cube.id, next, f.item.id, 900, &added, &closed);
                }).ok());
  BOOST_TEST(closed.id == f.item.id);
  BOOST_TEST(closed.valid_to_ms == 1000);
  BOOST_TEST(closed.version == 2u);
  BOOST_TEST(f.head().valid_at(999));
  BOOST_TEST(!f.head().valid_at(1000));
  BOOST_TEST(added.valid_at(1000));
  BOOST_TEST(f.live() == 2u);  // the old fact stays, no longer valid
  // A second fact starting before the first one closed is out of order.
  ItemDraft late = draft("later");
  late.valid_from_ms = 1500;
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.add_item(f.cube.id, late, f.item.id, 901, &added);
              }).code == Errc::conflict));
  ItemDraft bad = draft("ends before it starts");
  bad.valid_from_ms = 50;
  bad.valid_to_ms = 40;
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.add_item(f.cube.id, bad, 0, 902, &added);
              }).code == Errc::conflict));
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.add_item(f.cube.id, draft("x"), 424242, 903, &added);
              }).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(every_bit_flip_of_a_record_is_caught_by_its_checksum) {
  Item item;
  item.id = 42;
  item.version = 3;
  item.text = "a record with some text";
  item.tags = {"t"};
  item.provenance = {5, "session", {1, 2}};
  std::string bytes = encode_item(item);
  Item back;
  BOOST_REQUIRE(decode_item(bytes, &back).ok());
  BOOST_TEST(back.text == item.text);
  BOOST_TEST((back.provenance == item.provenance));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      BOOST_TEST((decode_item(flipped, &back).code == Errc::corrupt),
                 "byte " << i << " bit " << bit);
    }
  }
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    BOOST_TEST((decode_item(bytes.substr(0, cut), &back).code == Errc::corrupt));
  }
}

BOOST_AUTO_TEST_CASE(retention_expires_and_purges_in_bounded_batches) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "r", "hash-v1", 16, 1, &cube);
                }).ok());
  std::vector<Item> items(10);
  for (int i = 0; i < 10; ++i) {
    ItemDraft d = draft("item " + std::to_string(i));
    d.expires_at_ms = i < 6 ? 1000 + i : 0;  // six with a TTL
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.add_item(cube.id, d, 0, 100, &items[static_cast<std::size_t>(i)]);
                  }).ok());
  }
  Item out;
  // Frozen items do not expire while frozen.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.set_state(cube.id, items[0].id, State::frozen, 1, 200, &out);
                }).ok());
  // A deleted item waits in the tombstone queue.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.remove_item(cube.id, items[9].id, 1, 300, &out);
                }).ok());
  auto run = [&](std::int64_t now, std::int64_t keep_ms, std::size_t batch) {
    RetentionResult result;
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.run_retention(now, keep_ms, batch, &result);
                  }).ok());
    return result;
  };
  BOOST_TEST(run(999, 1'000'000, 100).expired.empty());  // nothing due yet
  auto first = run(5000, 1'000'000, 3);                  // bounded: three per run
  BOOST_TEST(first.expired.size() == 3u);
  auto second = run(5000, 1'000'000, 3);
  BOOST_TEST(second.expired.size() == 2u);  // the frozen one stays
  BOOST_TEST(run(5000, 1'000'000, 3).expired.empty());

  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Item got;
  BOOST_TEST(r->get_item(cube.id, items[0].id, 0, &got).ok());
  BOOST_TEST((r->get_item(cube.id, items[1].id, 0, &got).code == Errc::not_found));
  std::vector<Item> history;
  BOOST_REQUIRE(r->history(cube.id, items[1].id, &history).ok());
  BOOST_TEST(history.back().provenance.session == "retention");
  Cube c;
  BOOST_REQUIRE(r->find_cube(1, "r", &c).ok());
  BOOST_TEST(c.live_items == 4u);  // 10 - 5 expired - 1 removed
  r.reset();

  // A revived item leaves the tombstone queue; the others are purged once
  // their tombstones are old enough.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.rollback_item(cube.id, items[1].id, 1, 1, 6000, &out);
                }).ok());
  // The revived item kept its TTL, long past: it expires again at once.
  auto again = run(6000, 1'000'000, 100);
  BOOST_TEST(again.expired.size() == 1u);
  BOOST_TEST(again.purged == 0u);
  auto purge = run(2'000'000, 1'000'000, 100);
  BOOST_TEST(purge.purged == 6u);  // five expired + the removed one
  BOOST_REQUIRE(store->begin_read(&r).ok());
  BOOST_TEST((r->history(cube.id, items[9].id, &history).code == Errc::not_found));
  BOOST_TEST((r->history(cube.id, items[2].id, &history).code == Errc::not_found));
  BOOST_TEST(r->history(cube.id, items[0].id, &history).ok());  // frozen, kept
  BOOST_TEST(r->history(cube.id, items[7].id, &history).ok());  // no TTL, kept
}

// Each tenant's deleted items wait for its own purge delay; a tenant that
// keeps them long never holds back another's purges, and an item revived
// after its entry moved is not purged.
BOOST_AUTO_TEST_CASE(retention_purges_each_tenant_after_its_own_delay) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube quick, slow;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1, "quick", "hash-v1", 16, 1, &quick);
                  return s.ok() ? t.create_cube(2, "slow", "hash-v1", 16, 1, &slow) : s;
                }).ok());
  auto add_and_remove = [&](const Cube& cube, const std::string& text, std::int64_t when) {
    Item item, tombstone;
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    Status s = t.add_item(cube.id, draft(text), 0, when - 1, &item);
                    return s.ok() ? t.remove_item(cube.id, item.id, 1, when, &tombstone) : s;
                  }).ok());
    return item.id;
  };
  // Tenant 2 (a 10 s delay) deletes five items before tenant 1 (none) does.
  std::vector<ItemId> slow_ids;
  for (int i = 0; i < 5; ++i)
    slow_ids.push_back(add_and_remove(slow, "s" + std::to_string(i), 100));
  const ItemId quick_id = add_and_remove(quick, "q", 150);
  PurgeDelays delays(0);
  delays.by_tenant[2] = 10'000;
  auto run = [&](std::int64_t now) {
    RetentionResult result;
    BOOST_REQUIRE(
        write(*store, [&](WriteTxn& t) { return t.run_retention(now, delays, 2, &result); }).ok());
    return result.purged;
  };
  auto gone = [&](const Cube& cube, ItemId id) {
    std::optional<ReadTxn> r;
    std::vector<Item> history;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    return r->history(cube.id, id, &history).code == Errc::not_found;
  };
  // Two entries a run: tenant 2's five move out of the way, then tenant 1's
  // goes.
  std::size_t purged = 0;
  for (int i = 0; i < 4; ++i) purged += run(1000);
  BOOST_TEST(purged == 1u);
  BOOST_TEST(gone(quick, quick_id));
  for (ItemId id : slow_ids) BOOST_TEST(!gone(slow, id));
  // One of tenant 2's comes back before its delay ends: it stays.
  Item revived;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.rollback_item(slow.id, slow_ids[0], 1, 2, 2000, &revived);
                }).ok());
  for (int i = 0; i < 4; ++i) purged += run(10'100);
  BOOST_TEST(purged == 5u);  // the other four
  BOOST_TEST(!gone(slow, slow_ids[0]));
  for (std::size_t i = 1; i < slow_ids.size(); ++i) BOOST_TEST(gone(slow, slow_ids[i]));
}

BOOST_AUTO_TEST_CASE(retention_skips_items_whose_cube_was_removed) {
  OneItem f;
  ItemDraft d = draft("expiring");
  d.expires_at_ms = 150;
  Item out;
  BOOST_REQUIRE(
      write(*f.store, [&](WriteTxn& t) { return t.add_item(f.cube.id, d, 0, 100, &out); }).ok());
  BOOST_REQUIRE(f.remove().ok());  // a tombstone queued too
  Cube removed;
  BOOST_REQUIRE(
      write(*f.store, [&](WriteTxn& t) { return t.remove_cube(1, "c", true, &removed); }).ok());
  RetentionResult result;
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.run_retention(1'000'000'000, 0, 100, &result);
                }).ok());
  BOOST_TEST(result.expired.empty());
  BOOST_TEST(result.purged == 0u);
  // The queues are empty now: a second run finds nothing.
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.run_retention(1'000'000'000, 0, 100, &result);
                }).ok());
}

BOOST_AUTO_TEST_CASE(snapshots_name_cube_versions_and_diff_them) {
  OneItem f;  // item v1 "v1 text"
  auto snap = [&](const std::string& tag) {
    Snapshot s;
    Status st =
        write(*f.store, [&](WriteTxn& t) { return t.create_snapshot(f.cube.id, tag, 1, 10, &s); });
    BOOST_REQUIRE_MESSAGE(st.ok(), st.message);
    return s;
  };
  Snapshot first = snap("first");
  Snapshot dup;
  BOOST_TEST((write(*f.store, [&](WriteTxn& t) {
                return t.create_snapshot(f.cube.id, "first", 1, 11, &dup);
              }).code == Errc::already_exists));
  Item added, out;
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.add_item(f.cube.id, draft("added later"), 0, 200, &added);
                }).ok());
  BOOST_REQUIRE(f.change("v2 text").ok());
  Snapshot second = snap("second");
  BOOST_TEST(second.cube_version > first.cube_version);
  BOOST_TEST(second.live_items == 2u);
  BOOST_REQUIRE(f.remove().ok());

  std::optional<ReadTxn> r;
  BOOST_REQUIRE(f.store->begin_read(&r).ok());
  std::vector<Snapshot> list;
  BOOST_REQUIRE(r->list_snapshots(f.cube.id, &list).ok());
  BOOST_REQUIRE_EQUAL(list.size(), 2u);
  BOOST_TEST(list[0].tag == "first");
  std::vector<SnapshotChange> changes;
  BOOST_REQUIRE(
      r->diff_cube_versions(f.cube.id, first.cube_version, second.cube_version, &changes).ok());
  BOOST_REQUIRE_EQUAL(changes.size(), 2u);
  BOOST_TEST((changes[0].kind == SnapshotChange::Kind::changed));
  BOOST_TEST(changes[0].from_version == 1u);
  BOOST_TEST(changes[0].to_version == 2u);
  BOOST_TEST(changes[0].text == "v2 text");
  BOOST_TEST((changes[1].kind == SnapshotChange::Kind::added));
  BOOST_TEST(changes[1].item == added.id);
  Cube now;
  BOOST_REQUIRE(r->find_cube(1, "c", &now).ok());
  BOOST_REQUIRE(
      r->diff_cube_versions(f.cube.id, second.cube_version, now.head_version, &changes).ok());
  BOOST_REQUIRE_EQUAL(changes.size(), 1u);
  BOOST_TEST((changes[0].kind == SnapshotChange::Kind::removed));
  BOOST_TEST(changes[0].text == "v2 text");
  // Diffing a version with itself finds nothing; the order can be reversed.
  BOOST_REQUIRE(
      r->diff_cube_versions(f.cube.id, second.cube_version, second.cube_version, &changes).ok());
  BOOST_TEST(changes.empty());
  BOOST_REQUIRE(
      r->diff_cube_versions(f.cube.id, second.cube_version, first.cube_version, &changes).ok());
  BOOST_TEST(changes.size() == 2u);
  BOOST_TEST((changes[1].kind == SnapshotChange::Kind::removed));
}

// Property test: random sequences of changes against a plain model of what
// every item's history must be, checked after every step; and every
// snapshot's diff against the model's state at that snapshot.
BOOST_AUTO_TEST_CASE(random_histories_match_a_model) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    TempDir dir;
    auto store = open_store(dir.path());
    Cube cube;
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    return t.create_cube(1, "p", "hash-v1", 16, 1, &cube);
                  }).ok());
    // Model: item -> its versions (text and state), and the cube version of each.
    std::map<ItemId, std::vector<std::pair<std::string, State>>> model;
    std::map<ItemId, std::vector<std::uint64_t>> cube_versions;
    // Per snapshot: its cube version, and each item's version count and liveness.
    std::vector<std::pair<std::uint64_t, std::map<ItemId, std::pair<std::size_t, bool>>>> snaps;
    std::int64_t now = 1000;
    auto live_state = [&](ItemId id) { return model[id].back().second; };
    auto pick = [&]() {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      return it->first;
    };
    for (int step = 0; step < 150; ++step) {
      ++now;
      int op = model.empty() ? 0 : static_cast<int>(rng() % 6);
      Item out;
      Status s;
      ItemId id = model.empty() ? 0 : pick();
      std::string text = "text " + std::to_string(step);
      State head = id ? live_state(id) : State::active;
      switch (op) {
        case 0:
          s = write(*store,
                    [&](WriteTxn& t) { return t.add_item(cube.id, draft(text), 0, now, &out); });
          BOOST_REQUIRE(s.ok());
          model[out.id].push_back({text, State::active});
          break;
        case 1:
          s = write(*store, [&](WriteTxn& t) {
            return t.update_item(cube.id, id, text_patch(text), now, &out);
          });
          if (head == State::deleted) BOOST_TEST((s.code == Errc::not_found));
          if (head == State::frozen) BOOST_TEST((s.code == Errc::conflict));
          if (s.ok()) model[id].push_back({text, head});
          break;
        case 2:
          s = write(*store, [&](WriteTxn& t) { return t.remove_item(cube.id, id, 1, now, &out); });
          BOOST_TEST(s.ok() == (head == State::active || head == State::archived));
          if (s.ok()) model[id].push_back({model[id].back().first, State::deleted});
          break;
        case 3: {
          State to = static_cast<State>(rng() % 3);
          s = write(*store,
                    [&](WriteTxn& t) { return t.set_state(cube.id, id, to, 1, now, &out); });
          BOOST_TEST(s.ok() == (head != State::deleted && head != to));
          if (s.ok()) model[id].push_back({model[id].back().first, to});
          break;
        }
        case 4: {
          auto v = static_cast<std::uint32_t>(1 + rng() % model[id].size());
          s = write(*store,
                    [&](WriteTxn& t) { return t.rollback_item(cube.id, id, v, 1, now, &out); });
          bool target_dead = model[id][v - 1].second == State::deleted;
          BOOST_TEST(s.ok() == (head != State::frozen && !target_dead));
          if (s.ok()) {
            State after = head == State::deleted ? State::active : head;
            model[id].push_back({model[id][v - 1].first, after});
          }
          break;
        }
        case 5: {
          Snapshot snap;
          s = write(*store, [&](WriteTxn& t) {
            return t.create_snapshot(cube.id, "s" + std::to_string(step), 1, now, &snap);
          });
          BOOST_REQUIRE(s.ok());
          std::map<ItemId, std::pair<std::size_t, bool>> state;
          for (const auto& [item, versions] : model) {
            state[item] = {versions.size(), versions.back().second != State::deleted};
          }
          snaps.push_back({snap.cube_version, state});
          break;
        }
      }
      // The store's histories equal the model's, version by version.
      std::optional<ReadTxn> r;
      BOOST_REQUIRE(store->begin_read(&r).ok());
      std::uint64_t live = 0, live_bytes = 0;
      for (const auto& [item, versions] : model) {
        std::vector<Item> history;
        BOOST_REQUIRE(r->history(cube.id, item, &history).ok());
        BOOST_REQUIRE_EQUAL(history.size(), versions.size());
        for (std::size_t v = 0; v < versions.size(); ++v) {
          BOOST_TEST(history[v].version == v + 1);
          BOOST_TEST(history[v].text == versions[v].first);
          BOOST_TEST((history[v].state == versions[v].second));
        }
        live += versions.back().second != State::deleted;
        if (versions.back().second != State::deleted) live_bytes += versions.back().first.size();
      }
      Cube c;
      BOOST_REQUIRE(r->find_cube(1, "p", &c).ok());
      BOOST_TEST(c.live_items == live, "seed " << seed << " step " << step);
      // The tenant's usage, which quotas read, follows every write.
      TenantUsage usage;
      BOOST_REQUIRE(r->tenant_usage(1, &usage).ok());
      BOOST_TEST(usage.cubes == 1u);
      BOOST_TEST(usage.items == live, "seed " << seed << " step " << step);
      BOOST_TEST(usage.text_bytes == live_bytes, "seed " << seed << " step " << step);
    }
    // Each pair of consecutive snapshots diffs as the model says.
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    for (std::size_t i = 1; i < snaps.size(); ++i) {
      std::vector<SnapshotChange> changes;
      BOOST_REQUIRE(
          r->diff_cube_versions(cube.id, snaps[i - 1].first, snaps[i].first, &changes).ok());
      std::map<ItemId, SnapshotChange::Kind> expected;
      for (const auto& [item, after] : snaps[i].second) {
        auto before = snaps[i - 1].second.find(item);
        bool was = before != snaps[i - 1].second.end() && before->second.second;
        if (!was && after.second) expected[item] = SnapshotChange::Kind::added;
        if (was && !after.second) expected[item] = SnapshotChange::Kind::removed;
        if (was && after.second && before->second.first != after.first) {
          expected[item] = SnapshotChange::Kind::changed;
        }
      }
      BOOST_REQUIRE_EQUAL(changes.size(), expected.size());
      for (const auto& ch : changes) {
        BOOST_REQUIRE(expected.contains(ch.item));
        BOOST_TEST((expected.at(ch.item) == ch.kind), "seed " << seed);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(access_statistics_accumulate_and_go_with_their_item) {
  OneItem f;
  BOOST_REQUIRE(
      write(*f.store, [&](WriteTxn& t) {
        return t.record_access({{f.cube.id, f.item.id, 3, 500}, {f.cube.id, 424242, 9, 9}});
      }).ok());
  BOOST_REQUIRE(write(*f.store, [&](WriteTxn& t) {
                  return t.record_access({{f.cube.id, f.item.id, 2, 400}});
                }).ok());
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(f.store->begin_read(&r).ok());
  AccessStats stats;
  BOOST_REQUIRE(r->access_stats(f.cube.id, f.item.id, &stats).ok());
  BOOST_TEST(stats.hits == 5u);
  BOOST_TEST(stats.last_access_ms == 500);
  BOOST_REQUIRE(r->access_stats(f.cube.id, 424242, &stats).ok());
  BOOST_TEST(stats.hits == 0u);  // unknown items are skipped
  r.reset();
  Cube removed;
  BOOST_REQUIRE(
      write(*f.store, [&](WriteTxn& t) { return t.remove_cube(1, "c", true, &removed); }).ok());
  BOOST_REQUIRE(f.store->begin_read(&r).ok());
  BOOST_REQUIRE(r->access_stats(f.cube.id, f.item.id, &stats).ok());
  BOOST_TEST(stats.hits == 0u);
}

// The exact-text index follows every head: add, update, state changes,
// removal, rollback, TTL expiry, purge, import and cube removal; a schema 2
// store (no index) gets it built when opened.
BOOST_AUTO_TEST_CASE(the_text_index_follows_every_head_and_is_built_for_old_stores) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube, other;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1, "t", "hash-v1", 16, 1, &cube);
                  return s.ok() ? t.create_cube(1, "u", "hash-v1", 16, 1, &other) : s;
                }).ok());
  // The id of the live item holding `text` in `in`, 0 if none.
  auto live = [&](CubeId in, const std::string& text) -> ItemId {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    ItemId id = 0;
    Status s = r->find_live_text(in, text, &id);
    BOOST_REQUIRE(s.ok() || s.code == Errc::not_found);
    return s.ok() ? id : 0;
  };
  Item a, b, out;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.add_item(cube.id, draft("tea", {"x"}), 0, 10, &a);
                }).ok());
  BOOST_TEST(live(cube.id, "tea") == a.id);
  BOOST_TEST(live(cube.id, "Tea") == 0u);  // exact bytes, not a likeness
  BOOST_TEST(live(cube.id, "tea ") == 0u);
  BOOST_TEST(live(other.id, "tea") == 0u);  // per cube

  // Archived and frozen items are live; a removed one is not.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.set_state(cube.id, a.id, State::archived, 1, 20, &out);
                }).ok());
  BOOST_TEST(live(cube.id, "tea") == a.id);
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.set_state(cube.id, a.id, State::active, 1, 21, &out);
                }).ok());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.update_item(cube.id, a.id, text_patch("coffee"), 30, &out);
                }).ok());
  BOOST_TEST(live(cube.id, "tea") == 0u);
  BOOST_TEST(live(cube.id, "coffee") == a.id);
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_item(cube.id, a.id, 1, 40, &out); }).ok());
  BOOST_TEST(live(cube.id, "coffee") == 0u);
  // Rolled back to version 1: "tea" again.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.rollback_item(cube.id, a.id, 1, 1, 50, &out);
                }).ok());
  BOOST_TEST(live(cube.id, "tea") == a.id);
  BOOST_TEST(live(cube.id, "coffee") == 0u);
  // Two items with one text: either found; removing one leaves the other.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.add_item(cube.id, draft("tea"), 0, 60, &b);
                }).ok());
  BOOST_TEST(live(cube.id, "tea") == std::min(a.id, b.id));
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_item(cube.id, a.id, 1, 70, &out); }).ok());
  BOOST_TEST(live(cube.id, "tea") == b.id);

  // TTL expiry tombstones the item (gone from the index); the purge leaves
  // nothing behind.
  ItemDraft expiring = draft("milk");
  expiring.expires_at_ms = 100;
  Item c;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.add_item(cube.id, expiring, 0, 80, &c); }).ok());
  BOOST_TEST(live(cube.id, "milk") == c.id);
  RetentionResult result;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.run_retention(200, 0, 100, &result); }).ok());
  BOOST_TEST(live(cube.id, "milk") == 0u);
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.run_retention(300, 0, 100, &result); }).ok());
  BOOST_TEST(result.purged >= 1u);
  BOOST_TEST(live(cube.id, "tea") == b.id);

  // Import writes the head's row (a deleted head has none).
  std::vector<Item> imported_live = {b}, imported_deleted = {b, b};
  imported_deleted[1].version = 2;
  imported_deleted[1].state = State::deleted;
  imported_live[0].text = imported_deleted[0].text = imported_deleted[1].text = "juice";
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.import_item(other.id, &imported_deleted, 90);
                  return s.ok() ? t.import_item(other.id, &imported_live, 91) : s;
                }).ok());
  BOOST_TEST(live(other.id, "juice") == imported_live[0].id);

  // A store written before the index (schema 2: no table) gets it on open.
  store.reset();
  make_old_store(dir.path(), 2, {"text_hashes"});
  store = open_store(dir.path());
  BOOST_TEST(live(cube.id, "tea") == b.id);
  BOOST_TEST(live(other.id, "juice") == imported_live[0].id);
  BOOST_TEST(live(cube.id, "coffee") == 0u);

  // Removing a cube takes its rows with it: one row is left, b's.
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1, "u", true, &other); }).ok());
  BOOST_TEST(live(other.id, "juice") == 0u);
  store.reset();
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 32);
  BOOST_REQUIRE(mdb_env_open(env, dir.path().c_str(), MDB_RDONLY, 0600) == 0);
  MDB_txn* txn;
  mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  MDB_dbi hashes;
  BOOST_REQUIRE(mdb_dbi_open(txn, "text_hashes", 0, &hashes) == 0);
  MDB_stat stat;
  BOOST_REQUIRE(mdb_stat(txn, hashes, &stat) == 0);
  BOOST_TEST(stat.ms_entries == 1u);
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

BOOST_AUTO_TEST_CASE(tenant_usage_follows_cubes_imports_and_removals_and_is_built_for_old_stores) {
  TempDir dir;
  auto store = open_store(dir.path());
  auto usage = [&](TenantId tenant) {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    TenantUsage u;
    BOOST_REQUIRE(r->tenant_usage(tenant, &u).ok());
    return u;
  };
  auto same = [](const TenantUsage& a, std::uint64_t cubes, std::uint64_t items,
                 std::uint64_t bytes) {
    return a.cubes == cubes && a.items == items && a.text_bytes == bytes;
  };
  Cube one, two, theirs;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1, "one", "hash-v1", 16, 1, &one);
                  if (s.ok()) s = t.create_cube(1, "two", "hash-v1", 16, 1, &two);
                  return s.ok() ? t.create_cube(2, "theirs", "hash-v1", 16, 1, &theirs) : s;
                }).ok());
  BOOST_TEST(same(usage(1), 2, 0, 0));
  BOOST_TEST(same(usage(2), 1, 0, 0));
  BOOST_TEST(same(usage(3), 0, 0, 0));  // a tenant with nothing

  Item a, b, out;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.add_item(one.id, draft("12345"), 0, 10, &a);
                  return s.ok() ? t.add_item(two.id, draft("123"), 0, 11, &b) : s;
                }).ok());
  BOOST_TEST(same(usage(1), 2, 2, 8));
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.update_item(one.id, a.id, text_patch("1"), 20, &out);
                }).ok());
  BOOST_TEST(same(usage(1), 2, 2, 4));
  // Archived and frozen items are held; a tombstone is not.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.set_state(one.id, a.id, State::frozen, 1, 21, &out);
                }).ok());
  BOOST_TEST(same(usage(1), 2, 2, 4));
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_item(two.id, b.id, 1, 22, &out); }).ok());
  BOOST_TEST(same(usage(1), 2, 1, 1));
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.rollback_item(two.id, b.id, 1, 1, 23, &out);
                }).ok());
  BOOST_TEST(same(usage(1), 2, 2, 4));

  // An import counts its live heads, not its tombstones.
  std::vector<Item> live = {b}, dead = {b, b};
  live[0].text = "abcdef";
  dead[1].version = 2;
  dead[1].state = State::deleted;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.import_item(theirs.id, &live, 30);
                  return s.ok() ? t.import_item(theirs.id, &dead, 31) : s;
                }).ok());
  BOOST_TEST(same(usage(2), 1, 1, 6));

  // A failed write leaves usage as it was (its nested transaction is undone).
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.nested([&](WriteTxn& n) {
                    Status s = n.add_item(theirs.id, draft("xyz"), 0, 32, &out);
                    return s.ok() ? Status{Errc::quota_exceeded, "refused"} : s;
                  });
                }).code == Errc::quota_exceeded);
  BOOST_TEST(same(usage(2), 1, 1, 6));

  // A store from before the table (schema 3) gets it, built, on open.
  store.reset();
  make_old_store(dir.path(), 3, {"tenant_usage"});
  store = open_store(dir.path());
  BOOST_TEST(same(usage(1), 2, 2, 4));
  BOOST_TEST(same(usage(2), 1, 1, 6));

  // Removing a cube gives back the cube, its items and their texts.
  Cube removed;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1, "two", true, &removed); }).ok());
  BOOST_TEST(same(usage(1), 1, 1, 1));
}

// Grants are found from both sides, replaced by a second grant, removed one
// at a time, never given to the cube's owner, and dropped with the cube; a
// schema 4 store opens with none.
BOOST_AUTO_TEST_CASE(cube_shares_are_kept_from_both_sides_and_go_with_their_cube) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube notes, diary;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1, "notes", "hash-v1", 64, 1, &notes);
                  return s.ok() ? t.create_cube(1, "diary", "hash-v1", 64, 1, &diary) : s;
                }).ok());
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.put_share({notes.id, 2, ShareAccess::read, 100});
                  if (s.ok()) s = t.put_share({notes.id, 3, ShareAccess::write, 101});
                  return s.ok() ? t.put_share({diary.id, 2, ShareAccess::read, 102}) : s;
                }).ok());
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.put_share({notes.id, 1, ShareAccess::read, 1});
              }).code == Errc::conflict));
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.put_share({424242, 2, ShareAccess::read, 1});
              }).code == Errc::not_found));
  // A second grant replaces the first.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.put_share({notes.id, 2, ShareAccess::write, 200});
                }).ok());
  {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::vector<CubeShare> of_notes, of_two, of_one;
    BOOST_REQUIRE(r->list_shares(notes.id, &of_notes).ok());
    BOOST_TEST((of_notes == std::vector<CubeShare>{{notes.id, 2, ShareAccess::write, 200},
                                                   {notes.id, 3, ShareAccess::write, 101}}));
    BOOST_REQUIRE(r->shared_with(2, &of_two).ok());
    BOOST_TEST((of_two == std::vector<CubeShare>{{notes.id, 2, ShareAccess::write, 200},
                                                 {diary.id, 2, ShareAccess::read, 102}}));
    BOOST_REQUIRE(r->shared_with(1, &of_one).ok());
    BOOST_TEST(of_one.empty());
    CubeShare found;
    BOOST_TEST((r->find_share(diary.id, 3, &found).code == Errc::not_found));
  }
  CubeShare removed;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_share(notes.id, 3, &removed); }).ok());
  BOOST_TEST((removed == CubeShare{notes.id, 3, ShareAccess::write, 101}));
  BOOST_TEST((write(*store, [&](WriteTxn& t) {
                return t.remove_share(notes.id, 3, nullptr);
              }).code == Errc::not_found));
  // Removing a cube takes its grants, from both tables.
  Cube gone;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1, "notes", true, &gone); }).ok());
  {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::vector<CubeShare> of_two, of_notes;
    BOOST_REQUIRE(r->shared_with(2, &of_two).ok());
    BOOST_TEST((of_two == std::vector<CubeShare>{{diary.id, 2, ShareAccess::read, 102}}));
    BOOST_REQUIRE(r->list_shares(notes.id, &of_notes).ok());
    BOOST_TEST(of_notes.empty());
  }

  // A schema 4 store (no share tables) opens as schema 5 with no grants.
  store.reset();
  make_old_store(dir.path(), 4, {"cube_shares", "shared_cubes"});
  store = open_store(dir.path());
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  std::vector<CubeShare> of_two;
  BOOST_REQUIRE(r->shared_with(2, &of_two).ok());
  BOOST_TEST(of_two.empty());
  std::vector<Cube> cubes;
  BOOST_REQUIRE(r->list_cubes(1, &cubes).ok());
  BOOST_TEST(cubes.size() == 1u);
}

// Parametric items: versioned by name, each version holding a reference to
// its blob, counted in the tenant's parametric bytes; removal, rollback,
// purge and the cube's removal keep references, names and usage in step.
BOOST_AUTO_TEST_CASE(parametric_items_version_by_name_and_hold_their_blobs) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.create_cube(1, "c", "hash-v1", 16, 1, &cube);
                }).ok());
  auto adapter = [](std::uint8_t blob, std::uint64_t size) {
    Parametric p;
    p.name = "style";
    p.blob.fill(blob);
    p.size = size;
    p.base_model = std::string(64, 'a');
    p.architecture = "llama";
    p.tensors = 14;
    p.rank = 4;
    p.origin = "imported";
    return p;
  };
  Provenance by;
  by.writer = 1000;
  auto put = [&](const Parametric& p, std::int64_t now, bool* created) {
    Item out;
    Status s = write(*store, [&](WriteTxn& t) {
      return t.put_param(cube.id, p, "LoRA adapter " + p.name, by, now, &out, created);
    });
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return out;
  };
  auto refs = [&](std::uint8_t blob) {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::array<std::uint8_t, 32> id;
    id.fill(blob);
    std::uint64_t n = 0;
    BOOST_REQUIRE(r->blob_refs(id, &n).ok());
    return n;
  };
  // Every referenced blob (its fill byte) with its size, as a follower's
  // prefetch lists them.
  auto blobs = [&] {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::vector<std::pair<std::uint8_t, std::uint64_t>> out;
    BOOST_REQUIRE(r->for_each_blob([&](const std::array<std::uint8_t, 32>& id, std::uint64_t size) {
                     out.emplace_back(id[0], size);
                   }).ok());
    return out;
  };
  auto usage = [&] {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    TenantUsage u;
    BOOST_REQUIRE(r->tenant_usage(1, &u).ok());
    return u;
  };
  auto listed = [&] {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::vector<Item> params;
    BOOST_REQUIRE(r->list_params(cube.id, &params).ok());
    return params;
  };

  bool created = false;
  const Item v1 = put(adapter(1, 1000), 100, &created);
  BOOST_TEST(created);
  BOOST_TEST((v1.tier == Tier::parametric));
  BOOST_TEST(v1.version == 1u);
  BOOST_TEST(refs(1) == 1u);
  BOOST_TEST(usage().param_bytes == 1000u);
  BOOST_TEST(usage().items == 1u);
  // A re-import under the name is its next version, with its own blob.
  const Item v2 = put(adapter(2, 3000), 200, &created);
  BOOST_TEST(!created);
  BOOST_TEST(v2.id == v1.id);
  BOOST_TEST(v2.version == 2u);
  BOOST_TEST(refs(1) == 1u);  // version 1 still references it
  BOOST_TEST(refs(2) == 1u);
  BOOST_TEST(
      (blobs() == std::vector<std::pair<std::uint8_t, std::uint64_t>>{{1, 1000}, {2, 3000}}));
  BOOST_TEST(usage().param_bytes == 3000u);
  BOOST_TEST(usage().items == 1u);
  BOOST_REQUIRE(listed().size() == 1u);
  BOOST_TEST((listed()[0].param->blob[0] == 2));
  // Read back whole, through the record.
  {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    Item got;
    BOOST_REQUIRE(r->get_item(cube.id, v1.id, 1, &got).ok());
    BOOST_TEST((got.param == adapter(1, 1000)));
    BOOST_TEST((r->find_param(cube.id, "absent", &got).code == Errc::not_found));
  }
  // Rollback to version 1 brings its blob back (a version of its own).
  Item rolled;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.rollback_item(cube.id, v1.id, 1, 1000, 300, &rolled);
                }).ok());
  BOOST_TEST(rolled.version == 3u);
  BOOST_TEST(refs(1) == 2u);
  BOOST_TEST(usage().param_bytes == 1000u);
  // Removed: out of the list and the usage; its name stays with it.
  Item tombstone;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.remove_item(cube.id, v1.id, 1000, 400, &tombstone);
                }).ok());
  BOOST_TEST(listed().empty());
  BOOST_TEST(usage().param_bytes == 0u);
  BOOST_TEST(usage().items == 0u);
  // Adding the name again continues its history.
  const Item v5 = put(adapter(3, 500), 500, &created);
  BOOST_TEST(!created);
  BOOST_TEST(v5.id == v1.id);
  BOOST_TEST(v5.version == 5u);
  BOOST_TEST((v5.state == State::active));
  BOOST_TEST(usage().param_bytes == 500u);
  BOOST_TEST(usage().items == 1u);
  // Purged: every version's reference and the name go.
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.remove_item(cube.id, v1.id, 1000, 600, &tombstone);
                }).ok());
  RetentionResult result;
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  return t.run_retention(10'000, PurgeDelays(0), 10, &result);
                }).ok());
  BOOST_TEST(result.purged == 1u);
  BOOST_TEST(refs(1) == 0u);
  BOOST_TEST(refs(2) == 0u);
  BOOST_TEST(blobs().empty());
  BOOST_TEST(refs(3) == 0u);
  const Item fresh = put(adapter(4, 700), 11'000, &created);
  BOOST_TEST(created);
  BOOST_TEST(fresh.id != v1.id);
  // The cube's removal gives back every reference, name and byte.
  Cube removed;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1, "c", true, &removed); }).ok());
  BOOST_TEST(refs(4) == 0u);
  BOOST_TEST(usage().param_bytes == 0u);
  BOOST_TEST(usage().cubes == 0u);
}
