// The activation tier's storage (memcube/activation.h, activation_store.cpp):
// chain digests, records with their digests, blob references, per-tenant
// usage and LRU order, salts, cascade on cube removal, damaged records.
#define BOOST_TEST_MODULE activation_store
#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <optional>
#include <set>

#include "memcube/activation.h"
#include "memcube/store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

using namespace memos::store;
using memos::testing::open_store;
using memos::testing::TempDir;
using memos::testing::write;

namespace {

const ActivationKey kKey{std::string(64, 'a'), "", "f16", "llama.cpp x; layers 2", 1};

std::vector<std::int32_t> tokens(std::size_t n, std::int32_t first = 1) {
  std::vector<std::int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = first + static_cast<std::int32_t>(i);
  return t;
}

Activation make(std::uint64_t id, CubeId cube, TenantId tenant, const Digest& salt,
                std::vector<std::int32_t> toks, std::uint64_t size, std::int64_t used) {
  Activation a;
  a.id = id;
  a.cube = cube;
  a.tenant = tenant;
  a.key = kKey;
  a.model = "tiny";
  a.chunk_tokens = 16;
  a.tokens = std::move(toks);
  a.sources = {7, 8};
  a.blob.fill(static_cast<std::uint8_t>(id));
  a.size = size;
  a.created_at_ms = a.last_used_ms = used;
  a.prefixes = prefix_digests(a.key, salt, a.chunk_tokens, a.tokens);
  return a;
}

std::set<std::uint64_t> under(Store& store, const Digest& d) {
  std::optional<ReadTxn> txn;
  BOOST_REQUIRE(store.begin_read(&txn).ok());
  std::set<std::uint64_t> ids;
  BOOST_REQUIRE(txn->activations_under(d,
                                       [&](CubeId, std::uint64_t id) {
                                         ids.insert(id);
                                         return true;
                                       })
                    .ok());
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chain_digests_follow_whole_chunks) {
  Digest salt{};
  auto t = tokens(100);
  auto d = prefix_digests(kKey, salt, 16, t);
  BOOST_TEST(d.size() == 6u);  // 96 of the 100 tokens in whole chunks
  // A longer prompt with the same start shares every digest of the start.
  auto longer = tokens(200);
  auto d2 = prefix_digests(kKey, salt, 16, longer);
  for (std::size_t i = 0; i < d.size(); ++i) BOOST_TEST((d[i] == d2[i]));
  // One token changed in chunk 2: chunks 0 and 1 match, the rest do not.
  auto changed = t;
  changed[40] = -5;
  auto d3 = prefix_digests(kKey, salt, 16, changed);
  BOOST_TEST((d3[0] == d[0] && d3[1] == d[1]));
  for (std::size_t i = 2; i < d.size(); ++i) BOOST_TEST(!(d3[i] == d[i]));
  // Another model, KV type, layout, format, salt or chunk size: nothing shared.
  std::vector<ActivationKey> others(5, kKey);
  others[0].model_hash = std::string(64, 'b');
  others[1].kv_type = "f32";
  others[2].layout = "other";
  others[3].state_format = 2;
  others[4].adapters = "lora.gguf:0.5";
  for (const auto& k : others) BOOST_TEST(!(prefix_digests(k, salt, 16, t)[0] == d[0]));
  Digest salt2{};
  salt2[0] = 1;
  BOOST_TEST(!(prefix_digests(kKey, salt2, 16, t)[0] == d[0]));
  BOOST_TEST(!(prefix_digests(kKey, salt, 8, t)[1] == d[0]));
  BOOST_TEST(prefix_digests(kKey, salt, 16, tokens(15)).empty());
  BOOST_TEST(prefix_digests(kKey, salt, 0, t).empty());
}

BOOST_AUTO_TEST_CASE(items_digests_usage_lru_and_removal) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  Digest salt{}, salt_again{};
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1000, "c", "hash-v1", 8, 1, &cube);
                  if (s.ok()) s = t.ensure_tenant_salt(1000, &salt);
                  if (s.ok()) s = t.ensure_tenant_salt(1000, &salt_again);
                  return s;
                }).ok());
  BOOST_TEST((salt == salt_again));  // made once, then kept
  Digest other_salt{};
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.ensure_tenant_salt(2000, &other_salt); }).ok());
  BOOST_TEST(!(salt == other_salt));

  Activation a = make(10, cube.id, 1000, salt, tokens(64), 1000, 100);
  Activation b = make(11, cube.id, 1000, salt, tokens(40), 500, 200);
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.put_activation(a);
                  return s.ok() ? t.put_activation(b) : s;
                }).ok());
  // Same id twice is refused.
  BOOST_TEST((write(*store, [&](WriteTxn& t) { return t.put_activation(a); }).code ==
              Errc::already_exists));
  // Both are found under the first chunk's digest, only a under its fourth.
  BOOST_TEST((under(*store, a.prefixes[0]) == std::set<std::uint64_t>{10, 11}));
  BOOST_TEST((under(*store, a.prefixes[3]) == std::set<std::uint64_t>{10}));
  {
    std::optional<ReadTxn> txn;
    BOOST_REQUIRE(store->begin_read(&txn).ok());
    Activation got;
    BOOST_REQUIRE(txn->get_activation(cube.id, 10, &got).ok());
    BOOST_TEST((got.tokens == a.tokens && got.key == a.key && got.blob == a.blob));
    BOOST_TEST((got.sources == std::vector<std::uint64_t>{7, 8}));
    ActivationUsage usage;
    BOOST_REQUIRE(txn->activation_usage(1000, &usage).ok());
    BOOST_TEST(usage.count == 2u);
    BOOST_TEST(usage.bytes == 1500u);
    std::uint64_t refs = 0;
    BOOST_REQUIRE(txn->blob_refs(a.blob, &refs).ok());
    BOOST_TEST(refs == 1u);
    std::vector<std::pair<CubeId, std::uint64_t>> lru;
    BOOST_REQUIRE(txn->least_recent_activations(1000, 10, &lru).ok());
    BOOST_REQUIRE(lru.size() == 2u);
    BOOST_TEST(lru[0].second == 10u);  // used at 100, before b's 200
    BOOST_REQUIRE(txn->activation_usage(2000, &usage).ok());
    BOOST_TEST(usage.count == 0u);
  }
  // A use moves a to the back of the LRU order.
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.touch_activation(cube.id, 10, 300); }).ok());
  {
    std::optional<ReadTxn> txn;
    BOOST_REQUIRE(store->begin_read(&txn).ok());
    std::vector<std::pair<CubeId, std::uint64_t>> lru;
    BOOST_REQUIRE(txn->least_recent_activations(1000, 10, &lru).ok());
    BOOST_REQUIRE(lru.size() == 2u);
    BOOST_TEST(lru[0].second == 11u);
    Activation got;
    BOOST_REQUIRE(txn->get_activation(cube.id, 10, &got).ok());
    BOOST_TEST(got.uses == 1u);
    BOOST_TEST(got.last_used_ms == 300);
  }
  // Removing b drops its digests, blob reference and usage.
  Activation gone;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_activation(cube.id, 11, &gone); }).ok());
  BOOST_TEST(gone.id == 11u);
  BOOST_TEST((under(*store, a.prefixes[0]) == std::set<std::uint64_t>{10}));
  BOOST_TEST((write(*store, [&](WriteTxn& t) { return t.remove_activation(cube.id, 11); }).code ==
              Errc::not_found));
  {
    std::optional<ReadTxn> txn;
    BOOST_REQUIRE(store->begin_read(&txn).ok());
    std::uint64_t refs = 9;
    BOOST_REQUIRE(txn->blob_refs(b.blob, &refs).ok());
    BOOST_TEST(refs == 0u);
    ActivationUsage usage;
    BOOST_REQUIRE(txn->activation_usage(1000, &usage).ok());
    BOOST_TEST(usage.count == 1u);
    BOOST_TEST(usage.bytes == 1000u);
  }
  // Removing the cube removes its activation items with it.
  Cube removed;
  BOOST_REQUIRE(
      write(*store, [&](WriteTxn& t) { return t.remove_cube(1000, "c", true, &removed); }).ok());
  BOOST_TEST(under(*store, a.prefixes[0]).empty());
  std::optional<ReadTxn> txn;
  BOOST_REQUIRE(store->begin_read(&txn).ok());
  ActivationUsage usage;
  BOOST_REQUIRE(txn->activation_usage(1000, &usage).ok());
  BOOST_TEST(usage.count == 0u);
  BOOST_TEST(usage.bytes == 0u);
  Activation got;
  BOOST_TEST((txn->get_activation(cube.id, 10, &got).code == Errc::not_found));
}

