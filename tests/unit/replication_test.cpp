// Replication's two ends in the store (docs/scale-out.md): a leader records
// the rows each transaction changes, the record is encoded as the log would
// carry it, and a follower that only applies records ends up with the same
// rows, table by table.
#define BOOST_TEST_MODULE replication
#include <boost/test/unit_test.hpp>

#include <functional>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "memcube/change_set.h"
#include "memcube/change_summary.h"
#include "memcube/commit_queue.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/raw_write.h"
#include "tests/support/store_dump.h"
#include "tests/support/store_helpers.h"

using namespace memos::store;
using memos::testing::difference;
using memos::testing::dump;
using memos::testing::open_store;
using memos::testing::Rows;
using memos::testing::TempDir;
using memos::testing::WriterHold;

namespace {

// A leader and a follower: each transaction on the leader is recorded,
// encoded, decoded and applied to the follower in a transaction of its own,
// as a log would carry it.
struct LeaderAndFollower {
  TempDir leader_dir, follower_dir;
  std::unique_ptr<Store> leader = open_store(leader_dir.path());
  std::unique_ptr<Store> follower = open_store(follower_dir.path());
  std::size_t records = 0;

  // Runs `fn` on the leader; if it succeeds, commits it and replicates.
  template <class Fn>
  Status write(Fn&& fn) {
    std::optional<WriteTxn> txn;
    Status s = leader->begin_write(&txn);
    if (!s.ok()) return s;
    ChangeSet changes;
    txn->record_changes(&changes);
    if (s = fn(*txn); !s.ok()) return s;
    if (s = txn->seal(); !s.ok()) return s;
    ChangeGroup group;
    group.schema = Store::kSchemaVersion;
    group.epoch = 7;
    group.changes = changes;
    const std::string record = encode_change_group(group);
    if (s = txn->commit(); !s.ok()) return s;
    ChangeGroup read;
    BOOST_REQUIRE(decode_change_group(record, &read).ok());
    BOOST_REQUIRE(read.epoch == 7u);
    BOOST_REQUIRE(read.schema == Store::kSchemaVersion);
    BOOST_REQUIRE(read.changes.size() == changes.size());
    std::optional<WriteTxn> apply;
    BOOST_REQUIRE(follower->begin_write(&apply).ok());
    Status applied = apply->apply_changes(read.changes);
    BOOST_REQUIRE_MESSAGE(applied.ok(), applied.message);
    BOOST_REQUIRE(apply->commit().ok());
    ++records;
    return {};
  }

