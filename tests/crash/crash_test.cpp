// Crash test: kill -9 memosd while writers are mid-flight, restart it, and
// check the durability contract (docs/design.md): every acknowledged write is
// still there, intact and readable, and no write is torn (one whose reply
// never came took effect entirely or not at all). The data folder persists
// across rounds, so each restart also re-verifies every earlier round.
//
//   test_crash [Boost.Test options] -- [--rounds N] [--seed S] [--fresh-every K]
//
// The load mixes adds, updates, removes, cube creations, snapshots and
// archive imports (a writer exports its cube and imports the archive as a
// new cube, which must then hold exactly what the cube held).
//
// Where the build has llama.cpp (MEMOS_MKMODEL), memosd runs the llama.cpp
// executor on a tiny memos-mkmodel model and the load has kv prefills and kv
// removes too. After each restart every acknowledged prefill's activation is
// listed as acknowledged (kv_list) and an acknowledged kv remove stays
// removed; a prefill in flight at the kill is listed whole (one activation
// of exactly its sources) or not at all; for those found applied and a
// sample of the others, prefilling the same memories again finds the
// activation (Activation::prefill_ms 0) rather than computing it, and a chat
// over them restores it from its blob; every state blob on disk matches its
// digest. Without llama.cpp the rest of the load runs alone (the summary
// says "kv_load": false).
//
// With --fresh-every K the data folder is emptied every K rounds (after its
// last verification), so that a long soak (scripts/crash-soak) does not
// spend its time re-reading an ever larger store. The last line printed is
// a JSON summary ("crash summary: {...}").
//
// Half the writes carry an idempotency key; after the restart those that
// were in flight are retried with it, as a client would after a lost
// connection, and must return the first outcome if it was applied.
//
// Everything random (texts, the mix of writes, the moment of the kill) comes
// from the seed, which is printed; only timing is not reproducible.
#define BOOST_TEST_MODULE crash
#include <signal.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <openssl/evp.h>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;
using Rng = std::mt19937_64;

constexpr int kDefaultRounds = 20;
constexpr int kWriters = 4;
// Writes go out in pipelined bursts of 1..kMaxBurst, with a pause of
// 0..kMaxPauseMs between bursts, and the kill waits for a burst in flight.
// The pauses keep the store, which each restart verifies in full, growing
// by a few hundred writes a round rather than thousands.
constexpr int kMaxBurst = 8;
constexpr int kMaxPauseMs = 20;
// A bound on one writer's writes per round, should the machine be much
// faster than expected.
constexpr int kMaxWritesPerRound = 150;
// One burst in this many is followed by an archive import (export, then
// import as a new cube), at most one per writer and round: each import
// copies a whole cube, which every later restart indexes and verifies.
constexpr int kImportOneIn = 25;
// The snapshot every writer's first cube gets at creation: archives carry
// snapshots, so the diff from it lists every live item of an imported cube.
constexpr const char* kEmptyTag = "empty";
constexpr int kMinKillDelayMs = 20;
constexpr int kMaxKillDelayMs = 400;
// How long the kill waits, after its delay, for a write in flight.
constexpr auto kMaxWaitForInFlight = 1s;
constexpr int kMaxPayloadBytes = 2000;
// A bound on one start (the index rebuild included), far above what it
// takes: the test never fails on timing (a loaded machine, a sanitizer
// build, a soak at nice 19); the slowest start is reported instead.
constexpr auto kStartTimeout = 300s;
// Items whose reads are pipelined at once while verifying (three reads each,
// well under the daemon's max_inflight_per_connection).
constexpr std::size_t kVerifyBatch = 128;
constexpr std::size_t kSearchSample = 16;
constexpr std::size_t kProblemsShown = 20;

// The kv load, where the build has llama.cpp to run the executor with.
#ifdef MEMOS_MKMODEL
constexpr bool kKvLoad = true;
#else
constexpr bool kKvLoad = false;
#endif
// A prefilled block is 1..kMaxKvSources of a writer's items holding at most
// kMaxKvBlockBytes of text, so that it fits the model's context
// (kKvContextTokens) whatever the tokenizer makes of the words, and a
// prefill takes milliseconds, not seconds, on the tiny model.
constexpr int kMaxKvSources = 3;
constexpr std::size_t kMaxKvBlockBytes = 1200;
constexpr int kKvContextTokens = 2048;
constexpr int kKvChunkTokens = 16;
// After each restart, besides every prefill that was in flight at the kill:
// acknowledged activations prefilled again (each must be found) and chatted
// over (each must be restored from its blob).
constexpr std::size_t kKvPrefillSample = 8;
constexpr std::size_t kKvRestoreSample = 2;

// ---- options and randomness --------------------------------------------------

struct Options {
  int rounds = kDefaultRounds;
  std::uint64_t seed = 0;
  int fresh_every = 0;  // empty the data folder every this many rounds; 0: never
};

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    BOOST_FAIL("bad value for " << flag << ": '" << text << "'");
  return value;
}

// Reads the arguments after `--` (Boost.Test leaves them to the test).
Options parse_options() {
  auto& suite = boost::unit_test::framework::master_test_suite();
  Options options;
  options.seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  for (int i = 1; i < suite.argc; ++i) {
    std::string_view flag = suite.argv[i];
    if ((flag != "--rounds" && flag != "--seed" && flag != "--fresh-every") || i + 1 >= suite.argc)
      BOOST_FAIL(
          "usage: test_crash [Boost.Test options] -- [--rounds N] [--seed S] [--fresh-every K]");
    std::string_view value = suite.argv[++i];
    if (flag == "--rounds") options.rounds = parse_number<int>(flag, value);
    if (flag == "--fresh-every") options.fresh_every = parse_number<int>(flag, value);
    if (flag == "--seed") options.seed = parse_number<std::uint64_t>(flag, value);
  }
  BOOST_REQUIRE(options.rounds >= 1);
  BOOST_REQUIRE(options.fresh_every >= 0);
  return options;
}

// An independent stream per (round, purpose), so that replaying a seed gives
// each writer the same choices whatever the others do.
Rng make_rng(std::uint64_t seed, std::uint64_t round, std::uint64_t stream) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(round), static_cast<std::uint32_t>(stream)};
  return Rng(seq);
}

int uniform(Rng& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// A random index into a non-empty container of `size` elements.
std::size_t pick_index(Rng& rng, std::size_t size) {
  return std::uniform_int_distribution<std::size_t>(0, size - 1)(rng);
}

// Up to about `max_bytes` of words made of Latin and multi-byte UTF-8
// syllables: valid text (it ends on a whole word, never inside a character)
// that the embedder splits into many distinct words, so each item's vector
// is its own.
std::string random_words(Rng& rng, int max_bytes) {
  static const char* const kSyllables[] = {"ka", "lo", "mi", "ren", "tu", "vos", "zé", "ñu",
                                           "ßa", "ør", "жи", "日",  "本", "λα",  "qi", "pax"};
  std::size_t target = static_cast<std::size_t>(uniform(rng, 0, max_bytes));
  std::string out;
  while (out.size() < target) {
    if (!out.empty()) out += ' ';
    for (int n = uniform(rng, 2, 5); n > 0; --n) out += kSyllables[uniform(rng, 0, 15)];
  }
  return out;
}

std::vector<std::string> random_tags(Rng& rng) {
  std::vector<std::string> all = {"alpha", "beta", "gamma", "delta", "epsilon"};
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<std::size_t>(uniform(rng, 0, 3)));
  return all;
}

// ---- what was acknowledged ---------------------------------------------------

// One version of an item as a write left it.
struct Content {
  std::string text;
  std::vector<std::string> tags;
  std::vector<memos::MetaEntry> meta;
  bool deleted = false;
};

// Why `got` is not version `version` of item `id` holding `want`; "" if it is.
// A tombstone is checked only as a tombstone: what else it carries is not
// part of the contract.
std::string difference(const memos::Item& got, std::uint64_t id, std::uint32_t version,
                       const Content& want) {
  std::string where = memos::format_id(id) + " v" + std::to_string(version) + ": ";
  if (got.id != id) return where + "read item " + memos::format_id(got.id);
  if (got.version != version) return where + "read version " + std::to_string(got.version);
  if (got.deleted != want.deleted) return where + (want.deleted ? "not a tombstone" : "tombstone");
  if (want.deleted) return "";
  if (got.text != want.text) return where + "text differs (" + got.text.substr(0, 60) + "...)";
  if (got.tags != want.tags) return where + "tags differ";
  if (got.meta != want.meta) return where + "metadata differs";
  return "";
}

// A write whose reply never came: memosd was killed first, so it may or may
// not have been applied.
struct PendingWrite {
  Content content;  // what it leaves if applied
  // As sent, for a retry: its idempotency key ("" if none) and, for an
  // update, the change (empty for a remove).
  std::string key;
  std::optional<memos::ItemChange> update;
};

