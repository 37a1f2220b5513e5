// Log compaction (kernel/cluster_store_snapshots.h, cluster_store_restore.h)
// on a real nats-server and etcd: a store snapshot is published and a store
// that lags never replaces it; compaction raises the floor, then removes the
// records the snapshot covers, keeping each shard's last record so that the
// owner's next fenced append still goes in; a store behind the floor takes
// the snapshot in its place at start, one at or past it is left alone; and
// what a hostile or damaged etcd or bucket holds (keys that are not what a
// node writes, a snapshot behind the floor, a file that is not a store, a
// blob the bucket lacks or of another size) is refused, leaving the store
// as it was and no folder behind. A swap a crash interrupted is finished
// or undone.
#define BOOST_TEST_MODULE store_snapshots
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cluster/jetstream.h"
#include "cluster/names.h"
#include "kernel/cluster_store_restore.h"
#include "kernel/cluster_store_snapshots.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::kernel::ClusterConfig;
using memos::kernel::Code;
using memos::kernel::StoreSnapshotInfo;
using memos::kernel::StoreSnapshots;
using memos::testing::engines_installed;
using memos::testing::TempDir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace store = memos::store;
namespace cluster = memos::cluster;

namespace {

constexpr std::uint32_t kShards = 2;

std::unique_ptr<store::Store> open_store(const std::string& dir) {
  fs::create_directories(dir);
  store::StoreOptions options;
  options.shards = kShards;
  store::Status s;
  auto st = store::Store::open(dir, options, &s);
  BOOST_REQUIRE_MESSAGE(st, s.message);
  return st;
}

// A store holding cube `name` of tenant 1000 and `positions` of the log.
std::unique_ptr<store::Store> store_at(const std::string& dir,
                                       const std::vector<std::uint64_t>& positions,
                                       const std::string& name = "kept") {
  auto st = open_store(dir);
  std::optional<store::WriteTxn> txn;
  BOOST_REQUIRE(st->begin_write(&txn, st->shard_of(1000)).ok());
  store::Cube cube;
  BOOST_REQUIRE(txn->create_cube(1000, name, "hash-v1", 8, 1, &cube).ok());
  for (std::uint32_t shard = 0; shard < kShards; ++shard) {
    store::LogPosition p;
    p.sequence = positions[shard];
    p.digest.assign(32, static_cast<char>(shard + 1));
    BOOST_REQUIRE(txn->set_log_position(shard, p).ok());
  }
  BOOST_REQUIRE(txn->commit().ok());
  return st;
}

std::vector<std::uint64_t> positions_of(const store::Store& st) {
  std::vector<std::uint64_t> out;
  BOOST_REQUIRE(memos::kernel::read_log_positions(st, &out).ok());
  return out;
}

bool has_cube(const store::Store& st, const std::string& name) {
  std::optional<store::ReadTxn> txn;
  BOOST_REQUIRE(st.begin_read(&txn).ok());
  store::Cube cube;
  return txn->find_cube(1000, name, &cube).ok();
}

struct Fixture {
  memos::testing::SingleEngines engines;
  std::unique_ptr<cluster::NatsConnection> nats;
  std::unique_ptr<cluster::EtcdClient> etcd;
  std::unique_ptr<cluster::JetStream> log;
  ClusterConfig config;

  Fixture() {
    cluster::NatsOptions options;
    options.servers = {engines.nats.url(0)};
    store::Status s;
    nats = cluster::NatsConnection::connect(options, &s);
    BOOST_REQUIRE_MESSAGE(nats, s.message);
    etcd = std::make_unique<cluster::EtcdClient>(std::vector<std::string>{engines.etcd.url(0)}, 2s);
    log = std::make_unique<cluster::JetStream>(*nats, 5s);
    config.enabled = true;
    config.name = "t";
    config.node_id = "a";
    config.nats = {engines.nats.url(0)};
    config.etcd = {engines.etcd.url(0)};
    config.replicas = 1;
    config.shards = kShards;
    cluster::StreamSettings stream;
    stream.name = cluster::log_stream("t");
    stream.subjects = {cluster::all_shards_filter("t")};
    memos::testing::eventually([&] { return log->ensure_stream(stream).ok(); }, 20s, 200ms);
  }