  // Closes both stores and compares them row by row.
  void check_equal(const std::string& context) {
    leader.reset();
    follower.reset();
    const std::string diff = difference(dump(leader_dir.path()), dump(follower_dir.path()));
    BOOST_TEST(diff.empty(), context << ": " << diff);
    std::string tables;
    for (const auto& [table, rows] : dump(leader_dir.path())) {
      tables += " " + table + "=" + std::to_string(rows.size());
    }
    BOOST_TEST_MESSAGE(context << ": " << records << " records; rows:" << tables);
    leader = open_store(leader_dir.path());
    follower = open_store(follower_dir.path());
  }
};

Parametric adapter(std::string name, std::uint8_t blob) {
  Parametric p;
  p.name = std::move(name);
  p.blob.fill(blob);
  p.size = 1000u + blob;
  p.base_model = std::string(64, 'a');
  p.architecture = "llama";
  p.tensors = 14;
  p.rank = 4;
  p.origin = "imported";
  return p;
}

Activation activation(std::uint64_t id, const Cube& cube, const Digest& salt, std::uint8_t blob,
                      std::int64_t now) {
  Activation a;
  a.id = id;
  a.cube = cube.id;
  a.tenant = cube.owner;
  a.key = ActivationKey{std::string(64, 'a'), "", "f16", "llama.cpp x; layers 2", 1};
  a.model = "tiny";
  a.chunk_tokens = 4;
  for (std::int32_t t = 1; t <= 9; ++t) a.tokens.push_back(t + blob);
  a.blob.fill(blob);
  a.size = 5000u + blob;
  a.created_at_ms = a.last_used_ms = now;
  a.prefixes = prefix_digests(a.key, salt, a.chunk_tokens, a.tokens);
  return a;
}

// One random job of a workload: what a request would do in the writer.
// Many fail (an item removed meanwhile, a name taken): a failed job's rows
// must leave the record as they leave LMDB.
Status random_job(WriteTxn& t, std::mt19937_64& rng, std::int64_t now, std::vector<Cube>& cubes,
                  std::vector<std::pair<CubeId, ItemId>>& items) {
  auto pick_cube = [&]() -> const Cube* {
    return cubes.empty() ? nullptr : &cubes[rng() % cubes.size()];
  };
  auto pick_item = [&]() -> std::pair<CubeId, ItemId> {
    return items.empty() ? std::pair<CubeId, ItemId>{0, 0} : items[rng() % items.size()];
  };
  const Cube* cube = pick_cube();
  auto [icube, item] = pick_item();
  Item out;
  switch (cube ? rng() % 19 : 0) {
    case 0: {
      Cube made;
      auto tenant = static_cast<TenantId>(1000 + rng() % 3);
      Status s = t.create_cube(tenant, "c" + std::to_string(rng() % 5), "hash-v1", 16, now, &made);
      if (s.ok()) cubes.push_back(made);
      return s;
    }
    case 1:
    case 2: {
      ItemDraft d;
      d.text = "memory " + std::to_string(rng() % 50);  // repeats: the text index
      d.tags = {"t" + std::to_string(rng() % 3)};
      d.provenance.writer = cube->owner;
      if (rng() % 3 == 0) d.expires_at_ms = now + 5;  // the expiry queue
      Status s = t.add_item(cube->id, d, 0, now, &out);
      if (s.ok()) items.push_back({cube->id, out.id});
      return s;
    }
    case 3: {
      ItemPatch p;
      p.text = "changed " + std::to_string(rng() % 50);
      return t.update_item(icube, item, p, now, &out);
    }
    case 4:
      return t.remove_item(icube, item, 1, now, &out);
    case 5:
      return t.set_state(icube, item, static_cast<State>(rng() % 3), 1, now, &out);
    case 6:
      return t.rollback_item(icube, item, 1, 1, now, &out);
    case 7: {
      Snapshot snap;
      return t.create_snapshot(cube->id, "s" + std::to_string(rng() % 4), 1, now, &snap);
    }
    case 8: {
      CubeShare share{cube->id, static_cast<TenantId>(1000 + rng() % 3), ShareAccess::read, now};
      if (share.tenant == cube->owner) return t.remove_share(cube->id, share.tenant, nullptr);
      return t.put_share(share);
    }
    case 9:
      return t.record_access({AccessUpdate{icube, item, 1, now, 0.5, 0.1, now}});
    case 10: {
      bool created = false;
      Provenance by;
      by.writer = cube->owner;
      auto blob = static_cast<std::uint8_t>(rng() % 3);  // shared between cubes
      return t.put_param(cube->id, adapter("a" + std::to_string(rng() % 2), blob), "adapter", by,
                         now, &out, &created);
    }
    case 11: {
      Digest salt;
      if (Status s = t.ensure_tenant_salt(cube->owner, &salt); !s.ok()) return s;
      return t.put_activation(
          activation(t.next_id(now), *cube, salt, static_cast<std::uint8_t>(rng() % 3), now));
    }
    case 12: {
      std::vector<ItemId> ids;
      if (Status s = t.reader().list_activations(cube->id,
                                                 [&](const Activation& a) { ids.push_back(a.id); });
          !s.ok()) {
        return s;
      }
      if (ids.empty()) return {Errc::not_found, "no activation"};
      return rng() % 2 ? t.remove_activation(cube->id, ids[rng() % ids.size()])
                       : t.touch_activation(cube->id, ids[rng() % ids.size()], now);
    }
    case 13: {
      if (rng() % 3 == 0) return t.remove_working_set(cube->id);
      WorkingSet set;
      set.cube = cube->id;
      set.tenant = cube->owner;
      set.generation = rng() % 10;
      if (item) set.items = {item};
      set.updated_at_ms = now;
      return t.put_working_set(set);
    }
    case 14: {
      IdempotencyRecord r{1, cube->id, item, 1, now};
      return t.put_idempotency(cube->owner, "key" + std::to_string(rng() % 6), r);
    }
    case 15:
      return t.add_router_usage({RouterCharge{cube->owner, 20000, rng() % 100, 1}});
    case 16: {
      Cube renamed;
      return t.rename_cube(cube->owner, cube->name, "r" + std::to_string(rng() % 5), &renamed);
    }
    case 17: {
      if (rng() % 3) return {Errc::conflict, "kept (removals are rarer than writes)"};
      Cube removed;
      Status s = t.remove_cube(cube->owner, cube->name, true, &removed);
      if (s.ok()) std::erase_if(cubes, [&](const Cube& c) { return c.id == removed.id; });
      return s;
    }
    default: {
      RetentionResult r;
      return t.run_retention(now + 10, PurgeDelays(3), 5, &r);
    }
  }
}

}  // namespace

// The model-based property: whatever a workload does on the leader, in
// groups of jobs some of which fail, a follower that applies the records
// holds exactly the leader's rows, every table, every byte (meta's last id
// included, so ids it would issue later stay unique).
BOOST_AUTO_TEST_CASE(a_follower_that_applies_the_records_holds_the_leaders_rows) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 rng(seed);
    LeaderAndFollower pair;
    std::vector<Cube> cubes;
    std::vector<std::pair<CubeId, ItemId>> items;
    std::int64_t now = 1'000'000;
    std::size_t failed = 0;
    for (int group = 0; group < 150; ++group) {
      now += 3;
      const std::size_t jobs = 1 + rng() % 4;
      BOOST_REQUIRE(pair.write([&](WriteTxn& t) {
                          for (std::size_t j = 0; j < jobs; ++j) {
                            if (!t.nested([&](WriteTxn& n) {
                                    return random_job(n, rng, now, cubes, items);
                                  }).ok()) {
                              ++failed;
                            }
                          }
                          return Status{};
                        })
                        .ok());
      // Cubes renamed or removed in a failed job: read back what is.
      std::optional<ReadTxn> r;
      BOOST_REQUIRE(pair.leader->begin_read(&r).ok());
      cubes.clear();
      BOOST_REQUIRE(r->list_all_cubes(&cubes).ok());
    }
    BOOST_TEST(failed > 0u);  // the workload did exercise failed jobs
    pair.check_equal("seed " + std::to_string(seed));
  }
}

// A job that wrote rows and then failed leaves nothing in the record.
BOOST_AUTO_TEST_CASE(a_failed_job_leaves_nothing_in_the_record) {
  TempDir dir;
  auto store = open_store(dir.path());
  std::optional<WriteTxn> txn;
  BOOST_REQUIRE(store->begin_write(&txn).ok());
  ChangeSet changes;
  txn->record_changes(&changes);
  Cube cube;
  BOOST_REQUIRE(
      txn->nested([&](WriteTxn& t) { return t.create_cube(1000, "kept", "hash-v1", 16, 1, &cube); })
          .ok());
  const std::size_t kept = changes.size();
  BOOST_TEST(kept > 0u);
  Status s = txn->nested([&](WriteTxn& t) -> Status {
    ItemDraft d;
    d.text = "written, then refused";
    Item out;
    if (Status added = t.add_item(cube.id, d, 0, 2, &out); !added.ok()) return added;
    return {Errc::quota_exceeded, "refused after writing"};
  });
  BOOST_TEST((s.code == Errc::quota_exceeded));
  BOOST_TEST(changes.size() == kept);
  for (const Change& c : changes.changes()) BOOST_TEST((c.table != TableId::items));
}