struct ItemRecord {
  std::string cube;
  int writer = 0;
  std::vector<Content> versions;        // versions[i] is version i + 1; all known
  std::optional<PendingWrite> pending;  // an update or remove in flight at the kill
  // In a prefilled block: never updated or removed again, so that the block
  // (made of its items' texts) stays the same and can be prefilled again.
  bool kv_source = false;
  std::uint32_t head() const { return static_cast<std::uint32_t>(versions.size()); }
  bool live() const { return !versions.back().deleted; }
};

struct PendingAdd {
  std::string cube;
  int writer = 0;
  Content content;
  std::string key;  // its idempotency key, "" if none
};

// A snapshot as its acknowledgement described it.
struct SnapshotRecord {
  std::string tag;
  std::uint64_t cube_version = 0;
  std::uint64_t live_items = 0;
  bool operator==(const SnapshotRecord&) const = default;
};

// An activation item (a kv prefill's state) as its acknowledgement described it.
struct KvRecord {
  std::string cube;
  int writer = 0;
  std::vector<std::uint64_t> sources;  // in block order (by id)
  std::uint32_t tokens = 0;
  std::uint64_t bytes = 0;
  bool removed = false;  // by an acknowledged kv_remove: must stay gone
  // Found after a restart that applied it while in flight at the kill:
  // checked closely (prefilled again, restored) at that restart.
  bool landed_now = false;
};

// A kv prefill whose reply never came. Its sources are items no other
// prefill used, so an activation with exactly these sources is this one.
struct PendingPrefill {
  std::string cube;
  int writer = 0;
  std::vector<std::uint64_t> sources;  // by id, as the block orders them
};

// An imported cube's live items: text (unique) -> head version.
using CubeContents = std::map<std::string, std::uint32_t>;

// Counts for the round's report line.
struct RoundCounts {
  int acknowledged = 0;
  int unacknowledged = 0;     // in flight at the kill
  int landed = 0;             // of those, found applied after the restart
  int retried = 0;            // of those, retried with their idempotency key
  int snapshots = 0;          // acknowledged snapshots (counted in acknowledged too)
  int imports = 0;            // acknowledged imports (likewise)
  int kv_prefills = 0;        // acknowledged kv prefills (likewise)
  int kv_removes = 0;         // acknowledged kv removes (likewise)
  int kv_unacknowledged = 0;  // kv prefills and removes in flight at the kill
  int kv_landed = 0;          // of those, found applied after the restart
  int kv_restored = 0;        // activations a chat restored after the restart
};

// Everything the test knows about the store. Writers record into it
// concurrently (under `mutex`); the main thread reads it with the writers
// joined. After settle_pending() nothing is pending: every version of every
// item the test created is known exactly.
struct Ledger {
  std::mutex mutex;
  std::map<std::string, int> cubes;  // name -> owning writer
  std::vector<std::pair<std::string, int>> pending_cubes;
  std::map<std::uint64_t, ItemRecord> items;
  std::vector<PendingAdd> pending_adds;
  std::map<std::string, std::vector<SnapshotRecord>> snapshots;        // cube -> oldest first
  std::vector<std::pair<std::string, std::string>> pending_snapshots;  // cube, tag
  std::map<std::string, CubeContents> imported;  // cube -> what the archive held
  std::map<std::string, CubeContents> pending_imports;
  std::map<std::uint64_t, KvRecord> activations;  // removed ones too (they must stay gone)
  std::vector<PendingPrefill> pending_prefills;
  std::vector<std::uint64_t> pending_kv_removes;
  std::vector<std::string> problems;  // unexpected replies seen by writers
  RoundCounts counts;
};

// The live items of `cube` as the ledger knows them. The caller holds the
// ledger's lock (or the writers are joined).
CubeContents contents_of(const Ledger& ledger, const std::string& cube) {
  CubeContents contents;
  for (const auto& [id, record] : ledger.items)
    if (record.cube == cube && record.live()) contents[record.versions.back().text] = record.head();
  return contents;
}

// ---- the writers -------------------------------------------------------------

// One client writing its own cubes and items: only the writer that created
// an item updates or removes it, and never with another write of it in
// flight, so each item's versions follow exactly from the replies.
class Writer {
 public:
  Writer(int index, int round, Rng rng, Ledger& ledger, std::unique_ptr<memos::Client> client)
      : index_(index), round_(round), rng_(rng), ledger_(ledger), client_(std::move(client)) {
    std::lock_guard lock(ledger_.mutex);
    for (const auto& [name, owner] : ledger_.cubes)
      if (owner == index_) cubes_.push_back(name);
    for (const auto& [id, item] : ledger_.items)
      if (item.writer == index_ && item.live() && !item.kv_source)
        idle_.emplace_back(item.cube, id);
    for (const auto& [id, activation] : ledger_.activations)
      if (activation.writer == index_ && !activation.removed)
        activations_.emplace_back(activation.cube, id);
  }

  // Requests sent whose replies have not arrived. Thread-safe.
  std::size_t in_flight() const { return client_->in_flight(); }

  // Writes in pipelined bursts until the connection is lost (memosd was
  // killed) or the round's bound is reached.
  void run() {
    while (!lost_ && writes_ < kMaxWritesPerRound) {
      std::vector<Op> burst;
      for (int n = uniform(rng_, 1, kMaxBurst); n > 0; --n) burst.push_back(submit_next());
      for (auto& op : burst) complete(op);
      if (!lost_ && !imported_ && uniform(rng_, 1, kImportOneIn) == 1) import_own_cube();
      std::this_thread::sleep_for(std::chrono::milliseconds(uniform(rng_, 0, kMaxPauseMs)));
    }
  }

 private:
  enum class Kind { add, update, remove, cube_create, snapshot, kv_prefill, kv_remove };
  struct Op {
    explicit Op(Kind k, std::string c = {}) : kind(k), cube(std::move(c)) {}
    Kind kind;
    std::string cube;
    std::uint64_t item = 0;
    Content content;                          // what the write leaves (add, update, remove)
    std::string key;                          // its idempotency key, "" if none
    std::optional<memos::ItemChange> change;  // an update as sent
    std::future<memos::Result<memos::Item>> item_reply;
    std::future<memos::Result<memos::Cube>> cube_reply;
    std::string tag;  // a snapshot's
    std::future<memos::Result<memos::Snapshot>> snapshot_reply;
    std::vector<std::uint64_t> sources;  // a kv prefill's, by id
    std::uint64_t activation = 0;        // a kv remove's
    std::future<memos::Result<memos::Activation>> kv_reply;
  };

  std::string label() {
    return "round " + std::to_string(round_) + " writer " + std::to_string(index_) + " write " +
           std::to_string(writes_);
  }

  Content new_content() {
    Content c;
    c.text = "crash test " + label() + ": " + random_words(rng_, kMaxPayloadBytes);
    c.tags = random_tags(rng_);
    c.meta = {{"writer", std::to_string(index_)}, {"round", std::to_string(round_)}};
    if (uniform(rng_, 0, 1)) c.meta.push_back({"note", random_words(rng_, 40)});
    return c;
  }

  // Half the writes carry an idempotency key, so that the restart can retry
  // them as a client would after a lost connection.
  std::string maybe_key() {
    if (uniform(rng_, 0, 1) == 0) return "";
    return "crash-r" + std::to_string(round_) + "-w" + std::to_string(index_) + "-" +
           std::to_string(writes_);
  }

  // Takes a random live item with no write in flight off the idle list.
  std::pair<std::string, std::uint64_t> take_idle_item() {
    std::swap(idle_[pick_index(rng_, idle_.size())], idle_.back());
    auto picked = idle_.back();
    idle_.pop_back();
    return picked;
  }

  Op submit_next() {
    ++writes_;
    int dice = uniform(rng_, 0, 99);
    if (dice < 1) return submit_cube_create();
    if (dice < 3) return submit_snapshot();
    if (kKvLoad && dice < 9) {
      std::string cube;
      if (auto ids = take_kv_block(&cube); !ids.empty())
        return submit_kv_prefill(std::move(cube), std::move(ids));
    }
    if (kKvLoad && dice == 9 && !activations_.empty()) return submit_kv_remove();
    if (dice >= 63 && !idle_.empty()) return dice < 83 ? submit_update() : submit_remove();
    return submit_add();
  }

  Op submit_add() {
    Op op{Kind::add, cubes_[pick_index(rng_, cubes_.size())]};
    op.content = new_content();
    op.key = maybe_key();
    memos::NewItem item{op.content.text, op.content.tags, op.content.meta};
    item.idempotency_key = op.key;
    op.item_reply = client_->add_async(op.cube, std::move(item));
    return op;
  }