  std::unique_ptr<StoreSnapshots> node(const std::string& dir, const std::string& id = "a") {
    ClusterConfig c = config;
    c.node_id = id;
    memos::kernel::Status s;
    std::unique_ptr<StoreSnapshots> snapshots;
    memos::testing::eventually(
        [&] {
          snapshots = StoreSnapshots::open(c, *nats, *etcd, dir, 2s, &s);
          return snapshots != nullptr;
        },
        20s, 200ms);
    BOOST_REQUIRE_MESSAGE(snapshots, s.message);
    return snapshots;
  }

  // Appends a record to `shard`'s subject, fenced on `expected`; its sequence.
  std::uint64_t append(std::uint32_t shard, std::optional<std::uint64_t> expected = {}) {
    std::uint64_t seq = 0;
    store::Status s = log->append(cluster::shard_subject("t", shard), "record", expected, "", &seq);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return seq;
  }

  std::uint64_t first_record() {
    cluster::StoredMessage m;
    store::Status s =
        log->next_message(cluster::log_stream("t"), 1, cluster::all_shards_filter("t"), &m);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return m.sequence;
  }

  std::vector<std::uint64_t> floor() {
    std::vector<std::uint64_t> out;
    memos::kernel::Status s = memos::kernel::read_log_floor(*etcd, "t", kShards, &out);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return out;
  }

  memos::kernel::Status restore(const std::string& dir, std::unique_ptr<store::Store>* st,
                                bool* restored) {
    store::StoreOptions options;
    options.shards = kShards;
    return memos::kernel::restore_store_if_behind(config, *nats, *etcd, dir + "/store",
                                                  dir + "/staging", options, 10s, st, restored);
  }
};

using Positions = std::vector<std::uint64_t>;

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_published_snapshot_lets_the_log_drop_what_it_covers, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  // Shard 0: 1..5, shard 1: 6..8, shard 0 again: 9.
  for (int i = 0; i < 5; ++i) append(0);
  for (int i = 0; i < 3; ++i) append(1);
  BOOST_TEST(append(0) == 9u);
  TempDir a;
  auto store_a = store_at(a.path() + "/store", {5, 8});
  auto node_a = node(a.path() + "/snapshots");
  BOOST_REQUIRE(node_a->publish(*store_a, 1000, 0).ok());
  StoreSnapshotInfo info;
  BOOST_REQUIRE(node_a->newest(&info).ok());
  BOOST_TEST(info.node == "a");
  BOOST_TEST(info.covers.positions == (Positions{5, 8}));
  BOOST_TEST(info.covers.time_ms == 1000u);
  BOOST_TEST(info.marks.size() == 1u);
  BOOST_TEST(info.bytes > 0u);
  // The copy passed through the staging folder and left nothing there.
  BOOST_TEST(files_in(a.path() + "/snapshots/files") == 0u);
  BOOST_TEST(!fs::exists(a.path() + "/snapshots/copy"));

  std::uint64_t purged = 0;
  BOOST_REQUIRE(node_a->compact(*log, 1000, 0, &purged).ok());
  BOOST_TEST(floor() == (Positions{5, 8}));
  // Shard 0's 1..5 and shard 1's 6 and 7; 8 is shard 1's last, and stays.
  BOOST_TEST(purged == 7u);
  BOOST_TEST(first_record() == 8u);
  // Each owner's next fenced append still goes in.
  BOOST_TEST(append(1, 8) == 10u);
  BOOST_TEST(append(0, 9) == 11u);
  // Once more: 8, covered but kept as shard 1's last, is no longer its last.
  BOOST_REQUIRE(node_a->compact(*log, 1000, 0, &purged).ok());
  BOOST_TEST(purged == 1u);
  BOOST_TEST(first_record() == 9u);
  BOOST_REQUIRE(node_a->compact(*log, 1000, 0, &purged).ok());
  BOOST_TEST(purged == 0u);
  BOOST_TEST(node_a->counters().published == 1u);
  BOOST_TEST(node_a->counters().compactions == 3u);
  BOOST_TEST(node_a->counters().purged_records == 8u);
}