// A follower's indexes learn from the rows of each record what happened:
// the cube that came, the heads written (tombstones too), the cube that
// went; a row that does not decode is named corrupt.
BOOST_AUTO_TEST_CASE(a_summary_names_the_cubes_and_heads_a_record_changed) {
  TempDir dir;
  auto store = open_store(dir.path());
  auto record = [&](const std::function<Status(WriteTxn&)>& job) {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn).ok());
    ChangeSet changes;
    txn->record_changes(&changes);
    BOOST_REQUIRE(job(*txn).ok());
    BOOST_REQUIRE(txn->commit().ok());
    std::vector<CubeChange> summary;
    BOOST_REQUIRE(summarize_changes(changes, &summary).ok());
    return summary;
  };
  Cube cube;
  auto made =
      record([&](WriteTxn& t) { return t.create_cube(1000, "c", "hash-v1", 16, 1, &cube); });
  BOOST_REQUIRE(made.size() == 1u);
  BOOST_TEST(made[0].cube == cube.id);
  BOOST_TEST(made[0].written);
  BOOST_TEST(made[0].heads.empty());

  Item first, second, tombstone;
  auto added = record([&](WriteTxn& t) -> Status {
    ItemDraft d;
    d.text = "one";
    if (Status s = t.add_item(cube.id, d, 0, 2, &first); !s.ok()) return s;
    d.text = "two";
    if (Status s = t.add_item(cube.id, d, 0, 3, &second); !s.ok()) return s;
    return t.remove_item(cube.id, first.id, 1000, 4, &tombstone);
  });
  BOOST_REQUIRE(added.size() == 1u);
  BOOST_TEST(added[0].written);
  BOOST_TEST(!added[0].removed);
  BOOST_REQUIRE(added[0].heads.size() == 3u);
  BOOST_TEST(added[0].heads[0].text == "one");
  BOOST_TEST(added[0].heads[1].id == second.id);
  BOOST_TEST(added[0].heads[2].id == first.id);
  BOOST_TEST(added[0].heads[2].deleted());

  auto removed = record([&](WriteTxn& t) {
    Cube gone;
    return t.remove_cube(1000, "c", true, &gone);
  });
  BOOST_REQUIRE(removed.size() == 1u);
  BOOST_TEST(removed[0].removed);
  BOOST_TEST(!removed[0].written);

  ChangeSet hostile;
  hostile.put(TableId::items, std::string(16, '\1'), "not an item record");
  std::vector<CubeChange> summary;
  BOOST_TEST((summarize_changes(hostile, &summary).code == Errc::corrupt));
  ChangeSet odd;  // keys of other lengths belong to no cube: ignored
  odd.put(TableId::cubes, "short", "x");
  odd.erase(TableId::items, std::string(3, '\0'));
  BOOST_TEST(summarize_changes(odd, &summary).ok());
  BOOST_TEST(summary.empty());
}

// Records that are not what a leader wrote are refused by name, and the
// follower keeps what it had.
BOOST_AUTO_TEST_CASE(hostile_records_are_refused_and_change_nothing) {
  // Decoding: garbage, truncations and every bit flip of a real record.
  ChangeGroup group;
  group.schema = Store::kSchemaVersion;
  group.changes.put(TableId::cubes, "k", "v");
  const std::string record = encode_change_group(group);
  ChangeGroup out;
  BOOST_TEST((decode_change_group("", &out).code == Errc::corrupt));
  BOOST_TEST((decode_change_group(std::string(64, '\xff'), &out).code == Errc::corrupt));
  for (std::size_t n = 0; n < record.size(); n += 8) {
    BOOST_TEST((decode_change_group(record.substr(0, n), &out).code == Errc::corrupt));
  }
  for (std::size_t bit = 0; bit < record.size() * 8; ++bit) {
    std::string flipped = record;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    BOOST_TEST((decode_change_group(flipped, &out).code == Errc::corrupt), "bit " << bit);
  }
  // A large record (a long text) goes through whole.
  ChangeGroup big;
  big.changes.put(TableId::versions, "key", std::string(4u << 20, 'x'));
  BOOST_REQUIRE(decode_change_group(encode_change_group(big), &out).ok());
  BOOST_TEST(out.changes.changes()[0].value.size() == (4u << 20));

  // Applying: each hostile change alone, in a transaction that is then
  // committed; the follower's rows stay as they were.
  TempDir dir;
  auto store = open_store(dir.path());
  BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                  Cube c;
                  return t.create_cube(1000, "c", "hash-v1", 16, 1, &c);
                }).ok());
  store.reset();
  const Rows before = dump(dir.path());
  store = open_store(dir.path());
  std::array<std::uint8_t, 32> blob{};
  std::vector<Change> hostile = {
      {TableId{0}, ChangeKind::put, "k", "v"},
      {TableId{200}, ChangeKind::put, "k", "v"},
      {TableId::cubes, ChangeKind{0}, "k", ""},
      {TableId::cubes, ChangeKind{9}, "k", ""},
      {TableId::meta, ChangeKind::put, "schema", std::string(4, '\0')},
      {TableId::meta, ChangeKind::put, "last_id", "short"},
      {TableId::meta, ChangeKind::put, "last_id/1", std::string(8, '\0')},  // another shard's
      {TableId::meta, ChangeKind::put, "last_idx", std::string(8, '\0')},
      {TableId::blobs, ChangeKind::put, std::string(32, 'b'), std::string(20, 'r')},
      {TableId::blobs, ChangeKind::blob_refs, std::string(32, 'b'), "short"},
      {TableId::cubes, ChangeKind::blob_refs, std::string(32, 'b'), std::string(16, '\0')},
      {TableId::activation_usage, ChangeKind::activation_usage, std::string(4, 't'), "short"},
      {TableId::activation_usage, ChangeKind::activation_usage, "tenant", std::string(16, '\0')},
      {TableId::tenant_usage, ChangeKind::activation_usage, std::string(4, 't'),
       std::string(16, '\0')},
      {TableId::cubes, ChangeKind::put, "", "a row without a key"},
      {TableId::cubes, ChangeKind::erase, std::string(600, 'k'), ""},
      {TableId::items, ChangeKind::erase_prefix, "", ""},  // the whole table
  };
  {
    ChangeSet below_zero;  // a count that would go below 0
    below_zero.blob_refs(blob, -1, 10);
    hostile.push_back(below_zero.changes()[0]);
  }
  for (const Change& c : hostile) {
    ChangeSet set;
    set.put(TableId::items, "written first", "then the hostile change");
    set.append(c);
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn).ok());
    Status s = txn->apply_changes(set);
    BOOST_TEST((s.code == Errc::corrupt), "table " << int(c.table) << " kind " << int(c.kind));
    const bool named = s.message.find("replicated change") != std::string::npos ||
                       s.message.find("below zero") != std::string::npos;
    BOOST_TEST(named, s.message);
    txn->abort();  // as a follower does with a record it cannot apply
  }
  store.reset();
  BOOST_TEST(difference(before, dump(dir.path())).empty());
}