  Op submit_update() {
    Op op{Kind::update};
    std::tie(op.cube, op.item) = take_idle_item();
    Content fresh = new_content();
    memos::ItemChange change{fresh.text, {}, {}};
    op.content = last_content(op.item);
    op.content.text = fresh.text;
    // Tags and metadata are replaced only when given: exercise both.
    if (uniform(rng_, 0, 1)) change.tags = op.content.tags = fresh.tags;
    if (uniform(rng_, 0, 1)) change.meta = op.content.meta = fresh.meta;
    change.idempotency_key = op.key = maybe_key();
    op.change = change;
    op.item_reply = client_->update_async(op.cube, op.item, std::move(change));
    return op;
  }

  Op submit_remove() {
    Op op{Kind::remove};
    std::tie(op.cube, op.item) = take_idle_item();
    op.content = last_content(op.item);
    op.content.deleted = true;
    op.key = maybe_key();
    op.item_reply = client_->remove_async(op.cube, op.item, op.key);
    return op;
  }

  Op submit_cube_create() {
    Op op{Kind::cube_create, "crash-w" + std::to_string(index_) + "-r" + std::to_string(round_) +
                                 "-" + std::to_string(writes_)};
    op.cube_reply = client_->cube_create_async(op.cube);
    return op;
  }

  Op submit_snapshot() {
    Op op{Kind::snapshot, cubes_[pick_index(rng_, cubes_.size())]};
    op.tag = "s-r" + std::to_string(round_) + "-w" + std::to_string(index_) + "-" +
             std::to_string(writes_);
    op.snapshot_reply = client_->snapshot_create_async(op.cube, op.tag);
    return op;
  }

  // Takes up to kMaxKvSources idle items of one cube whose texts fit in
  // kMaxKvBlockBytes, for a prefill, off the idle list for good
  // (kv_source). Returns them by id, as the block orders them; none if no
  // idle item is short enough.
  std::vector<std::uint64_t> take_kv_block(std::string* cube) {
    std::lock_guard lock(ledger_.mutex);
    auto text_bytes = [&](std::uint64_t id) {
      return ledger_.items.at(id).versions.back().text.size();
    };
    std::size_t budget = kMaxKvBlockBytes;
    std::vector<std::size_t> fitting;
    for (std::size_t i = 0; i < idle_.size(); ++i)
      if (text_bytes(idle_[i].second) <= budget) fitting.push_back(i);
    if (fitting.empty()) return {};
    std::size_t first = fitting[pick_index(rng_, fitting.size())];
    *cube = idle_[first].first;
    auto wanted = static_cast<std::size_t>(uniform(rng_, 1, kMaxKvSources));
    std::vector<std::uint64_t> ids;
    for (std::size_t n = 0; n < idle_.size() && ids.size() < wanted; ++n) {
      const auto& [item_cube, id] = idle_[(first + n) % idle_.size()];
      if (item_cube != *cube || text_bytes(id) > budget) continue;
      budget -= text_bytes(id);
      ids.push_back(id);
    }
    std::erase_if(idle_, [&](const auto& entry) {
      return std::find(ids.begin(), ids.end(), entry.second) != ids.end();
    });
    for (std::uint64_t id : ids) ledger_.items.at(id).kv_source = true;
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  Op submit_kv_prefill(std::string cube, std::vector<std::uint64_t> ids) {
    Op op{Kind::kv_prefill, std::move(cube)};
    op.sources = ids;
    op.kv_reply = client_->kv_prefill_async(op.cube, std::move(ids));
    return op;
  }

  // Removes one of the writer's activations (none has a write in flight).
  Op submit_kv_remove() {
    Op op{Kind::kv_remove};
    std::swap(activations_[pick_index(rng_, activations_.size())], activations_.back());
    std::tie(op.cube, op.activation) = activations_.back();
    activations_.pop_back();
    op.kv_reply = client_->kv_remove_async(op.cube, op.activation);
    return op;
  }

  // Exports the writer's first cube (nothing of this writer is in flight, so
  // the ledger knows it exactly) and imports the archive as a new cube.
  void import_own_cube() {
    imported_ = true;
    std::string source = "crash-w" + std::to_string(index_);
    std::string name = "crash-imp-w" + std::to_string(index_) + "-r" + std::to_string(round_) +
                       "-" + std::to_string(writes_);
    CubeContents expected;
    {
      std::lock_guard lock(ledger_.mutex);
      expected = contents_of(ledger_, source);
    }
    std::string archive;
    auto exported = client_->export_cube(source, [&](std::string_view chunk) {
      archive.append(chunk);
      return true;
    });
    if (!exported.ok()) {
      std::lock_guard lock(ledger_.mutex);
      if (exported.error().code == memos::ErrorCode::connection_lost) {
        lost_ = true;
      } else {
        ledger_.problems.push_back("export " + source + ": " + exported.error().message);
      }
      return;
    }
    std::size_t offset = 0;
    auto reply = client_->import_cube(
        [&](char* out, std::size_t n) {
          n = std::min(n, archive.size() - offset);
          std::copy_n(archive.data() + offset, n, out);
          offset += n;
          return n;
        },
        name);
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) {
      if (reply.error().code != memos::ErrorCode::connection_lost) {
        ledger_.problems.push_back("import of " + source + " as " + name +
                                   " refused: " + memos::to_string(reply.error().code) + " " +
                                   reply.error().message);
        return;
      }
      lost_ = true;
      ++ledger_.counts.unacknowledged;
      ledger_.pending_imports[name] = std::move(expected);
      return;
    }
    ++ledger_.counts.acknowledged;
    ++ledger_.counts.imports;
    if (reply->name != name || reply->live_items != expected.size())
      ledger_.problems.push_back("import replied " + reply->name + " with " +
                                 std::to_string(reply->live_items) + " live items, expected " +
                                 name + " with " + std::to_string(expected.size()));
    ledger_.imported[name] = std::move(expected);
  }

  Content last_content(std::uint64_t id) {
    std::lock_guard lock(ledger_.mutex);
    return ledger_.items.at(id).versions.back();
  }

  void complete(Op& op) {
    if (op.kind == Kind::cube_create) {
      complete_cube_create(op);
    } else if (op.kind == Kind::snapshot) {
      complete_snapshot(op);
    } else if (op.kind == Kind::kv_prefill) {
      complete_kv_prefill(op);
    } else if (op.kind == Kind::kv_remove) {
      complete_kv_remove(op);
    } else {
      complete_item_write(op);
    }
  }

  // Records an error reply: lost connections leave the write pending (it may
  // or may not have been applied); anything else is a problem, since every
  // write here is valid. The caller holds the ledger's lock.
  void record_failure(Op& op, const memos::Error& error, std::lock_guard<std::mutex>&) {
    if (error.code != memos::ErrorCode::connection_lost) {
      ledger_.problems.push_back("writer " + std::to_string(index_) + ": write to " + op.cube +
                                 " refused: " + memos::to_string(error.code) + " " + error.message);
      return;
    }
    lost_ = true;
    ++ledger_.counts.unacknowledged;
    if (op.kind == Kind::cube_create) {
      ledger_.pending_cubes.emplace_back(op.cube, index_);
    } else if (op.kind == Kind::snapshot) {
      ledger_.pending_snapshots.emplace_back(op.cube, op.tag);
    } else if (op.kind == Kind::kv_prefill) {
      ++ledger_.counts.kv_unacknowledged;
      ledger_.pending_prefills.push_back({op.cube, index_, std::move(op.sources)});
    } else if (op.kind == Kind::kv_remove) {
      ++ledger_.counts.kv_unacknowledged;
      ledger_.pending_kv_removes.push_back(op.activation);
    } else if (op.kind == Kind::add) {
      ledger_.pending_adds.push_back({op.cube, index_, std::move(op.content), op.key});
    } else {
      ledger_.items.at(op.item).pending =
          PendingWrite{std::move(op.content), op.key, std::move(op.change)};
    }
  }