// A long block has a digest per chunk: 512 of them here. Its record reads
// back whole, by id and in its cube's list (reading the digest list once per
// digest once passed Cap'n Proto's traversal limit, which is sized to the
// record: every such item was reported damaged).
BOOST_AUTO_TEST_CASE(an_item_of_many_chunks_reads_back) {
  TempDir dir;
  auto store = open_store(dir.path());
  Cube cube;
  Digest salt{};
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                  Status s = t.create_cube(1000, "c", "hash-v1", 8, 1, &cube);
                  return s.ok() ? t.ensure_tenant_salt(1000, &salt) : s;
                }).ok());
  Activation a = make(10, cube.id, 1000, salt, tokens(8192), 1 << 20, 100);
  BOOST_REQUIRE_EQUAL(a.prefixes.size(), 512u);
  BOOST_REQUIRE(write(*store, [&](WriteTxn& t) { return t.put_activation(a); }).ok());
  std::optional<ReadTxn> txn;
  BOOST_REQUIRE(store->begin_read(&txn).ok());
  Activation got;
  Status s = txn->get_activation(cube.id, 10, &got);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST((got.tokens == a.tokens && got.prefixes == a.prefixes && got.blob == a.blob));
  std::size_t listed = 0;
  s = txn->list_activations(cube.id, [&](const Activation& l) {
    BOOST_TEST((l.prefixes == a.prefixes));
    ++listed;
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(listed == 1u);
}

BOOST_AUTO_TEST_CASE(items_survive_reopening_and_damage_is_reported) {
  TempDir dir;
  Cube cube;
  Digest salt{};
  Activation a;
  {
    auto store = open_store(dir.path());
    BOOST_REQUIRE(write(*store, [&](WriteTxn& t) {
                    Status s = t.create_cube(1000, "c", "hash-v1", 8, 1, &cube);
                    if (s.ok()) s = t.ensure_tenant_salt(1000, &salt);
                    a = make(10, cube.id, 1000, salt, tokens(64), 1000, 100);
                    return s.ok() ? t.put_activation(a) : s;
                  }).ok());
  }
  auto store = open_store(dir.path());
  {
    std::optional<ReadTxn> txn;
    BOOST_REQUIRE(store->begin_read(&txn).ok());
    Digest again{};
    BOOST_REQUIRE(txn->tenant_salt(1000, &again).ok());
    BOOST_TEST((again == salt));
    Activation got;
    BOOST_REQUIRE(txn->get_activation(cube.id, 10, &got).ok());
    BOOST_TEST((got.prefixes == a.prefixes));
  }
  // Flip one byte of the stored record behind the store's back: a read says
  // corrupt, never hands out wrong tokens.
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 32);
  store.reset();
  BOOST_REQUIRE(mdb_env_open(env, dir.path().c_str(), 0, 0600) == 0);
  MDB_txn* t = nullptr;
  MDB_dbi dbi;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &t) == 0);
  BOOST_REQUIRE(mdb_dbi_open(t, "activations", 0, &dbi) == 0);
  MDB_cursor* c = nullptr;
  BOOST_REQUIRE(mdb_cursor_open(t, dbi, &c) == 0);
  MDB_val k, v;
  BOOST_REQUIRE(mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0);
  std::string bytes(static_cast<char*>(v.mv_data), v.mv_size);
  bytes[bytes.size() / 2] ^= 0x20;
  MDB_val nv{bytes.size(), bytes.data()};
  BOOST_REQUIRE(mdb_cursor_put(c, &k, &nv, MDB_CURRENT) == 0);
  mdb_cursor_close(c);
  BOOST_REQUIRE(mdb_txn_commit(t) == 0);
  mdb_env_close(env);
  store = open_store(dir.path());
  std::optional<ReadTxn> txn;
  BOOST_REQUIRE(store->begin_read(&txn).ok());
  Activation got;
  BOOST_TEST((txn->get_activation(cube.id, 10, &got).code == Errc::corrupt));
}