// Blob counts from different shards commute: applied in any order, the
// follower's counts are the sums.
// Each record names the digest of the one before; a store keeps the digest
// of the last record it holds with its position, and reads a position row
// from before the chain as "digest unknown".
BOOST_AUTO_TEST_CASE(records_are_chained_and_positions_keep_the_digest) {
  ChangeGroup group;
  group.schema = Store::kSchemaVersion;
  group.previous = std::string(32, '\x11');
  group.changes.put(TableId::cubes, "k", "v");
  ChangeGroup out;
  BOOST_REQUIRE(decode_change_group(encode_change_group(group), &out).ok());
  BOOST_TEST((out.previous == group.previous));
  group.previous.clear();  // a record from before the chain
  BOOST_REQUIRE(decode_change_group(encode_change_group(group), &out).ok());
  BOOST_TEST(out.previous.empty());
  for (std::size_t bad : {1u, 31u, 33u, 4096u}) {
    group.previous = std::string(bad, '\x11');
    BOOST_TEST((decode_change_group(encode_change_group(group), &out).code == Errc::corrupt),
               bad << " bytes");
  }

  TempDir dir;
  auto store = open_store(dir.path());
  auto position = [&](std::uint32_t shard) {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    LogPosition p;
    p.sequence = 99;
    Status s = r->log_position(shard, &p);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return p;
  };
  BOOST_TEST(position(0).sequence == 0u);
  BOOST_TEST((position(0).digest == empty_log_digest()));
  const std::string digest(32, '\xab');
  BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                  return t.set_log_position(3, LogPosition{41, digest});
                }).ok());
  BOOST_TEST(position(3).sequence == 41u);
  BOOST_TEST((position(3).digest == digest));
  BOOST_TEST(position(3).previous.empty());  // not given: not known
  BOOST_TEST(position(0).sequence == 0u);    // per shard
  const std::string previous(32, '\xcd');
  BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                  return t.set_log_position(3, LogPosition{41, digest, previous});
                }).ok());
  BOOST_TEST((position(3).digest == digest));
  BOOST_TEST((position(3).previous == previous));
  const Status half = memos::testing::write(*store, [&](WriteTxn& t) {
    return t.set_log_position(3, LogPosition{42, digest, "short"});
  });
  BOOST_TEST((half.code == Errc::conflict));
  BOOST_TEST((position(3).previous == previous));
  const Status refused = memos::testing::write(*store, [&](WriteTxn& t) {
    return t.set_log_position(3, LogPosition{42, "short"});
  });
  BOOST_TEST((refused.code == Errc::conflict));
  BOOST_TEST(position(3).sequence == 41u);
  store.reset();
  // The position's row is what a memosd from before `previous` reads (8 +
  // 32 bytes); `previous` has a row of its own.
  const std::string previous_key = std::string("logp/") + std::string("\0\0\0\x03", 4);
  {
    const auto rows = memos::testing::dump(dir.path()).at("meta");
    BOOST_TEST(rows.at(std::string("log/") + std::string("\0\0\0\x03", 4)).size() == 40u);
    BOOST_TEST((rows.at(previous_key) == previous));
  }
  store = open_store(dir.path());
  BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                  return t.set_log_position(3, LogPosition{43, digest});
                }).ok());
  BOOST_TEST(position(3).previous.empty());  // not known any more: not kept
  store.reset();
  for (std::size_t bad : {0u, 31u, 33u}) {
    memos::testing::raw_put(dir.path(), "meta", previous_key, std::string(bad, '\x02'));
    store = open_store(dir.path());
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    LogPosition p;
    BOOST_TEST((r->log_position(3, &p).code == Errc::corrupt), bad << " bytes of previous");
    r.reset();
    store.reset();
  }
  memos::testing::raw_put(dir.path(), "meta", previous_key, previous);

  const std::string key = std::string("log/") + std::string("\0\0\0\x03", 4);
  memos::testing::raw_put(dir.path(), "meta", key,
                          std::string("\0\0\0\0\0\0\0\x07", 8));  // before the chain
  store = open_store(dir.path());
  BOOST_TEST(position(3).sequence == 7u);
  BOOST_TEST(position(3).digest.empty());
  store.reset();
  for (std::size_t bad : {0u, 7u, 9u, 39u, 41u, 72u}) {
    memos::testing::raw_put(dir.path(), "meta", key, std::string(bad, '\x01'));
    store = open_store(dir.path());
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    LogPosition p;
    BOOST_TEST((r->log_position(3, &p).code == Errc::corrupt), bad << " bytes");
    r.reset();
    store.reset();
  }
}