  void complete_cube_create(Op& op) {
    auto reply = op.cube_reply.get();
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) return record_failure(op, reply.error(), lock);
    ++ledger_.counts.acknowledged;
    if (reply->name != op.cube) ledger_.problems.push_back("cube_create replied " + reply->name);
    ledger_.cubes[op.cube] = index_;
    cubes_.push_back(op.cube);
  }

  void complete_snapshot(Op& op) {
    auto reply = op.snapshot_reply.get();
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) return record_failure(op, reply.error(), lock);
    ++ledger_.counts.acknowledged;
    ++ledger_.counts.snapshots;
    if (reply->tag != op.tag)
      ledger_.problems.push_back("snapshot_create " + op.tag + " replied " + reply->tag);
    ledger_.snapshots[op.cube].push_back({op.tag, reply->cube_version, reply->live_items});
  }

  // The block's items were never prefilled before: its state is new, made
  // now (prefill_ms > 0), and covers exactly them.
  void complete_kv_prefill(Op& op) {
    auto reply = op.kv_reply.get();
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) return record_failure(op, reply.error(), lock);
    ++ledger_.counts.acknowledged;
    ++ledger_.counts.kv_prefills;
    std::string what = "kv_prefill of " + std::to_string(op.sources.size()) + " items in " +
                       op.cube + " replied activation " + memos::format_id(reply->id);
    if (reply->sources != op.sources) ledger_.problems.push_back(what + " of other sources");
    if (reply->prefill_ms <= 0 || reply->tokens == 0 || reply->bytes == 0)
      ledger_.problems.push_back(what + " with prefill_ms " + std::to_string(reply->prefill_ms) +
                                 ", " + std::to_string(reply->tokens) + " tokens, " +
                                 std::to_string(reply->bytes) + " bytes");
    KvRecord record{op.cube, index_, std::move(op.sources), reply->tokens, reply->bytes};
    if (!ledger_.activations.emplace(reply->id, std::move(record)).second)
      return ledger_.problems.push_back(what + ", an id already known");
    activations_.emplace_back(op.cube, reply->id);
  }

  void complete_kv_remove(Op& op) {
    auto reply = op.kv_reply.get();
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) return record_failure(op, reply.error(), lock);
    ++ledger_.counts.acknowledged;
    ++ledger_.counts.kv_removes;
    if (reply->id != op.activation)
      ledger_.problems.push_back("kv_remove of " + memos::format_id(op.activation) + " replied " +
                                 memos::format_id(reply->id));
    ledger_.activations.at(op.activation).removed = true;
  }

  void complete_item_write(Op& op) {
    auto reply = op.item_reply.get();
    std::lock_guard lock(ledger_.mutex);
    if (!reply.ok()) return record_failure(op, reply.error(), lock);
    ++ledger_.counts.acknowledged;
    if (op.kind == Kind::add) {
      op.item = reply->id;
      if (!ledger_.items.emplace(op.item, ItemRecord{op.cube, index_, {}, {}}).second)
        ledger_.problems.push_back("add returned an existing id " + memos::format_id(op.item));
    }
    ItemRecord& record = ledger_.items.at(op.item);
    std::uint32_t expected_version = record.head() + 1;
    if (auto diff = difference(*reply, op.item, expected_version, op.content); !diff.empty())
      ledger_.problems.push_back("reply to a write in " + op.cube + ": " + diff);
    // What was acknowledged is what was sent; a reply that differs is
    // reported above and the write is recorded as sent.
    record.versions.push_back(std::move(op.content));
    if (record.live()) idle_.emplace_back(op.cube, op.item);
  }

  int index_, round_;
  Rng rng_;
  Ledger& ledger_;
  std::unique_ptr<memos::Client> client_;
  std::vector<std::string> cubes_;                                  // acknowledged cubes
  std::vector<std::pair<std::string, std::uint64_t>> idle_;         // live, nothing in flight
  std::vector<std::pair<std::string, std::uint64_t>> activations_;  // live, nothing in flight
  int writes_ = 0;
  bool lost_ = false;
  bool imported_ = false;  // this round
};

// ---- after the restart: settle what was in flight, then verify everything ----

using Problems = std::vector<std::string>;

// Keyed writes that were in flight at the kill, with what the restart found
// of them. They are retried only once everything has been observed, so that
// the checks of the start itself see the store as the kill left it.
struct Retries {
  struct ItemWrite {
    std::uint64_t id;
    PendingWrite write;
    bool landed;
  };
  struct Add {
    PendingAdd add;
    std::uint64_t landed_id;  // 0: it was not committed
  };
  std::vector<ItemWrite> item_writes;
  std::vector<Add> adds;
};

// A cube_create in flight at the kill: the cube exists now or it does not.
void settle_cubes(memos::Client& client, Ledger& ledger, Problems& problems) {
  for (const auto& [name, writer] : ledger.pending_cubes) {
    auto shown = client.cube_show(name);
    if (shown.ok()) {
      ledger.cubes[name] = writer;
      ++ledger.counts.landed;
    } else if (shown.error().code != memos::ErrorCode::not_found) {
      problems.push_back("cube_show " + name + ": " + shown.error().message);
    }
  }
  ledger.pending_cubes.clear();
}

// An update or remove in flight at the kill: the item's head is either the
// last acknowledged version or exactly the pending write, never anything else.
void settle_item_writes(memos::Client& client, Ledger& ledger, Retries& retries,
                        Problems& problems) {
  for (auto& [id, record] : ledger.items) {
    if (!record.pending) continue;
    PendingWrite pending = std::move(*record.pending);
    record.pending.reset();
    auto history = client.history(record.cube, id);
    if (!history.ok()) {
      problems.push_back("history " + memos::format_id(id) + ": " + history.error().message);
      continue;
    }
    bool landed = history->size() == record.head() + 1u;
    if (landed) {
      if (auto diff = difference(history->back(), id, record.head() + 1, pending.content);
          !diff.empty())
        problems.push_back("torn write in flight at the kill: " + diff);
      record.versions.push_back(pending.content);
      ++ledger.counts.landed;
    } else if (history->size() != record.head()) {
      problems.push_back(memos::format_id(id) + " has " + std::to_string(history->size()) +
                         " versions; acknowledged " + std::to_string(record.head()) +
                         " with one more in flight");
      continue;
    }
    if (!pending.key.empty()) retries.item_writes.push_back({id, std::move(pending), landed});
  }
}

// An add in flight at the kill: its text is unique, so an exact-text search
// (the index is rebuilt from LMDB at start; `fresh` waits for whatever is
// still behind the answers) finds it if, and only if, it was committed. The cube's live_items check
// then confirms nothing was missed. Returns whether the search worked; `found` is the item if it is
// there.
bool find_add(memos::Client& client, const PendingAdd& add, std::optional<memos::Item>* found,
              Problems& problems) {
  memos::SearchOptions one;
  one.k = 1;
  one.fresh = true;
  auto hits = client.search(add.cube, add.content.text, one);
  if (!hits.ok()) {
    problems.push_back("search in " + add.cube + ": " + hits.error().message);
    return false;
  }
  if (!hits->empty() && hits->front().item.text == add.content.text) *found = hits->front().item;
  return true;
}

void settle_adds(memos::Client& client, Ledger& ledger, Retries& retries, Problems& problems) {
  for (auto& add : ledger.pending_adds) {
    std::optional<memos::Item> found;
    if (!find_add(client, add, &found, problems)) continue;
    if (found) {
      if (auto diff = difference(*found, found->id, 1, add.content); !diff.empty())
        problems.push_back("torn add in flight at the kill: " + diff);
      if (!ledger.items.emplace(found->id, ItemRecord{add.cube, add.writer, {add.content}, {}})
               .second)
        problems.push_back("an add in flight at the kill reused " + memos::format_id(found->id));
      ++ledger.counts.landed;
    }
    if (!add.key.empty()) retries.adds.push_back({std::move(add), found ? found->id : 0});
  }
  ledger.pending_adds.clear();
}

// A snapshot_create in flight at the kill: the snapshot exists now or it
// does not (verify_snapshots then checks it is the only one unaccounted).
void settle_snapshots(memos::Client& client, Ledger& ledger, Problems& problems) {
  for (const auto& [cube, tag] : ledger.pending_snapshots) {
    auto listed = client.snapshot_list(cube);
    if (!listed.ok()) {
      problems.push_back("snapshot_list " + cube + ": " + listed.error().message);
      continue;
    }
    for (const auto& snapshot : *listed) {
      if (snapshot.tag != tag) continue;
      ledger.snapshots[cube].push_back({tag, snapshot.cube_version, snapshot.live_items});
      ++ledger.counts.landed;
    }
  }
  ledger.pending_snapshots.clear();
}

// The live items of `cube`, read as the diff from its empty snapshot: an
// archive carries its cube's snapshots, so this lists an imported cube whole.
std::optional<CubeContents> read_contents(memos::Client& client, const std::string& cube,
                                          Problems& problems) {
  auto changes = client.snapshot_diff(cube, kEmptyTag);
  if (!changes.ok()) {
    problems.push_back("snapshot_diff " + cube + ": " + changes.error().message);
    return std::nullopt;
  }
  CubeContents contents;
  for (const auto& change : *changes) {
    if (change.kind != memos::SnapshotChange::Kind::added)
      problems.push_back(cube + ": an item live in its empty snapshot");
    contents[change.text] = change.to_version;
  }
  return contents;
}

// Why `got` is not `want`, for a message; "" if it is.
std::string contents_difference(const CubeContents& got, const CubeContents& want) {
  for (const auto& [text, version] : want) {
    auto it = got.find(text);
    if (it == got.end()) return "an item is missing (" + text.substr(0, 40) + "...)";
    if (it->second != version)
      return "an item is at version " + std::to_string(it->second) + ", not " +
             std::to_string(version);
  }
  if (got.size() != want.size())
    return std::to_string(got.size() - want.size()) + " item(s) more than the archive held";
  return "";
}