BOOST_FIXTURE_TEST_CASE(the_log_keeps_what_is_newer_than_its_retention, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  for (int i = 0; i < 4; ++i) append(0);  // 1..4
  append(1);                              // 5
  TempDir a;
  auto store_a = store_at(a.path() + "/store", {3, 5});
  auto node_a = node(a.path() + "/snapshots");
  BOOST_REQUIRE(node_a->publish(*store_a, 10'000, 60'000).ok());
  std::uint64_t purged = 0;
  // The only mark is 50 s old: nothing goes.
  BOOST_REQUIRE(node_a->compact(*log, 60'000, 60'000, &purged).ok());
  BOOST_TEST(purged == 0u);
  BOOST_TEST(floor() == (Positions{0, 0}));
  // A newer snapshot, then a minute after the first: what the first covered goes.
  auto store_b = store_at(a.path() + "/store-b", {4, 5}, "b");
  BOOST_REQUIRE(node_a->publish(*store_b, 65'000, 60'000).ok());
  StoreSnapshotInfo info;
  BOOST_REQUIRE(node_a->newest(&info).ok());
  BOOST_TEST(info.marks.size() == 2u);
  BOOST_REQUIRE(node_a->compact(*log, 70'000, 60'000, &purged).ok());
  BOOST_TEST(floor() == (Positions{3, 5}));
  BOOST_TEST(purged == 3u);  // shard 0's 1..3
  BOOST_TEST(first_record() == 4u);
  // A third snapshot ages the first mark out of the key.
  BOOST_REQUIRE(node_a->publish(*store_b, 130'000, 60'000).ok());
  BOOST_REQUIRE(node_a->newest(&info).ok());
  BOOST_TEST(info.marks.size() == 2u);
  BOOST_TEST(info.marks.front().time_ms == 65'000u);
}

BOOST_FIXTURE_TEST_CASE(a_store_that_lags_never_replaces_a_newer_snapshot, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, b;
  auto store_a = store_at(a.path() + "/store", {5, 8});
  auto store_b = store_at(b.path() + "/store", {6, 7}, "b");
  auto node_a = node(a.path() + "/snapshots");
  auto node_b = node(b.path() + "/snapshots", "b");
  BOOST_REQUIRE(node_a->publish(*store_a, 1000, 0).ok());
  memos::kernel::Status s = node_b->publish(*store_b, 2000, 0);
  BOOST_TEST((s.code == Code::conflict));
  BOOST_TEST(s.message.find("shard 1") != std::string::npos, s.message);
  StoreSnapshotInfo info;
  BOOST_REQUIRE(node_b->newest(&info).ok());
  BOOST_TEST(info.node == "a");
  BOOST_TEST(node_b->counters().publish_failures == 1u);
  // One that holds as much or more replaces it.
  auto store_c = store_at(b.path() + "/store-c", {6, 8}, "c");
  BOOST_REQUIRE(node_b->publish(*store_c, 3000, 0).ok());
  BOOST_REQUIRE(node_a->newest(&info).ok());
  BOOST_TEST(info.node == "b");
  BOOST_TEST(info.marks.size() == 1u);  // retention 0: the older mark is of no more use
  // Nor does a lagging store replace a key no node would write if it is
  // below the log's floor: nodes behind the floor could not catch up from it.
  BOOST_REQUIRE(etcd->put(cluster::log_floor_key("t"), "{\"positions\":[6,8]}").ok());
  BOOST_REQUIRE(etcd->put(cluster::store_snapshot_key("t"), "{garbled").ok());
  s = node_a->publish(*store_a, 4000, 0);  // holds {5, 8}
  BOOST_TEST((s.code == Code::conflict));
  BOOST_TEST(s.message.find("below the log's floor") != std::string::npos, s.message);
  BOOST_REQUIRE(node_b->publish(*store_c, 5000, 0).ok());  // holds {6, 8}
}

BOOST_FIXTURE_TEST_CASE(a_store_behind_the_floor_takes_the_snapshot_in_its_place, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  for (int i = 0; i < 3; ++i) append(0);
  append(1);
  append(0);
  TempDir a, c, d;
  auto store_a = store_at(a.path() + "/store", {3, 4});
  auto node_a = node(a.path() + "/snapshots");
  // Before any compaction every store can follow the log.
  auto store_c = store_at(c.path() + "/store", {0, 0}, "own");
  bool restored = true;
  BOOST_REQUIRE(restore(c.path(), &store_c, &restored).ok());
  BOOST_TEST(!restored);
  BOOST_REQUIRE(node_a->publish(*store_a, 1000, 0).ok());
  std::uint64_t purged = 0;
  BOOST_REQUIRE(node_a->compact(*log, 1000, 0, &purged).ok());
  BOOST_TEST(purged == 3u);

  memos::kernel::Status s = restore(c.path(), &store_c, &restored);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(restored);
  BOOST_TEST(positions_of(*store_c) == (Positions{3, 4}));
  BOOST_TEST(has_cube(*store_c, "kept"));
  BOOST_TEST(!has_cube(*store_c, "own"));
  BOOST_TEST(!fs::exists(c.path() + "/store.incoming"));
  BOOST_TEST(!fs::exists(c.path() + "/store.replaced"));
  // The store it took opens again as this node's own.
  store_c.reset();
  store_c = open_store(c.path() + "/store");
  BOOST_TEST(has_cube(*store_c, "kept"));

  // At or past the floor on every shard: left as it is, NATS not asked.
  auto store_d = store_at(d.path() + "/store", {3, 5}, "own");
  BOOST_REQUIRE(restore(d.path(), &store_d, &restored).ok());
  BOOST_TEST(!restored);
  BOOST_TEST(has_cube(*store_d, "own"));
}

BOOST_FIXTURE_TEST_CASE(what_a_hostile_cluster_holds_is_refused_and_the_store_kept, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, c;
  auto store_a = store_at(a.path() + "/store", {3, 4});
  auto node_a = node(a.path() + "/snapshots");
  BOOST_REQUIRE(node_a->publish(*store_a, 1000, 0).ok());
  StoreSnapshotInfo good;
  BOOST_REQUIRE(node_a->newest(&good).ok());
  auto store_c = store_at(c.path() + "/store", {0, 0}, "own");
  const std::string floor_key = cluster::log_floor_key("t");
  const std::string snapshot_key = cluster::store_snapshot_key("t");
  auto refused = [&](const std::string& what, Code code) {
    bool restored = true;
    memos::kernel::Status s = restore(c.path(), &store_c, &restored);
    BOOST_TEST(!s.ok(), what);
    BOOST_TEST((s.code == code), what << ": " << s.message);
    BOOST_TEST(!restored, what);
    BOOST_TEST(has_cube(*store_c, "own"), what);
    BOOST_TEST(positions_of(*store_c) == (Positions{0, 0}), what);
    BOOST_TEST(!fs::exists(c.path() + "/store.incoming"), what);
  };
  for (const char* floor :
       {"", "not json", "[3,4]", "{\"positions\":[3]}", "{\"positions\":[3,4,5]}",
        "{\"positions\":[\"3\",4]}", "{\"positions\":[-1,4]}", "{\"positions\":[]}",
        "{\"positions\":[3,4.5]}", "{\"positions\":{\"0\":3}}", "null"}) {
    BOOST_REQUIRE(etcd->put(floor_key, floor).ok());
    refused(std::string("floor ") + floor, Code::internal);
  }
  BOOST_REQUIRE(etcd->put(floor_key, "{\"positions\":[3,4]}").ok());
  const nlohmann::json base = {
      {"blob", good.blob},   {"bytes", good.bytes},
      {"node", "a"},         {"time_ms", 1000},
      {"positions", {3, 4}}, {"marks", {{{"time_ms", 1000}, {"positions", {3, 4}}}}}};
  auto with = [&](const char* field, const nlohmann::json& value) {
    nlohmann::json j = base;
    j[field] = value;
    return j.dump();
  };
  const std::pair<std::string, std::string> hostile[] = {
      {"not json", "{"},
      {"an array", "[]"},
      {"no blob", with("blob", nullptr)},
      {"a blob that is not hex", with("blob", "zz")},
      {"2^41 bytes", with("bytes", 1ull << 41)},
      {"-1 bytes", with("bytes", -1)},
      {"a time that is text", with("time_ms", "1000")},
      {"a 1000-byte node", with("node", std::string(1000, 'n'))},
      {"three shards", with("positions", {3, 4, 5})},
      {"a mark ahead of it", with("marks", {{{"time_ms", 1}, {"positions", {9, 9}}}})},
      {"300 marks",
       with("marks", nlohmann::json::array_t(300, {{"time_ms", 1}, {"positions", {1, 1}}}))},
  };
  for (const auto& [what, value] : hostile) {
    BOOST_REQUIRE(etcd->put(snapshot_key, value).ok());
    refused(what, Code::internal);
  }
  {
    nlohmann::json j = base;
    j["positions"] = {2, 4};
    j["marks"] = {{{"time_ms", 1000}, {"positions", {2, 4}}}};
    BOOST_REQUIRE(etcd->put(snapshot_key, j.dump()).ok());
    refused("a snapshot behind the floor", Code::internal);
  }
  // A blob the bucket lacks (looked up twice: it may have been replaced).
  {
    nlohmann::json j = base;
    j["blob"] = std::string(64, 'a');
    BOOST_REQUIRE(etcd->put(snapshot_key, j.dump()).ok());
    refused("a missing blob", Code::not_found);
  }
  // The right blob described with another size.
  BOOST_REQUIRE(etcd->put(snapshot_key, with("bytes", good.bytes + 1)).ok());
  {
    bool restored = true;
    memos::kernel::Status s = restore(c.path(), &store_c, &restored);
    BOOST_TEST(!s.ok());
    BOOST_TEST(!restored);
    BOOST_TEST(has_cube(*store_c, "own"));
  }
  // A file in the bucket, whole and matching its digest, that is no store.
  {
    TempDir files;
    store::Status st;
    auto blobs = store::BlobStore::open(files.path() + "/b", &st);
    BOOST_REQUIRE(blobs);
    std::string junk(20000, '\0');
    std::mt19937 random(7);
    for (char& ch : junk) ch = static_cast<char>(random());
    store::BlobId id{};
    BOOST_REQUIRE(blobs->put(junk, &id).ok());
    cluster::BucketSettings settings;
    settings.name = cluster::store_snapshot_bucket_name("t");
    settings.replicas = 1;
    auto bucket = cluster::BlobBucket::open(settings, *nats, 2s, &st);
    BOOST_REQUIRE(bucket);
    BOOST_REQUIRE(bucket->publish(id, junk.size(), *blobs).ok());
    nlohmann::json j = base;
    j["blob"] = store::to_hex(id);
    j["bytes"] = junk.size();
    BOOST_REQUIRE(etcd->put(snapshot_key, j.dump()).ok());
    bool restored = true;
    memos::kernel::Status s = restore(c.path(), &store_c, &restored);
    BOOST_TEST(!s.ok());
    BOOST_TEST(s.message.find("opening node a's snapshot") != std::string::npos, s.message);
    BOOST_TEST(!restored);
    BOOST_TEST(has_cube(*store_c, "own"));
  }
  // The good description again: taken.
  BOOST_REQUIRE(etcd->put(snapshot_key, base.dump()).ok());
  bool restored = false;
  BOOST_REQUIRE(restore(c.path(), &store_c, &restored).ok());
  BOOST_TEST(restored);
  BOOST_TEST(has_cube(*store_c, "kept"));
}

BOOST_AUTO_TEST_CASE(a_swap_a_crash_interrupted_is_finished_or_undone) {
  TempDir dir;
  const std::string store_dir = dir.path() + "/store";
  // Between the renames: no store, the replaced one beside it.
  { auto st = store_at(dir.path() + "/store.replaced", {1, 1}, "old"); }
  fs::create_directories(dir.path() + "/store.incoming");
  BOOST_REQUIRE(memos::kernel::tidy_store_swap(store_dir).ok());
  BOOST_TEST(!fs::exists(dir.path() + "/store.incoming"));
  BOOST_TEST(!fs::exists(dir.path() + "/store.replaced"));
  {
    auto st = open_store(store_dir);
    BOOST_TEST(has_cube(*st, "old"));
  }
  // After both renames: the new store stays, the replaced one goes.
  { auto st = store_at(dir.path() + "/store.replaced", {1, 1}, "older"); }
  BOOST_REQUIRE(memos::kernel::tidy_store_swap(store_dir).ok());
  BOOST_TEST(!fs::exists(dir.path() + "/store.replaced"));
  auto st = open_store(store_dir);
  BOOST_TEST(has_cube(*st, "old"));
  BOOST_TEST(!has_cube(*st, "older"));
}

BOOST_FIXTURE_TEST_CASE(etcd_replaces_a_key_only_at_the_revision_read, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  bool replaced = false;
  BOOST_REQUIRE(etcd->replace("/t/k", "1", 0, &replaced).ok());
  BOOST_TEST(replaced);
  BOOST_REQUIRE(etcd->replace("/t/k", "2", 0, &replaced).ok());
  BOOST_TEST(!replaced);  // no longer absent
  std::optional<cluster::EtcdKeyValue> kv;
  BOOST_REQUIRE(etcd->get("/t/k", &kv).ok());
  BOOST_REQUIRE(kv);
  const std::int64_t read = kv->mod_revision;
  BOOST_REQUIRE(etcd->replace("/t/k", "3", read, &replaced).ok());
  BOOST_TEST(replaced);
  BOOST_REQUIRE(etcd->replace("/t/k", "4", read, &replaced).ok());
  BOOST_TEST(!replaced);  // another write came between
  BOOST_REQUIRE(etcd->get("/t/k", &kv).ok());
  BOOST_TEST(kv->value == "3");
}

// A file the key does not name (a publish a crash cut short) leaves the
// snapshot bucket once older than the cut; the newest snapshot stays. With
// a key no node would write, nothing goes: it may still name a file.
BOOST_FIXTURE_TEST_CASE(a_snapshot_file_no_key_names_leaves_the_bucket, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, files;
  auto store_a = store_at(a.path() + "/store", {0, 0});
  auto node_a = node(a.path() + "/snapshots");
  store::Status st;
  auto blobs = store::BlobStore::open(files.path() + "/b", &st);
  BOOST_REQUIRE(blobs);
  store::BlobId orphan{};
  BOOST_REQUIRE(blobs->put("half a store, left by a crash", &orphan).ok());
  cluster::BucketSettings settings;
  settings.name = cluster::store_snapshot_bucket_name("t");
  auto bucket = cluster::BlobBucket::open(settings, *nats, 2s, &st);
  BOOST_REQUIRE(bucket);
  BOOST_REQUIRE(bucket->publish(orphan, 29, *blobs).ok());
  BOOST_REQUIRE(node_a->publish(*store_a, 1000, 0).ok());
  std::this_thread::sleep_for(1100ms);
  const auto cut =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  BOOST_REQUIRE(etcd->put(cluster::store_snapshot_key("t"), "{").ok());
  std::uint64_t removed = 9;
  BOOST_TEST(!node_a->remove_unnamed(cut, &removed).ok());
  BOOST_TEST(removed == 0u);
  BOOST_REQUIRE(node_a->publish(*store_a, 2000, 0).ok());
  memos::kernel::Status s = node_a->remove_unnamed(cut, &removed);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  // The orphan, and the first snapshot's file if the second is another.
  BOOST_TEST(removed >= 1u);
  StoreSnapshotInfo info;
  BOOST_REQUIRE(node_a->newest(&info).ok());
  TempDir c;
  s = node_a->fetch(info, c.path() + "/data.mdb");
  BOOST_TEST(s.ok(), s.message);
  auto into = store::BlobStore::open(c.path() + "/b", &st);
  BOOST_REQUIRE(into);
  BOOST_TEST((bucket->fetch(orphan, 29, *into).code == store::Errc::not_found));
}