BOOST_AUTO_TEST_CASE(blob_reference_deltas_commute) {
  std::array<std::uint8_t, 32> blob{};
  blob.fill(5);
  ChangeSet a, b;
  a.blob_refs(blob, 1, 77);
  b.blob_refs(blob, 1, 77);
  b.blob_refs(blob, -1, 77);
  b.blob_refs(blob, 1, 77);
  for (bool a_first : {true, false}) {
    TempDir dir;
    auto store = open_store(dir.path());
    BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                    Status s = t.apply_changes(a_first ? a : b);
                    return s.ok() ? t.apply_changes(a_first ? b : a) : s;
                  }).ok());
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::uint64_t refs = 0;
    BOOST_REQUIRE(r->blob_refs(blob, &refs).ok());
    BOOST_TEST(refs == 2u);
  }
}

// A state's usage is recorded as deltas, not as its row: removing a shared
// cube gives back, in the cube's shard, the usage of a state a grantee
// stored in it, while the grantee's own shard may store another state
// (docs/scale-out.md). Applied in either order the row comes out the same,
// and right: the one state left. A delta that would take a count below 0
// stops there.
BOOST_AUTO_TEST_CASE(activation_usage_is_recorded_as_deltas_that_commute) {
  constexpr TenantId kGrantee = 1001;
  LeaderAndFollower lf;
  Cube cube;
  BOOST_REQUIRE(lf.write([&](WriteTxn& t) {
                    return t.create_cube(1000, "shared", "hash-v1", 16, 1, &cube);
                  }).ok());
  Activation first;
  ChangeSet stored;  // what storing the grantee's first state recorded
  {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(lf.leader->begin_write(&txn).ok());
    txn->record_changes(&stored);
    Digest salt;
    BOOST_REQUIRE(txn->ensure_tenant_salt(kGrantee, &salt).ok());
    first = activation(txn->next_id(10), cube, salt, 1, 10);
    first.tenant = kGrantee;
    BOOST_REQUIRE(txn->put_activation(first).ok());
    BOOST_REQUIRE(txn->commit().ok());
  }
  bool delta = false;
  for (const Change& c : stored.changes()) {
    if (c.table != TableId::activation_usage) continue;
    BOOST_TEST((c.kind == ChangeKind::activation_usage));
    delta = true;
  }
  BOOST_TEST(delta);

  // From that row (one state), the grantee's shard stores a second state
  // (+1) while the cube's shard removes the first (-1): two records.
  ChangeSet grantees, owners;
  grantees.activation_usage(kGrantee, 1, 40);
  owners.activation_usage(kGrantee, -1, -static_cast<std::int64_t>(first.size));
  for (bool grantee_first : {true, false}) {
    TempDir dir;
    auto store = open_store(dir.path());
    BOOST_REQUIRE(memos::testing::write(*store, [&](WriteTxn& t) {
                    Status s = t.apply_changes(stored);
                    if (s.ok()) s = t.apply_changes(grantee_first ? grantees : owners);
                    return s.ok() ? t.apply_changes(grantee_first ? owners : grantees) : s;
                  }).ok());
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    ActivationUsage usage;
    BOOST_REQUIRE(r->activation_usage(kGrantee, &usage).ok());
    BOOST_TEST(usage.count == 1u);
    BOOST_TEST(usage.bytes == 40u);
  }
  // Below zero: stops at 0.
  ChangeSet too_much;
  too_much.activation_usage(kGrantee, -5, -1000000);
  BOOST_REQUIRE(memos::testing::write(*lf.follower, [&](WriteTxn& t) {
                  Status s = t.apply_changes(stored);
                  return s.ok() ? t.apply_changes(too_much) : s;
                }).ok());
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(lf.follower->begin_read(&r).ok());
  ActivationUsage usage;
  BOOST_REQUIRE(r->activation_usage(kGrantee, &usage).ok());
  BOOST_TEST(usage.count == 0u);
  BOOST_TEST(usage.bytes == 0u);
}