// An import in flight at the kill: the cube is there whole, or not at all.
void settle_imports(memos::Client& client, Ledger& ledger, Problems& problems) {
  for (auto& [name, expected] : ledger.pending_imports) {
    auto shown = client.cube_show(name);
    if (!shown.ok()) {
      if (shown.error().code != memos::ErrorCode::not_found)
        problems.push_back("cube_show " + name + ": " + shown.error().message);
      continue;
    }
    if (auto got = read_contents(client, name, problems)) {
      if (auto diff = contents_difference(*got, expected); !diff.empty())
        problems.push_back("torn import in flight at the kill, " + name + ": " + diff);
    }
    ledger.imported[name] = std::move(expected);
    ++ledger.counts.landed;
  }
  ledger.pending_imports.clear();
}

// ---- the activation tier after the restart ------------------------------------

using ActivationLists = std::map<std::string, std::vector<memos::Activation>>;  // cube -> kv_list

// kv_list of every cube the test made or imported, pipelined.
ActivationLists list_activations(memos::Client& client, const Ledger& ledger, Problems& problems) {
  std::vector<std::pair<std::string, std::future<memos::Result<std::vector<memos::Activation>>>>>
      replies;
  for (const auto& [name, writer] : ledger.cubes)
    replies.emplace_back(name, client.kv_list_async(name));
  for (const auto& [name, contents] : ledger.imported)
    replies.emplace_back(name, client.kv_list_async(name));
  ActivationLists lists;
  for (auto& [name, reply] : replies) {
    auto listed = reply.get();
    if (!listed.ok()) {
      problems.push_back("kv_list " + name + ": " + listed.error().message);
      continue;
    }
    lists[name] = std::move(*listed);
  }
  return lists;
}

bool lists_activation(const ActivationLists& lists, const std::string& cube, std::uint64_t id) {
  auto it = lists.find(cube);
  return it != lists.end() && std::any_of(it->second.begin(), it->second.end(),
                                          [&](const memos::Activation& a) { return a.id == id; });
}

// kv prefills and removes in flight at the kill. A prefill's block is made
// of items no other prefill used, so an unknown activation with exactly its
// sources is the prefill applied (verify_kv then checks it closely); two
// would be a torn one. A remove took effect or it did not.
void settle_kv(memos::Client& client, Ledger& ledger, Problems& problems) {
  if (ledger.pending_prefills.empty() && ledger.pending_kv_removes.empty()) return;
  ActivationLists lists = list_activations(client, ledger, problems);
  for (const auto& pending : ledger.pending_prefills) {
    int found = 0;
    for (const auto& a : lists[pending.cube]) {
      if (a.sources != pending.sources || ledger.activations.contains(a.id)) continue;
      ++found;
      ledger.activations[a.id] =
          KvRecord{pending.cube, pending.writer, pending.sources, a.tokens, a.bytes, false, true};
      ++ledger.counts.kv_landed;
      ++ledger.counts.landed;
    }
    if (found > 1)
      problems.push_back("torn kv prefill in flight at the kill: " + std::to_string(found) +
                         " activations of its block in " + pending.cube);
  }
  ledger.pending_prefills.clear();
  for (std::uint64_t id : ledger.pending_kv_removes) {
    KvRecord& record = ledger.activations.at(id);
    if (lists_activation(lists, record.cube, id)) continue;
    record.removed = true;
    ++ledger.counts.kv_landed;
    ++ledger.counts.landed;
  }
  ledger.pending_kv_removes.clear();
}

// Finds out, for every write in flight at the kill, whether it was applied,
// and adds those that were to the ledger.
Retries settle_pending(memos::Client& client, Ledger& ledger, Problems& problems) {
  Retries retries;
  settle_cubes(client, ledger, problems);
  settle_item_writes(client, ledger, retries, problems);
  settle_adds(client, ledger, retries, problems);
  settle_snapshots(client, ledger, problems);
  settle_imports(client, ledger, problems);
  settle_kv(client, ledger, problems);
  return retries;
}

// Retries a keyed update or remove that was in flight at the kill, as a
// client would after a lost connection. With the same key it must return
// the first outcome if that was applied (writing nothing more), else apply
// the write now.
void retry_item_write(memos::Client& client, std::uint64_t id, ItemRecord& record,
                      const PendingWrite& pending, bool landed, Problems& problems) {
  auto reply = pending.update ? client.update(record.cube, id, *pending.update)
                              : client.remove(record.cube, id, pending.key);
  std::string what = std::string(pending.update ? "update" : "remove") + " of " + record.cube +
                     "/" + memos::format_id(id) + " retried with its key " + pending.key +
                     (landed ? " (the first attempt was applied)" : " (it was not)") + ": ";
  if (!reply.ok()) {
    return problems.push_back(what + memos::to_string(reply.error().code) + " " +
                              reply.error().message);
  }
  std::uint32_t version = landed ? record.head() : record.head() + 1;
  if (auto diff = difference(*reply, id, version, pending.content); !diff.empty())
    return problems.push_back(what + diff);
  if (!landed) record.versions.push_back(pending.content);
}

// Retries a keyed add that was in flight at the kill: it must return the
// item first written if that was committed (`landed_id`, else 0), or write
// it now.
void retry_add(memos::Client& client, Ledger& ledger, const PendingAdd& add,
               std::uint64_t landed_id, Problems& problems) {
  memos::NewItem item{add.content.text, add.content.tags, add.content.meta};
  item.idempotency_key = add.key;
  auto reply = client.add(add.cube, std::move(item));
  std::string what = "add to " + add.cube + " retried with its key " + add.key +
                     (landed_id ? " (the first attempt was applied)" : " (it was not)") + ": ";
  if (!reply.ok()) {
    return problems.push_back(what + memos::to_string(reply.error().code) + " " +
                              reply.error().message);
  }
  if (landed_id != 0 && reply->id != landed_id) {
    return problems.push_back(what + "returned " + memos::format_id(reply->id) +
                              ", not the item first written, " + memos::format_id(landed_id));
  }
  if (auto diff = difference(*reply, reply->id, 1, add.content); !diff.empty())
    return problems.push_back(what + diff);
  if (landed_id == 0 &&
      !ledger.items.emplace(reply->id, ItemRecord{add.cube, add.writer, {add.content}, {}}).second)
    problems.push_back(what + "returned a known id " + memos::format_id(reply->id));
}

// Retries every keyed write that was in flight at the kill, as a client
// would after its connection was lost.
void retry_keyed_writes(memos::Client& client, Ledger& ledger, const Retries& retries,
                        Problems& problems) {
  for (const auto& r : retries.item_writes)
    retry_item_write(client, r.id, ledger.items.at(r.id), r.write, r.landed, problems);
  for (const auto& r : retries.adds) retry_add(client, ledger, r.add, r.landed_id, problems);
  ledger.counts.retried += static_cast<int>(retries.item_writes.size() + retries.adds.size());
}

// Every cube the test made, written or imported, with its live items.
std::map<std::string, std::uint64_t> live_items_per_cube(const Ledger& ledger) {
  std::map<std::string, std::uint64_t> live;
  for (const auto& [name, writer] : ledger.cubes) live[name] = 0;
  for (const auto& [id, record] : ledger.items)
    if (record.live()) ++live[record.cube];
  for (const auto& [name, contents] : ledger.imported) live[name] = contents.size();
  return live;
}

// The daemon holds exactly the cubes the test knows of, each with exactly
// the live items the test knows of.
void verify_cubes(memos::Client& client, const Ledger& ledger, Problems& problems) {
  auto listed = client.cube_list();
  if (!listed.ok()) return problems.push_back("cube_list: " + listed.error().message);
  std::map<std::string, std::uint64_t> found;
  for (const auto& cube : listed.value()) found[cube.name] = cube.live_items;
  // cube_show reads each cube by name, unlike cube_list's scan: check both.
  std::vector<std::pair<std::uint64_t, std::future<memos::Result<memos::Cube>>>> shown;
  for (const auto& [name, live] : live_items_per_cube(ledger)) {
    auto it = found.find(name);
    if (it == found.end()) {
      problems.push_back("acknowledged cube " + name + " is missing");
    } else if (it->second != live) {
      problems.push_back("cube " + name + " has live_items " + std::to_string(it->second) +
                         ", expected " + std::to_string(live));
    }
    shown.emplace_back(live, client.cube_show_async(name));
  }
  for (auto& [live, future] : shown) {
    auto cube = future.get();
    if (cube.ok() && cube->live_items != live)
      problems.push_back("cube_show " + cube->name + ": live_items " +
                         std::to_string(cube->live_items) + ", expected " + std::to_string(live));
  }
  for (const auto& [name, live] : found)
    if (!ledger.cubes.contains(name) && !ledger.imported.contains(name))
      problems.push_back("unexpected cube " + name);
}

