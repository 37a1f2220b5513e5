// What a stored KV state is worth (kernel/scheduler/activation_utility.h),
// and the activation tier evicting by it (kernel/activation_tier.h):
// the least useful state goes in utility mode, the least recently used in
// lru mode, and the observer hears of each eviction once.
#define BOOST_TEST_MODULE activation_utility
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/activation_tier.h"
#include "kernel/config.h"
#include "kernel/scheduler/activation_utility.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

namespace store = memos::store;
using memos::kernel::ActivationConfig;
using memos::kernel::ActivationEviction;
using memos::kernel::ActivationTier;
using memos::kernel::ExecutorInfo;
using memos::kernel::scheduler::activation_utility;
using memos::testing::TempDir;

namespace {

constexpr std::int64_t kHour = 3600000;  // ms

// A state with the fields the utility reads; created and last used at `now`.
store::Activation state(std::int64_t now, std::uint64_t uses, double prefill_ms,
                        std::uint64_t size) {
  store::Activation a;
  a.created_at_ms = a.last_used_ms = now;
  a.uses = uses;
  a.prefill_ms = prefill_ms;
  a.size = size;
  a.tokens.assign(100, 1);
  return a;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_formula_matches_hand_computed_values) {
  const std::int64_t now = 10 * kHour;
  namespace tt = boost::test_tools;

  // Made 2 h ago, last used 1 h ago (one half-life), 3 uses, a 200 ms
  // prefill, 1,000,000 bytes:
  //   age  = max(2 h, 1 h) = 7,200,000 ms
  //   rate = (3 + 1) × 3,600,000 / 7,200,000 × 2^(−1) = 4 × 0.5 × 0.5 = 1 hit/h
  //   utility = 1 × 200 / 1,000,000 = 0.0002
  store::Activation a = state(now, 3, 200, 1000000);
  a.created_at_ms = now - 2 * kHour;
  a.last_used_ms = now - kHour;
  BOOST_TEST(activation_utility(a, now, kHour) == 0.0002, tt::tolerance(1e-12));

  // Made now, never used, prefill time unknown, 1000 tokens, size 0:
  //   age  = max(0, 1 h) = 3,600,000 ms (a new state is rated over one half-life)
  //   rate = (0 + 1) × 3,600,000 / 3,600,000 × 2^0 = 1 hit/h
  //   saved = 1000 tokens × 0.5 ms = 500 ms; size taken as 1 byte
  //   utility = 1 × 500 / 1 = 500
  store::Activation b = state(now, 0, 0, 0);
  b.tokens.assign(1000, 7);
  BOOST_TEST(activation_utility(b, now, kHour) == 500.0, tt::tolerance(1e-12));

  // Made 10 h ago, "last used" 5 s in the future (the clock stepped back),
  // 9 uses, a 360 ms prefill, 3600 bytes:
  //   age  = max(10 h, 1 h) = 36,000,000 ms
  //   idle = max(−5000, 0) = 0, so no decay
  //   rate = (9 + 1) × 3,600,000 / 36,000,000 × 2^0 = 1 hit/h
  //   utility = 1 × 360 / 3600 = 0.1
  store::Activation c = state(now, 9, 360, 3600);
  c.created_at_ms = now - 10 * kHour;
  c.last_used_ms = now + 5000;
  BOOST_TEST(activation_utility(c, now, kHour) == 0.1, tt::tolerance(1e-12));

  // Unused for 3 half-lives of 2 h (6 h), made 8 h ago, 1 use, a 1000 ms
  // prefill, 500 bytes:
  //   age  = max(8 h, 2 h) = 28,800,000 ms
  //   rate = (1 + 1) × 3,600,000 / 28,800,000 × 2^(−3) = 0.25 × 0.125 = 0.03125 hit/h
  //   utility = 0.03125 × 1000 / 500 = 0.0625
  store::Activation d = state(now, 1, 1000, 500);
  d.created_at_ms = now - 8 * kHour;
  d.last_used_ms = now - 6 * kHour;
  BOOST_TEST(activation_utility(d, now, 2 * kHour) == 0.0625, tt::tolerance(1e-12));

  // A half-life of 0 is taken as 1 ms: finite, no division by zero.
  //   age = max(0, 1) = 1 ms; rate = 1 × 3,600,000 / 1 × 2^0; utility = 3.6e6 × 1 / 1
  store::Activation e = state(now, 0, 1, 1);
  BOOST_TEST(activation_utility(e, now, 0) == 3600000.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(a_state_used_often_beats_one_used_once) {
  const std::int64_t now = 100 * kHour;
  store::Activation often = state(now, 20, 300, 1 << 20), once = state(now, 1, 300, 1 << 20);
  often.created_at_ms = once.created_at_ms = now - 5 * kHour;
  BOOST_TEST(activation_utility(often, now, kHour) > activation_utility(once, now, kHour));
}

BOOST_AUTO_TEST_CASE(a_recently_used_state_beats_a_stale_one) {
  const std::int64_t now = 100 * kHour;
  store::Activation recent = state(now, 5, 300, 1 << 20), stale = state(now, 5, 300, 1 << 20);
  recent.created_at_ms = stale.created_at_ms = now - 24 * kHour;
  stale.last_used_ms = now - 6 * kHour;
  BOOST_TEST(activation_utility(recent, now, kHour) > activation_utility(stale, now, kHour));
}

BOOST_AUTO_TEST_CASE(an_expensive_small_state_beats_a_cheap_big_one) {
  const std::int64_t now = 100 * kHour;
  store::Activation cheap_big = state(now, 3, 100, 100u << 20);
  store::Activation expensive_small = state(now, 3, 1000, 1u << 20);
  BOOST_TEST(activation_utility(expensive_small, now, kHour) >
             activation_utility(cheap_big, now, kHour));
}

namespace {

const store::ActivationKey kKey{std::string(64, 'a'), "", "f16", "llama.cpp x; layers 2", 1};
constexpr store::TenantId kTenant = 1000;

// A store, its writer, a blob store and a tier over them, in a temporary
// folder, with one cube of kTenant.
struct Tier {
  explicit Tier(ActivationEviction eviction, std::uint32_t shards = 1) {
    config.chunk_tokens = 4;
    config.eviction = eviction;
    config.eviction_half_life_s = 3600;
    db = memos::testing::open_store(dir.path(), shards);
    BOOST_REQUIRE(
        memos::testing::write(
            *db,
            [&](store::WriteTxn& t) { return t.create_cube(kTenant, "c", "hash-v1", 8, 1, &cube); },
            db->shard_of(kTenant))
            .ok());
    store::Status s;
    blobs = store::BlobStore::open(dir.path() + "/blobs", &s);
    BOOST_REQUIRE_MESSAGE(blobs, s.message);
    commits = std::make_unique<store::CommitQueue>(*db, [](const store::Status&) {});
    tier = std::make_unique<ActivationTier>(*db, *commits, *blobs, config);
    tier->set_eviction_observer(
        [this](const store::Activation& a, double utility) { evicted.emplace_back(a, utility); });
    executor.model = "tiny";
    executor.key = kKey;
  }
  ~Tier() { commits->stop(); }

  // Stores a state of `kib` KiB over 8 tokens starting at `first`, within
  // a 1 MiB budget.
  store::Activation put(std::int32_t first, std::size_t kib, double prefill_ms) {
    std::vector<std::int32_t> tokens;
    for (std::int32_t i = 0; i < 8; ++i) tokens.push_back(first + i);
    std::string bytes(kib << 10, static_cast<char>(first));
    store::Activation out;
    memos::kernel::Status s =
        tier->store(kTenant, cube.id, executor, tokens, {}, bytes, prefill_ms, &out, 1);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return out;
  }

  // The tenant's items, least recently used first.
  std::vector<std::uint64_t> ids() {
    std::optional<store::ReadTxn> txn;
    BOOST_REQUIRE(db->begin_read(&txn).ok());
    std::vector<std::pair<store::CubeId, std::uint64_t>> all;
    BOOST_REQUIRE(txn->least_recent_activations(kTenant, SIZE_MAX, &all).ok());
    std::vector<std::uint64_t> out;
    for (const auto& [c, id] : all) out.push_back(id);
    return out;
  }

  TempDir dir;
  ActivationConfig config;
  std::unique_ptr<store::Store> db;
  store::Cube cube;
  std::unique_ptr<store::BlobStore> blobs;
  std::unique_ptr<store::CommitQueue> commits;
  std::unique_ptr<ActivationTier> tier;
  ExecutorInfo executor;
  std::vector<std::pair<store::Activation, double>> evicted;
};

// Three states in a 1 MiB budget (800 KiB), used so that the least useful
// is not the least recently used:
//   a: 200 KiB, an 800 ms prefill, never used: 1 × 800 / 200 KiB   ≈ 3.9e-3
//   b: 400 KiB, a 50 ms prefill, never used:   1 × 50 / 400 KiB    ≈ 1.2e-4
//   c: 200 KiB, a 100 ms prefill, used twice:  3 × 100 / 200 KiB   ≈ 1.5e-3
// (rates in hits per hour over one half-life, all made moments ago), so b is
// the least useful by a factor of 10 and a the least recently used. Then d
// (300 KiB) needs room: 1100 KiB > 1024, and any one eviction makes it fit.
struct Stored {
  store::Activation a, b, c;
};

Stored fill(Tier& t) {
  Stored s;
  s.a = t.put(100, 200, 800);
  s.b = t.put(200, 400, 50);
  s.c = t.put(300, 200, 100);
  t.tier->touch(s.c).wait();
  t.tier->touch(s.c).wait();
  BOOST_REQUIRE((t.ids() == std::vector<std::uint64_t>{s.a.id, s.b.id, s.c.id}));
  BOOST_REQUIRE(t.evicted.empty());
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(utility_mode_evicts_the_least_useful_state) {
  Tier t(ActivationEviction::utility);
  Stored s = fill(t);
  store::Activation d = t.put(400, 300, 100);
  BOOST_TEST((t.ids() == std::vector<std::uint64_t>{s.a.id, s.c.id, d.id}));
  BOOST_REQUIRE(t.evicted.size() == 1u);
  BOOST_TEST(t.evicted[0].first.id == s.b.id);  // not a, the least recently used
  BOOST_TEST(t.evicted[0].first.size == 400u << 10);
  BOOST_TEST(t.evicted[0].second > 0);
  BOOST_TEST(std::isfinite(t.evicted[0].second));

  // Storing d again (an identical item) keeps it and evicts nothing.
  store::Activation again = t.put(400, 300, 100);
  BOOST_TEST(again.id == d.id);
  BOOST_TEST(t.evicted.size() == 1u);
}

BOOST_AUTO_TEST_CASE(lru_mode_evicts_the_least_recently_used_state) {
  Tier t(ActivationEviction::lru);
  Stored s = fill(t);
  store::Activation d = t.put(400, 300, 100);
  BOOST_TEST((t.ids() == std::vector<std::uint64_t>{s.b.id, s.c.id, d.id}));
  BOOST_REQUIRE(t.evicted.size() == 1u);
  BOOST_TEST(t.evicted[0].first.id == s.a.id);
  BOOST_TEST(std::isnan(t.evicted[0].second));
}

// A grantee's state in a shared cube of another shard's tenant stays when
// that shard removes the cube, until the grantee's own shard's retention
// drops it (docs/scale-out.md): meanwhile it is no state. A prompt that
// would restore it finds nothing, and storing the same block again stores a
// new state rather than keeping the one in the removed cube.
BOOST_AUTO_TEST_CASE(a_state_whose_cube_is_gone_is_no_state) {
  Tier t(ActivationEviction::lru, 2);
  store::TenantId owner = kTenant + 1;
  while (t.db->shard_of(owner) == t.db->shard_of(kTenant)) ++owner;
  store::Cube shared;
  // Through the writer, which owns the store's write side once it runs.
  auto write = [&](std::function<store::Status(store::WriteTxn&)> apply) {
    return t.commits->submit_and_wait(
        {.apply = std::move(apply), .done = {}, .shard = t.db->shard_of(owner)});
  };
  BOOST_REQUIRE(write([&](store::WriteTxn& txn) {
                  return txn.create_cube(owner, "shared", "hash-v1", 8, 1, &shared);
                }).ok());
  const std::vector<std::int32_t> block{1, 2, 3, 4, 5, 6, 7, 8};
  auto store_in = [&](store::CubeId cube) {
    store::Activation out;
    memos::kernel::Status s =
        t.tier->store(kTenant, cube, t.executor, block, {}, std::string(2048, 's'), 5, &out, 1);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return out;
  };
  const store::Activation in_shared = store_in(shared.id);
  std::optional<memos::kernel::FoundState> found;
  BOOST_REQUIRE(t.tier->find(kTenant, kKey, block, &found).ok());
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->activation.id == in_shared.id);

  BOOST_REQUIRE(write([&](store::WriteTxn& txn) {
                  store::Cube gone;
                  return txn.remove_cube(owner, "shared", true, &gone);
                }).ok());
  BOOST_TEST((t.ids() == std::vector<std::uint64_t>{in_shared.id}));  // still stored
  BOOST_REQUIRE(t.tier->find(kTenant, kKey, block, &found).ok());
  BOOST_TEST(!found.has_value());
  const store::Activation again = store_in(t.cube.id);
  BOOST_TEST(again.id != in_shared.id);
  BOOST_TEST(again.cube == t.cube.id);
  BOOST_REQUIRE(t.tier->find(kTenant, kKey, block, &found).ok());
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->activation.id == again.id);
}

// A block's own state is found however many states share its prefix: a
// chat template's preamble makes every state of a tenant share its first
// chunks, and the scan of a prefix's states is capped (64). The crash test
// found a prefill that made a stored state again, with over 64 older ones
// sharing its first chunk.
BOOST_AUTO_TEST_CASE(a_blocks_own_state_is_found_among_many_sharing_its_prefix) {
  Tier t(ActivationEviction::lru);
  auto store_block = [&](std::vector<std::int32_t> tokens, char fill) {
    store::Activation out;
    memos::kernel::Status s = t.tier->store(kTenant, t.cube.id, t.executor, std::move(tokens), {},
                                            std::string(1024, fill), 5, &out, 1);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return out;
  };
  const std::vector<std::int32_t> preamble{1, 2, 3, 4};  // one chunk
  for (std::int32_t i = 0; i < 80; ++i) {
    std::vector<std::int32_t> longer = preamble;
    for (std::int32_t j = 0; j < 8; ++j) longer.push_back(1000 + i * 8 + j);
    store_block(longer, static_cast<char>(i));
  }
  std::vector<std::int32_t> block = preamble;
  block.push_back(7);  // one chunk and one token: its longest prefix is the preamble
  const store::Activation own = store_block(block, 'z');
  std::optional<memos::kernel::FoundState> found;
  BOOST_REQUIRE(t.tier->find(kTenant, kKey, block, &found).ok());
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->activation.id == own.id);
  BOOST_TEST(found->shared == block.size());
  // A prompt that goes on past the block still finds the block's state.
  std::vector<std::int32_t> prompt = block;
  prompt.insert(prompt.end(), {8, 9, 10, 11, 12});
  BOOST_REQUIRE(t.tier->find(kTenant, kKey, prompt, &found).ok());
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->shared >= preamble.size());
}