// A grantee's KV states in a shared cube are its own shard's rows, written
// by that shard's owner; the cube's removal is the cube's shard's. Node A
// (the cube's shard) removes the cube while node B (the grantee's) uses one
// state and stores another, each before it holds the other's record. The
// removal leaves the grantee's states alone, so the two records touch no
// common row and both nodes hold the same rows whatever the order; the
// grantee's shard's retention then drops them, giving back the blobs and
// the usage. (When the removal dropped them itself, A, applying B's use
// after its removal, put the state's row back while B did not: the stores
// differed.) With one shard the removal drops every state at once.
BOOST_AUTO_TEST_CASE(a_grantees_states_in_a_removed_shared_cube_go_with_its_own_shards_retention) {
  constexpr TenantId kOwner = 1000;
  TempDir a_dir, b_dir;
  auto a = open_store(a_dir.path(), 2);
  auto b = open_store(b_dir.path(), 2);
  TenantId grantee = 1001;
  while (a->shard_of(grantee) == a->shard_of(kOwner)) ++grantee;
  const std::uint32_t owners = a->shard_of(kOwner), grantees = a->shard_of(grantee);
  // Runs `fn` in a write of `shard` on `store` and returns what it recorded.
  auto write = [](Store& store, std::uint32_t shard, const std::function<Status(WriteTxn&)>& fn) {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store.begin_write(&txn, shard).ok());
    ChangeSet changes;
    txn->record_changes(&changes);
    Status s = fn(*txn);
    if (s.ok()) s = txn->seal();
    if (s.ok()) s = txn->commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return changes;
  };
  auto apply = [](Store& store, std::uint32_t shard, const ChangeSet& changes) {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store.begin_write(&txn, shard).ok());
    Status s = txn->apply_changes(changes);
    if (s.ok()) s = txn->commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  };
  Cube cube;
  apply(*b, owners, write(*a, owners, [&](WriteTxn& t) {
    return t.create_cube(kOwner, "shared", "hash-v1", 16, 1, &cube);
  }));
  // A state of the owner's (its shard's), and one of the grantee's.
  Activation owners_state, used, stored;
  apply(*b, owners, write(*a, owners, [&](WriteTxn& t) {
    Digest salt;
    Status s = t.ensure_tenant_salt(kOwner, &salt);
    owners_state = activation(t.next_id(10), cube, salt, 1, 10);
    return s.ok() ? t.put_activation(owners_state) : s;
  }));
  Digest grantee_salt;
  apply(*a, grantees, write(*b, grantees, [&](WriteTxn& t) {
    Status s = t.ensure_tenant_salt(grantee, &grantee_salt);
    used = activation(t.next_id(10), cube, grantee_salt, 2, 10);
    used.tenant = grantee;
    return s.ok() ? t.put_activation(used) : s;
  }));

  // At once: A removes the cube; B uses one state and stores another.
  const ChangeSet removal = write(*a, owners, [&](WriteTxn& t) {
    Cube gone;
    return t.remove_cube(kOwner, "shared", true, &gone);
  });
  const ChangeSet use = write(*b, grantees, [&](WriteTxn& t) {
    Status s = t.touch_activation(cube.id, used.id, 20);
    stored = activation(t.next_id(20), cube, grantee_salt, 3, 20);
    stored.tenant = grantee;
    return s.ok() ? t.put_activation(stored) : s;
  });
  apply(*a, grantees, use);
  apply(*b, owners, removal);

  auto states = [&](Store& store) {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store.begin_read(&r).ok());
    std::size_t n = 0;
    BOOST_REQUIRE(r->list_activations(cube.id, [&](const Activation&) { ++n; }).ok());
    return n;
  };
  for (Store* store : {a.get(), b.get()}) BOOST_TEST(states(*store) == 2u);  // the grantee's

  // The cube's shard's retention leaves them; the grantee's drops them.
  auto retention = [&](Store& store, std::uint32_t shard, std::size_t* dropped) {
    return write(store, shard, [&](WriteTxn& t) {
      RetentionResult result;
      Status s = t.run_retention(30, PurgeDelays(0), 100, &result);
      *dropped = result.orphaned_states;
      return s;
    });
  };
  std::size_t dropped = 0;
  apply(*b, owners, retention(*a, owners, &dropped));
  BOOST_TEST(dropped == 0u);
  apply(*a, grantees, retention(*b, grantees, &dropped));
  BOOST_TEST(dropped == 2u);
  for (Store* store : {a.get(), b.get()}) {
    BOOST_TEST(states(*store) == 0u);
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    for (TenantId tenant : {kOwner, grantee}) {
      ActivationUsage usage;
      BOOST_REQUIRE(r->activation_usage(tenant, &usage).ok());
      BOOST_TEST(usage.count == 0u);
      BOOST_TEST(usage.bytes == 0u);
    }
    for (const Activation* s : {&owners_state, &used, &stored}) {
      std::uint64_t refs = 0;
      Status got = r->blob_refs(s->blob, &refs);
      BOOST_TEST((got.code == Errc::not_found || (got.ok() && refs == 0)), got.message);
    }
    std::vector<std::pair<CubeId, ItemId>> lru;
    BOOST_REQUIRE(r->least_recent_activations(grantee, 10, &lru).ok());
    BOOST_TEST(lru.empty());
  }
  a.reset();
  b.reset();
  const std::string diff = difference(dump(a_dir.path()), dump(b_dir.path()));
  BOOST_TEST(diff.empty(), diff);

  // One shard: the removal takes every state, the grantee's too.
  LeaderAndFollower lf;
  Cube one;
  BOOST_REQUIRE(lf.write([&](WriteTxn& t) {
                    return t.create_cube(kOwner, "shared", "hash-v1", 16, 1, &one);
                  }).ok());
  BOOST_REQUIRE(lf.write([&](WriteTxn& t) {
                    Digest salt;
                    Status s = t.ensure_tenant_salt(grantee, &salt);
                    Activation g = activation(t.next_id(10), one, salt, 4, 10);
                    g.tenant = grantee;
                    return s.ok() ? t.put_activation(g) : s;
                  }).ok());
  BOOST_REQUIRE(lf.write([&](WriteTxn& t) {
                    Cube gone;
                    return t.remove_cube(kOwner, "shared", true, &gone);
                  }).ok());
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(lf.follower->begin_read(&r).ok());
  ActivationUsage usage;
  BOOST_REQUIRE(r->activation_usage(grantee, &usage).ok());
  BOOST_TEST(usage.count == 0u);
  r.reset();
  lf.check_equal("one shard");
}