// Each cube lists exactly its acknowledged snapshots (and those in flight at
// a kill that were found applied), each as acknowledged.
void verify_snapshots(memos::Client& client, const Ledger& ledger, Problems& problems) {
  for (const auto& [cube, want] : ledger.snapshots) {
    auto listed = client.snapshot_list(cube);
    if (!listed.ok()) {
      problems.push_back("snapshot_list " + cube + ": " + listed.error().message);
      continue;
    }
    std::vector<SnapshotRecord> got;
    for (const auto& s : *listed) got.push_back({s.tag, s.cube_version, s.live_items});
    auto by_tag = [](const SnapshotRecord& a, const SnapshotRecord& b) { return a.tag < b.tag; };
    std::vector<SnapshotRecord> sorted_want = want;
    std::sort(got.begin(), got.end(), by_tag);
    std::sort(sorted_want.begin(), sorted_want.end(), by_tag);
    if (got != sorted_want)
      problems.push_back("cube " + cube + " lists " + std::to_string(got.size()) +
                         " snapshot(s), not the " + std::to_string(want.size()) +
                         " acknowledged (or they differ)");
  }
}

// Each imported cube holds exactly what its archive held.
void verify_imports(memos::Client& client, const Ledger& ledger, Problems& problems) {
  for (const auto& [name, expected] : ledger.imported) {
    if (auto got = read_contents(client, name, problems)) {
      if (auto diff = contents_difference(*got, expected); !diff.empty())
        problems.push_back("imported cube " + name + ": " + diff);
    }
  }
}

struct ItemReads {
  std::uint64_t id;
  const ItemRecord* record;
  std::uint32_t version;  // a random known version, read with get(cube, id, version)
  std::future<memos::Result<std::vector<memos::Item>>> history;
  std::future<memos::Result<memos::Item>> head;
  std::future<memos::Result<memos::Item>> at_version;
};

// History is contiguous 1..n and holds every known version exactly; the head
// is the last one (not_found for a tombstone); get at a version reads it.
void check_item(ItemReads& reads, Problems& problems) {
  const ItemRecord& record = *reads.record;
  std::string name = record.cube + "/" + memos::format_id(reads.id);
  auto history = reads.history.get();
  if (!history.ok()) {
    problems.push_back("history " + name + ": " + history.error().message);
  } else if (history->size() != record.head()) {
    problems.push_back(name + " has " + std::to_string(history->size()) + " versions, expected " +
                       std::to_string(record.head()));
  } else {
    for (std::uint32_t v = 1; v <= record.head(); ++v) {
      if (auto diff = difference((*history)[v - 1], reads.id, v, record.versions[v - 1]);
          !diff.empty())
        problems.push_back("history of " + record.cube + ": " + diff);
    }
  }
  auto head = reads.head.get();
  if (record.live() && !head.ok()) {
    problems.push_back("get " + name + ": " + head.error().message);
  } else if (record.live()) {
    if (auto diff = difference(*head, reads.id, record.head(), record.versions.back());
        !diff.empty())
      problems.push_back("head of " + record.cube + ": " + diff);
  } else if (head.ok() || head.error().code != memos::ErrorCode::not_found) {
    problems.push_back("removed item " + name + " is readable at head");
  }
  auto at = reads.at_version.get();
  if (!at.ok()) {
    problems.push_back("get " + name + " v" + std::to_string(reads.version) + ": " +
                       at.error().message);
  } else if (auto diff =
                 difference(*at, reads.id, reads.version, record.versions[reads.version - 1]);
             !diff.empty()) {
    problems.push_back("get of " + record.cube + ": " + diff);
  }
}

void verify_items(memos::Client& client, const Ledger& ledger, Rng& rng, Problems& problems) {
  auto it = ledger.items.begin();
  while (it != ledger.items.end()) {
    std::vector<ItemReads> batch;
    for (; it != ledger.items.end() && batch.size() < kVerifyBatch; ++it) {
      const auto& [id, record] = *it;
      auto version = static_cast<std::uint32_t>(uniform(rng, 1, static_cast<int>(record.head())));
      batch.push_back({id, &record, version, client.history_async(record.cube, id),
                       client.get_async(record.cube, id),
                       client.get_async(record.cube, id, version)});
    }
    for (auto& reads : batch) check_item(reads, problems);
  }
}

// Writes are answered once durable, indexed behind: searchability is
// checked after the catch-up, not at the answer. The search indexes are
// rebuilt from LMDB (or reopened) at start, and each search here waits for
// the writes answered before it (`fresh`): a sample of live items must each
// be the best dense hit for their own text (cosine 1), with and without
// their tags as a filter, and among the lexical hits.
// (Not "first in hybrid": BM25 may rank a shorter text sharing the rarest
// words above an item's own, and fusion may follow it.)
void verify_search(memos::Client& client, const Ledger& ledger, Rng& rng, Problems& problems) {
  std::vector<std::uint64_t> live;
  for (const auto& [id, record] : ledger.items)
    if (record.live()) live.push_back(id);
  std::shuffle(live.begin(), live.end(), rng);
  live.resize(std::min(live.size(), kSearchSample));
  for (std::uint64_t id : live) {
    const ItemRecord& record = ledger.items.at(id);
    const Content& head = record.versions.back();
    for (const auto& tags : {std::vector<std::string>{}, head.tags}) {
      memos::SearchOptions dense;
      dense.k = 1;
      dense.tags = tags;
      dense.mode = memos::SearchMode::dense;
      dense.fresh = true;
      auto hits = client.search(record.cube, head.text, dense);
      if (!hits.ok()) {
        problems.push_back("search " + record.cube + ": " + hits.error().message);
      } else if (hits->empty() || hits->front().item.id != id) {
        problems.push_back("dense search for the text of " + memos::format_id(id) + " in " +
                           record.cube + " (" + std::to_string(tags.size()) +
                           " tags) does not find it first");
      }
    }
    memos::SearchOptions lexical;
    lexical.k = 50;
    lexical.mode = memos::SearchMode::lexical;
    lexical.fresh = true;
    auto hits = client.search(record.cube, head.text, lexical);
    if (!hits.ok()) {
      problems.push_back("search " + record.cube + ": " + hits.error().message);
    } else if (std::none_of(hits->begin(), hits->end(),
                            [&](const memos::Hit& h) { return h.item.id == id; })) {
      problems.push_back("lexical search for the text of " + memos::format_id(id) + " in " +
                         record.cube + " does not find it");
    }
  }
}

// Each cube lists exactly its acknowledged activations (and those of prefills
// in flight at a kill that were found applied), each as acknowledged; none
// that was removed.
void verify_activation_lists(const ActivationLists& lists, const Ledger& ledger,
                             Problems& problems) {
  std::map<std::uint64_t, const KvRecord*> missing;
  for (const auto& [id, record] : ledger.activations)
    if (!record.removed) missing[id] = &record;
  for (const auto& [cube, listed] : lists) {
    for (const auto& a : listed) {
      std::string name = cube + "/" + memos::format_id(a.id);
      auto it = ledger.activations.find(a.id);
      if (it == ledger.activations.end()) {
        problems.push_back("activation " + name + " is none the test made (a torn prefill?)");
        continue;
      }
      const KvRecord& record = it->second;
      if (record.removed) {
        problems.push_back("removed activation " + name + " is listed again");
        continue;
      }
      missing.erase(a.id);
      if (record.cube != cube || a.sources != record.sources || a.tokens != record.tokens ||
          a.bytes != record.bytes)
        problems.push_back("activation " + name + " is listed as other than acknowledged (" +
                           std::to_string(a.tokens) + " tokens, " + std::to_string(a.bytes) +
                           " bytes)");
    }
  }
  for (const auto& [id, record] : missing)
    problems.push_back("acknowledged activation " + record->cube + "/" + memos::format_id(id) +
                       " is missing");
}

// The live activations to check closely: each found applied at this start
// (in flight at the kill), and `others` more drawn at random.
std::vector<std::uint64_t> activations_to_check(const Ledger& ledger, Rng& rng,
                                                std::size_t others) {
  std::vector<std::uint64_t> landed, rest;
  for (const auto& [id, record] : ledger.activations) {
    if (record.removed) continue;
    (record.landed_now ? landed : rest).push_back(id);
  }
  std::shuffle(rest.begin(), rest.end(), rng);
  rest.resize(std::min(rest.size(), others));
  landed.insert(landed.end(), rest.begin(), rest.end());
  return landed;
}