// The commit queue hands each group's changes to its sink before the commit;
// a sink that refuses (the log has no quorum) fails the group's jobs, keeps
// the store as it was, and is not fatal.
BOOST_AUTO_TEST_CASE(the_commit_queue_sinks_each_group_before_its_commit) {
  TempDir dir, follower_dir;
  auto store = open_store(dir.path());
  std::vector<std::string> log;
  bool refuse = false;
  {
    CommitQueue queue(*store, [](const Status& s) { BOOST_FAIL("fatal: " + s.message); });
    queue.set_change_sink([&](std::vector<SunkGroup>& groups) {
      for (SunkGroup& g : groups) {
        if (refuse) {
          g.outcome = {Errc::unavailable, "the log has no quorum"};
          continue;
        }
        ChangeGroup group;
        group.changes = *g.changes;
        log.push_back(encode_change_group(group));
        g.position.sequence = log.size();
      }
    });
    auto run = [&](std::function<Status(WriteTxn&)> apply) {
      return queue.submit_and_wait({.apply = std::move(apply), .done = {}});
    };
    Cube cube;
    BOOST_TEST(run([&](WriteTxn& t) { return t.create_cube(1000, "c", "h", 16, 1, &cube); }).ok());
    // A job that changes nothing is not sunk.
    BOOST_TEST(run([](WriteTxn&) { return Status{}; }).ok());
    BOOST_TEST(log.size() == 1u);
    refuse = true;
    Status refused = run([&](WriteTxn& t) {
      Cube other;
      return t.create_cube(1000, "lost", "h", 16, 1, &other);
    });
    BOOST_TEST((refused.code == Errc::unavailable));
    BOOST_TEST(refused.message == "the log has no quorum");
    refuse = false;
    BOOST_TEST(run([&](WriteTxn& t) {
                 Cube other;
                 return t.create_cube(1000, "after", "h", 16, 1, &other);
               }).ok());
    BOOST_TEST(log.size() == 2u);
  }
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  BOOST_TEST((r->find_cube(1000, "lost", &c).code == Errc::not_found));
  r.reset();
  // The log alone rebuilds the store (with where each record is in it, as
  // the owner notes it).
  auto follower = open_store(follower_dir.path());
  for (std::size_t i = 0; i < log.size(); ++i) {
    ChangeGroup group;
    BOOST_REQUIRE(decode_change_group(log[i], &group).ok());
    BOOST_REQUIRE(memos::testing::write(*follower, [&](WriteTxn& t) {
                    if (Status s = t.apply_changes(group.changes); !s.ok()) return s;
                    return t.set_log_position(0, LogPosition{.sequence = i + 1});
                  }).ok());
  }
  store.reset();
  follower.reset();
  const Rows leader_rows = dump(dir.path());
  BOOST_TEST(difference(leader_rows, dump(follower_dir.path())).empty());
  // And the comparison sees a record left out.
  TempDir partial_dir;
  follower = open_store(partial_dir.path());
  ChangeGroup first;
  BOOST_REQUIRE(decode_change_group(log.front(), &first).ok());
  BOOST_REQUIRE(memos::testing::write(*follower, [&](WriteTxn& t) {
                  return t.apply_changes(first.changes);
                }).ok());
  follower.reset();
  BOOST_TEST(!difference(leader_rows, dump(partial_dir.path())).empty());
}