// Prefilling an activation's memories again finds it: the same item, not
// computed anew (prefill_ms 0).
void verify_prefills_find(memos::Client& client, const Ledger& ledger,
                          const std::vector<std::uint64_t>& ids, Problems& problems) {
  std::vector<std::pair<std::uint64_t, std::future<memos::Result<memos::Activation>>>> replies;
  for (std::uint64_t id : ids) {
    const KvRecord& record = ledger.activations.at(id);
    replies.emplace_back(id, client.kv_prefill_async(record.cube, record.sources));
  }
  for (auto& [id, reply] : replies) {
    auto again = reply.get();
    std::string what = "prefilling the memories of activation " + memos::format_id(id) + " again";
    if (!again.ok()) {
      problems.push_back(what + " failed: " + memos::to_string(again.error().code) + " " +
                         again.error().message);
    } else if (again->id != id || again->prefill_ms != 0) {
      problems.push_back(what + " made " + memos::format_id(again->id) + " in " +
                         std::to_string(again->prefill_ms) + " ms rather than finding it");
    }
  }
}

// A chat over an activation's memories restores the state from its blob
// (the executor checks the blob's digest and refuses a damaged one).
void verify_restores(memos::Client& client, Ledger& ledger, const std::vector<std::uint64_t>& ids,
                     Problems& problems) {
  const memos::ActivationOutcome restored{.restored = true};
  std::vector<std::pair<std::uint64_t, std::future<memos::Result<memos::ChatReply>>>> replies;
  for (std::uint64_t id : ids) {
    const KvRecord& record = ledger.activations.at(id);
    memos::ChatOptions options;
    options.ids = record.sources;
    options.max_tokens = 1;
    replies.emplace_back(id, client.chat_async(record.cube, "Which is the oldest?", options));
  }
  for (auto& [id, reply] : replies) {
    auto chat = reply.get();
    std::string what = "a chat over the memories of activation " + memos::format_id(id);
    if (!chat.ok()) {
      problems.push_back(what + " failed: " + memos::to_string(chat.error().code) + " " +
                         chat.error().message);
    } else if (!(chat->activation_status == restored) || chat->activation != id ||
               chat->reused_tokens != ledger.activations.at(id).tokens) {
      problems.push_back(what + " did not restore it whole, torn? (" +
                         memos::to_string(chat->activation_status) + ", " +
                         std::to_string(chat->reused_tokens) + " tokens reused)");
    } else {
      ++ledger.counts.kv_restored;
    }
  }
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

// Every state blob on disk is whole: a blob's path is its SHA-256
// (DATA/blobs/ab/cdef...), written to blobs/tmp/, synced and renamed into
// place, and what a kill leaves in tmp/ is removed at the start. Returns
// how many it checked.
std::size_t verify_blobs(const std::string& data_dir, Problems& problems) {
  std::size_t checked = 0;
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& fan_out : fs::directory_iterator(data_dir + "/blobs", ec)) {
    std::string prefix = fan_out.path().filename();
    if (prefix == "tmp") {
      if (!fs::is_empty(fan_out.path(), ec))
        problems.push_back("memosd's start left files in blobs/tmp");
      continue;
    }
    for (const auto& file : fs::directory_iterator(fan_out.path(), ec)) {
      std::ifstream in(file.path(), std::ios::binary);
      if (!in) continue;  // collected as garbage meanwhile (unreferenced)
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::string name = prefix + file.path().filename().string();
      if (sha256_hex(bytes) != name) problems.push_back("torn state blob " + name + " on disk");
      ++checked;
    }
  }
  return checked;
}

std::size_t live_activations(const Ledger& ledger) {
  return std::count_if(ledger.activations.begin(), ledger.activations.end(),
                       [](const auto& entry) { return !entry.second.removed; });
}

// The activation tier as the kv load left it (nothing without llama.cpp).
void verify_kv(memos::Client& client, const MemosdProcess& daemon, Ledger& ledger, Rng& rng,
               Problems& problems) {
  if (!kKvLoad) return;
  verify_activation_lists(list_activations(client, ledger, problems), ledger, problems);
  verify_prefills_find(client, ledger, activations_to_check(ledger, rng, kKvPrefillSample),
                       problems);
  verify_restores(client, ledger, activations_to_check(ledger, rng, kKvRestoreSample), problems);
  std::size_t live = live_activations(ledger);
  if (verify_blobs(daemon.data_dir(), problems) < live)
    problems.push_back("fewer state blobs on disk than the " + std::to_string(live) +
                       " acknowledged activations");
  for (auto& [id, record] : ledger.activations) record.landed_now = false;
}

// ---- the daemon's log ----------------------------------------------------------

// The daemon's log written since `offset` (the log is appended across starts).
std::string log_since(const MemosdProcess& daemon, std::size_t offset) {
  std::string log = daemon.log();
  return offset < log.size() ? log.substr(offset) : std::string();
}

// Nothing in the log of the last run and this start points to a crash, and
// the start got as far as serving.
void check_log(const std::string& log, Problems& problems) {
  static const std::regex kBad(
      R"(^\S+ (error|critical) |AddressSanitizer|LeakSanitizer|runtime error|terminate called)");
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (std::regex_search(line, kBad)) problems.push_back("memosd log: " + line);
  if (log.find(" ready on ") == std::string::npos)
    problems.push_back("memosd log has no 'ready' line");
}

// The number of items the start rebuilt indexes from, or -1. Cubes whose
// snapshots were current are opened, not rebuilt, so this is at most the
// live items (searches then check what the indexes hold).
long long indexed_at_start(const std::string& log) {
  static const std::regex kIndexed(R"(cube\(s\) rebuilt, (\d+) items indexed\))");
  std::smatch match;
  if (!std::regex_search(log, match, kIndexed)) return -1;
  return std::stoll(match[1]);
}

// What the whole run did, for the JSON summary scripts/crash-soak reads.
struct Totals {
  std::uint64_t seed = 0;
  int rounds = 0;  // rounds killed and verified
  long long acknowledged = 0, in_flight = 0, landed = 0, retried = 0, snapshots = 0, imports = 0;
  long long kv_prefills = 0, kv_removes = 0, kv_in_flight = 0, kv_landed = 0, kv_restored = 0;
  long long lost = 0;   // acknowledged writes missing or different after a restart
  long long torn = 0;   // writes in flight at a kill found partly applied
  long long other = 0;  // any other problem (a refused write, a crash in the log...)
  Clock::time_point start = Clock::now();
  Clock::duration slowest_start{};

  void add(const RoundCounts& c) {
    acknowledged += c.acknowledged;
    in_flight += c.unacknowledged;
    landed += c.landed;
    retried += c.retried;
    snapshots += c.snapshots;
    imports += c.imports;
    kv_prefills += c.kv_prefills;
    kv_removes += c.kv_removes;
    kv_in_flight += c.kv_unacknowledged;
    kv_landed += c.kv_landed;
    kv_restored += c.kv_restored;
  }
  // Sorts a round's problems into the three kinds by their messages.
  void classify(const Problems& problems) {
    for (const auto& p : problems) {
      if (p.find("torn") != std::string::npos) {
        ++torn;
      } else if (p.starts_with("memosd log") || p.find("refused") != std::string::npos ||
                 p.find("the start indexed") != std::string::npos) {
        ++other;
      } else {
        ++lost;
      }
    }
  }
  void print(bool passed) const {
    std::cout << "crash summary: {\"passed\": " << (passed ? "true" : "false")
              << ", \"seed\": " << seed << ", \"rounds\": " << rounds
              << ", \"acknowledged_writes\": " << acknowledged << ", \"snapshots\": " << snapshots
              << ", \"imports\": " << imports << ", \"in_flight_at_kill\": " << in_flight
              << ", \"in_flight_applied\": " << landed << ", \"retried_with_key\": " << retried
              << ", \"kv_load\": " << (kKvLoad ? "true" : "false")
              << ", \"kv_prefills\": " << kv_prefills << ", \"kv_removes\": " << kv_removes
              << ", \"kv_in_flight_at_kill\": " << kv_in_flight
              << ", \"kv_in_flight_applied\": " << kv_landed << ", \"kv_restored\": " << kv_restored
              << ", \"lost\": " << lost << ", \"torn\": " << torn
              << ", \"other_problems\": " << other
              << ", \"slowest_start_s\": " << std::chrono::duration<double>(slowest_start).count()
              << ", \"seconds\": " << std::chrono::duration<double>(Clock::now() - start).count()
              << "}" << std::endl;
  }
};

void report(const Problems& problems, Totals& totals) {
  if (!problems.empty()) {
    totals.classify(problems);
    totals.print(false);
  }
  std::string shown;
  for (std::size_t i = 0; i < problems.size() && i < kProblemsShown; ++i)
    shown += "\n  " + problems[i];
  BOOST_REQUIRE_MESSAGE(problems.empty(), problems.size()
                                              << " problem(s) after the restart:" << shown);
}

// ---- a round -----------------------------------------------------------------