// Each shard's writes are one group of their own: its owner appends them to
// its own log. Jobs of two shards queued together are one turn: the sink
// gets both shards' groups at once (to append them together), the turn
// commits once, and one shard's refusal leaves the other's commit standing
// (the acknowledged record is applied alone). A follower applies a shard's
// record in that shard's transaction, and only there: its last id advances
// that shard's ids.
BOOST_AUTO_TEST_CASE(each_shard_commits_and_sinks_its_own_group) {
  TempDir dir, follower_dir;
  auto store = open_store(dir.path(), 2);
  std::vector<std::pair<std::uint32_t, std::string>> log;  // shard, record
  std::vector<std::vector<std::uint32_t>> sink_calls;      // each call's shards
  bool refuse_shard_1 = true;
  {
    CommitQueue queue(*store, [](const Status& s) { BOOST_FAIL("fatal: " + s.message); });
    queue.set_change_sink([&](std::vector<SunkGroup>& groups) {
      sink_calls.emplace_back();
      for (SunkGroup& g : groups) {
        sink_calls.back().push_back(g.shard);
        if (g.shard == 1 && refuse_shard_1) {
          g.outcome = {Errc::unavailable, "shard 1's log has no quorum"};
          continue;
        }
        ChangeGroup group;
        group.changes = *g.changes;
        log.emplace_back(g.shard, encode_change_group(group));
        g.position.sequence = log.size();
      }
    });
    auto hold = std::make_unique<WriterHold>(queue);  // every job below is one turn
    std::vector<std::promise<Status>> done(4);
    auto job = [&](std::size_t i, std::uint32_t shard, const std::string& name) {
      WriteJob j{[name](WriteTxn& t) {
                   Cube c;
                   return t.create_cube(1000 + t.shard(), name, "h", 16, 1, &c);
                 },
                 [&done, i](const Status& s) { done[i].set_value(s); }};
      j.shard = shard;
      queue.submit(std::move(j));
    };
    job(0, 0, "a");
    job(1, 1, "b");
    job(2, 0, "c");
    job(3, 7, "d");  // a shard the store lacks
    hold->release();
    BOOST_TEST(done[0].get_future().get().ok());
    const Status refused = done[1].get_future().get();
    BOOST_TEST((refused.code == Errc::unavailable));
    BOOST_TEST(refused.message == "shard 1's log has no quorum");
    BOOST_TEST(done[2].get_future().get().ok());
    BOOST_TEST((done[3].get_future().get().code == Errc::conflict));
    // One sink call for the turn, with both shards' groups.
    BOOST_REQUIRE(sink_calls.size() == 1u);
    BOOST_TEST((sink_calls[0] == std::vector<std::uint32_t>{0, 1}));
    BOOST_REQUIRE(log.size() == 1u);  // shard 0's two jobs, one group
    BOOST_TEST(log[0].first == 0u);

    // Both acknowledged: one transaction holds both, with their positions.
    refuse_shard_1 = false;
    hold = std::make_unique<WriterHold>(queue);
    std::vector<std::promise<Status>> more(2);
    for (std::uint32_t shard = 0; shard < 2; ++shard) {
      WriteJob j{[shard](WriteTxn& t) {
                   Cube c;
                   return t.create_cube(1000 + shard, "both" + std::to_string(shard), "h", 16, 1,
                                        &c);
                 },
                 [&more, shard](const Status& s) { more[shard].set_value(s); }};
      j.shard = shard;
      queue.submit(std::move(j));
    }
    const std::size_t turns = queue.groups_committed();
    hold->release();
    BOOST_TEST(more[0].get_future().get().ok());
    BOOST_TEST(more[1].get_future().get().ok());
    BOOST_TEST(queue.groups_committed() == turns + 2);  // the held job's turn and theirs
    BOOST_REQUIRE(sink_calls.size() == 2u);
    BOOST_TEST((sink_calls[1] == std::vector<std::uint32_t>{0, 1}));
    BOOST_REQUIRE(log.size() == 3u);
  }
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  BOOST_TEST(r->find_cube(1001, "both1", &c).ok());
  BOOST_TEST(c.id % 2 == 1u);
  LogPosition position;
  BOOST_REQUIRE(r->log_position(0, &position).ok());
  BOOST_TEST(position.sequence == 2u);
  BOOST_REQUIRE(r->log_position(1, &position).ok());
  BOOST_TEST(position.sequence == 3u);
  BOOST_TEST(r->find_cube(1000, "a", &c).ok());
  BOOST_TEST(c.id % 2 == 0u);
  BOOST_TEST(r->find_cube(1000, "c", &c).ok());
  BOOST_TEST((r->find_cube(1001, "b", &c).code == Errc::not_found));
  const CubeId last = c.id;
  r.reset();

  auto follower = open_store(follower_dir.path(), 2);
  ChangeGroup group;
  BOOST_REQUIRE(decode_change_group(log[0].second, &group).ok());
  std::optional<WriteTxn> txn;
  BOOST_REQUIRE(follower->begin_write(&txn, 1).ok());
  const Status other = txn->apply_changes(group.changes);
  BOOST_TEST((other.code == Errc::corrupt));
  BOOST_TEST(other.message.find("\"last_id\" in a record of shard 1") != std::string::npos,
             other.message);
  txn->abort();
  BOOST_REQUIRE(follower->begin_write(&txn, 0).ok());
  BOOST_REQUIRE(txn->apply_changes(group.changes).ok());
  BOOST_REQUIRE(txn->commit().ok());
  BOOST_REQUIRE(follower->begin_write(&txn, 0).ok());
  const std::uint64_t next = txn->next_id(1);  // a clock far behind the owner's
  BOOST_TEST(next > last);
  BOOST_TEST(next % 2 == 0u);
  txn->abort();
}

// The log acknowledged one shard's group and refused the other's, and the
// store then cannot hold the acknowledged one (here: a position it refuses):
// nothing of the turn is committed, every job fails, and the queue calls
// on_fatal, for the log is ahead of the store (memosd exits, and reads the
// records back from the log when it starts again).
BOOST_AUTO_TEST_CASE(a_group_the_log_holds_and_the_store_cannot_is_fatal) {
  TempDir dir;
  auto store = open_store(dir.path(), 2);
  std::vector<Status> fatal;  // on the writer thread; read once it ended
  std::vector<std::promise<Status>> done(2);
  {
    CommitQueue queue(*store, [&](const Status& s) { fatal.push_back(s); });
    queue.set_change_sink([](std::vector<SunkGroup>& groups) {
      for (SunkGroup& g : groups) {
        if (g.shard == 1) {
          g.outcome = {Errc::unavailable, "shard 1's log has no quorum"};
          continue;
        }
        g.position.sequence = 1;
        g.position.digest = "not a digest";
      }
    });
    auto hold = std::make_unique<WriterHold>(queue);  // both jobs in one turn
    for (std::uint32_t shard = 0; shard < 2; ++shard) {
      WriteJob j{[shard](WriteTxn& t) {
                   Cube c;
                   return t.create_cube(1000 + shard, "c" + std::to_string(shard), "h", 16, 1, &c);
                 },
                 [&done, shard](const Status& s) { done[shard].set_value(s); }};
      j.shard = shard;
      queue.submit(std::move(j));
    }
    hold->release();
    for (std::uint32_t shard = 0; shard < 2; ++shard) {
      const Status s = done[shard].get_future().get();
      BOOST_TEST((s.code == Errc::io), s.message);
      BOOST_TEST(
          s.message.find("reads them back from the log when it starts again") != std::string::npos,
          s.message);
    }
  }
  BOOST_REQUIRE(fatal.size() == 1u);
  BOOST_TEST((fatal[0].code == Errc::io));
  std::optional<ReadTxn> r;
  BOOST_REQUIRE(store->begin_read(&r).ok());
  Cube c;
  for (std::uint32_t shard = 0; shard < 2; ++shard) {
    BOOST_TEST(
        (r->find_cube(1000 + shard, "c" + std::to_string(shard), &c).code == Errc::not_found));
    LogPosition position;
    BOOST_REQUIRE(r->log_position(shard, &position).ok());
    BOOST_TEST(position.sequence == 0u);
  }
}