std::unique_ptr<memos::Client> connect(const MemosdProcess& daemon) {
  auto client = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE_MESSAGE(client.ok(), "connect: " << (client.ok() ? "" : client.error().message));
  return std::move(client.value());
}

// Each writer starts with one cube of its own.
void create_writer_cubes(const MemosdProcess& daemon, Ledger& ledger) {
  auto client = connect(daemon);
  for (int w = 0; w < kWriters; ++w) {
    std::string name = "crash-w" + std::to_string(w);
    auto created = client->cube_create(name);
    BOOST_REQUIRE_MESSAGE(created.ok(),
                          "cube_create: " << (created.ok() ? "" : created.error().message));
    ledger.cubes[name] = w;
    auto empty = client->snapshot_create(name, kEmptyTag);
    BOOST_REQUIRE_MESSAGE(empty.ok(),
                          "snapshot_create: " << (empty.ok() ? "" : empty.error().message));
    ledger.snapshots[name].push_back({kEmptyTag, empty->cube_version, empty->live_items});
  }
}

// Waits (a little) until some write awaits its reply, so that the kill lands
// mid-flight rather than in a pause between bursts.
void wait_for_writes_in_flight(const std::vector<std::unique_ptr<Writer>>& writers) {
  auto deadline = Clock::now() + kMaxWaitForInFlight;
  auto any_in_flight = [&] {
    return std::any_of(writers.begin(), writers.end(),
                       [](const auto& writer) { return writer->in_flight() > 0; });
  };
  while (!any_in_flight() && Clock::now() < deadline) std::this_thread::sleep_for(50us);
}

// Runs the writers against the live daemon and kills it with SIGKILL after a
// random delay, with writes in flight.
void write_and_kill(MemosdProcess& daemon, Ledger& ledger, std::uint64_t seed, int round,
                    Rng& rng) {
  std::vector<std::unique_ptr<Writer>> writers;
  for (int w = 0; w < kWriters; ++w) {
    Rng rng_w =
        make_rng(seed, static_cast<std::uint64_t>(round), 1 + static_cast<std::uint64_t>(w));
    writers.push_back(std::make_unique<Writer>(w, round, rng_w, ledger, connect(daemon)));
  }
  auto delay = std::chrono::milliseconds(uniform(rng, kMinKillDelayMs, kMaxKillDelayMs));
  std::vector<std::thread> threads;
  for (auto& writer : writers) threads.emplace_back([&writer] { writer->run(); });
  std::this_thread::sleep_for(delay);
  wait_for_writes_in_flight(writers);
  int status = daemon.stop(SIGKILL);
  for (auto& thread : threads) thread.join();
  BOOST_CHECK_MESSAGE(status == 128 + SIGKILL,
                      "memosd had exited before the kill (status " << status << ")");
}

// Starts memosd on the data of all earlier rounds and checks all of it.
// Returns how long the start took.
Clock::duration restart_and_verify(MemosdProcess& daemon, Ledger& ledger, Rng& rng,
                                   std::size_t* log_offset, Totals& totals) {
  auto t0 = Clock::now();
  bool started = daemon.start(kStartTimeout);
  auto start_time = Clock::now() - t0;
  BOOST_REQUIRE_MESSAGE(started, "memosd did not restart:\n" << log_since(daemon, *log_offset));

  totals.slowest_start = std::max(totals.slowest_start, start_time);
  auto client = connect(daemon);
  Problems problems = std::move(ledger.problems);
  ledger.problems.clear();
  Retries retries = settle_pending(*client, ledger, problems);
  // Now every item is known: the start must have indexed exactly the live ones.
  std::uint64_t live = 0;
  for (const auto& [name, n] : live_items_per_cube(ledger)) live += n;
  retry_keyed_writes(*client, ledger, retries, problems);
  verify_cubes(*client, ledger, problems);
  verify_snapshots(*client, ledger, problems);
  verify_imports(*client, ledger, problems);
  verify_items(*client, ledger, rng, problems);
  verify_search(*client, ledger, rng, problems);
  verify_kv(*client, daemon, ledger, rng, problems);
  // Read only now: memosd logs 'ready' after it starts listening but before
  // it serves anything, so once replies have come the line is there.
  std::string log = log_since(daemon, *log_offset);
  check_log(log, problems);
  if (long long indexed = indexed_at_start(log);
      indexed < 0 || indexed > static_cast<long long>(live)) {
    problems.push_back("the start indexed " + std::to_string(indexed) +
                       " items, expected at most " + std::to_string(live));
  }
  totals.add(ledger.counts);
  report(problems, totals);
  *log_offset += log.size();
  return start_time;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// memosd's arguments: for the kv load, a configuration with the llama.cpp
// executor on a tiny model that memos-mkmodel writes in `dir` (beside the
// data folder, which --fresh-every empties).
std::vector<std::string> memosd_args([[maybe_unused]] const std::string& dir) {
#ifdef MEMOS_MKMODEL
  std::string model = dir + "/model.gguf";
  std::string out, err;
  int rc =
      memos::testing::run_command({MEMOS_MKMODEL, "--out", model, "--vocab", MEMOS_TEST_VOCAB,
                                   "--preset", "tiny", "--ctx", std::to_string(kKvContextTokens)},
                                  &out, &err);
  BOOST_REQUIRE_MESSAGE(rc == 0, "memos-mkmodel: " << err);
  std::string config = dir + "/memosd.conf";
  std::ofstream(config) << "[executor]\nmodel = \"" << model
                        << "\"\nthreads = 1\ncontext = " << kKvContextTokens
                        << "\n[activation]\nchunk_tokens = "
                        << kKvChunkTokens
                        // The test's model of the tier knows the states it
                        // made; the scheduler's working-set states would be
                        // others.
                        << "\n[scheduler]\nenabled = false\n";
  return {"--config", config};
#else
  return {};
#endif
}

}  // namespace

BOOST_AUTO_TEST_CASE(acknowledged_writes_survive_sigkill) {
  Options options = parse_options();
  std::cout << "crash test: seed " << options.seed << ", " << options.rounds
            << " rounds (replay: test_crash -- --seed " << options.seed << " --rounds "
            << options.rounds << " --fresh-every " << options.fresh_every << ")" << std::endl;
  TempDir dir;
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), memosd_args(dir.path()));
  auto ledger = std::make_unique<Ledger>();
  std::size_t log_offset = 0;
  Clock::duration slowest_start{};
  Totals totals;
  totals.seed = options.seed;

  // Round r writes and is killed; the start of round r + 1 verifies it (and
  // everything before it). The last start is verified, then stopped cleanly.
  for (int round = 0; round <= options.rounds; ++round) {
    BOOST_TEST_INFO_SCOPE("seed " << options.seed << ", round " << round);
    Rng rng = make_rng(options.seed, static_cast<std::uint64_t>(round), 0);
    auto t0 = Clock::now();
    slowest_start =
        std::max(slowest_start, restart_and_verify(daemon, *ledger, rng, &log_offset, totals));
    totals.rounds = round;
    // The counts are those of the round killed just before this start.
    BOOST_TEST_MESSAGE("start " << round << ": " << ledger->counts.acknowledged
                                << " writes acknowledged (" << ledger->counts.snapshots
                                << " snapshots, " << ledger->counts.imports << " imports, "
                                << ledger->counts.kv_prefills << " kv prefills, "
                                << ledger->counts.kv_removes << " kv removes), "
                                << ledger->counts.landed << " of " << ledger->counts.unacknowledged
                                << " in flight at the kill applied, " << ledger->counts.retried
                                << " retried with their keys; verified " << ledger->items.size()
                                << " items, " << live_activations(*ledger) << " activations in "
                                << ledger->cubes.size() << " cubes and " << ledger->imported.size()
                                << " imported cubes in " << seconds(Clock::now() - t0) << " s");
    ledger->counts = {};
    if (round == options.rounds) break;
    // Verified just now: start again on an empty data folder.
    bool fresh = round > 0 && options.fresh_every > 0 && round % options.fresh_every == 0;
    if (fresh) {
      BOOST_REQUIRE(daemon.stop(SIGTERM) == 0);
      std::filesystem::remove_all(daemon.data_dir());
      ledger = std::make_unique<Ledger>();
      BOOST_REQUIRE_MESSAGE(daemon.start(kStartTimeout), "memosd did not start on an empty folder");
    }
    if (round == 0 || fresh) create_writer_cubes(daemon, *ledger);
    write_and_kill(daemon, *ledger, options.seed, round, rng);
  }
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
  std::cout << "crash test: " << options.rounds << " rounds, " << ledger->items.size()
            << " items in " << ledger->cubes.size() << " cubes, slowest start "
            << seconds(slowest_start) << " s, total " << seconds(Clock::now() - totals.start)
            << " s" << std::endl;
  totals.print(true);
}
