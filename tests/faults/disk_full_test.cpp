// Disk full (issue 13, "Faults"): a real memosd whose data folder is on a
// small tmpfs the test mounts. Every kind of write is made to fill it (adds,
// updates, cube creations, snapshots, archive imports, and index snapshots
// in the background): each write is either acknowledged or refused with the
// typed, retryable storage_full (docs/design.md, "Durability contract");
// every acknowledged write reads back, before and after a restart; when space
// returns (the filler file deleted, or the tmpfs remounted bigger) writes
// succeed again without a restart. Needs root and mount(2): the cases carry
// the `mount` label and are skipped without it.
//
// KV prefills write blobs (a model's state, to DATA/blobs/) before their
// record: on a full disk each is acknowledged or refused with storage_full
// too, what was acknowledged is listed, found again and restored after a
// restart, and the refused ones succeed once space returns, without a
// restart. That case needs llama.cpp as well (MEMOS_MKMODEL: memosd runs the
// llama.cpp executor on a tiny memos-mkmodel model): label `kv_mount`,
// skipped without either.
#define BOOST_TEST_MODULE disk_full
#include <signal.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"
#include "tests/support/small_filesystem.h"

using memos::testing::can_mount;
using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::SmallFilesystem;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr const char* kCube = "disk";
// Items this large fill a few MiB in a few hundred adds.
constexpr std::size_t kItemBytes = 16000;
// A bound on the writes tried while filling, should the disk not fill.
constexpr int kMaxFillWrites = 4000;

std::string why(const memos::Error& e) {
  return std::string(memos::to_string(e.code)) + ": " + e.message;
}

template <class T>
std::string why(const memos::Result<T>& r) {
  return r.ok() ? "ok" : why(r.error());
}

// A refusal the contract allows for a write on a full disk.
bool is_full(const memos::Error& e) {
  return e.code == memos::ErrorCode::storage_full && e.retryable;
}

// memosd on a data folder inside a small tmpfs; its socket, log and
// configuration stay outside, on the test's temporary folder.
struct FullDiskDaemon {
  // `config`: more of memosd.conf (the executor's sections).
  explicit FullDiskDaemon(const std::string& size, const std::string& config = "")
      : fs(dir.path() + "/small", size) {
    BOOST_REQUIRE_MESSAGE(fs.mounted(), "mounting a tmpfs worked for the precondition, not now");
    // Index snapshots every second, so that some are due while the disk is full.
    std::ofstream(dir.path() + "/memosd.conf") << "[search]\nsnapshot_interval_s = 1\n" << config;
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, dir.path(), dir.path() + "/memosd.sock",
                                              dir.path() + "/small/data");
    process->set_extra_args({"--config", dir.path() + "/memosd.conf"});
  }
  std::unique_ptr<memos::Client> start() {
    BOOST_REQUIRE_MESSAGE(process->start(), "memosd did not start:\n" << process->log());
    auto c = memos::Client::connect(process->socket());
    BOOST_REQUIRE_MESSAGE(c.ok(), why(c));
    return std::move(c.value());
  }
  std::string ballast() const { return dir.path() + "/small/ballast"; }

  TempDir dir;
  SmallFilesystem fs;
  std::unique_ptr<MemosdProcess> process;
};

// What the daemon acknowledged: every version of every item, and the cubes
// and snapshots.
struct Acknowledged {
  std::map<std::uint64_t, std::vector<std::string>> items;  // id -> text of versions 1..n
  std::vector<std::string> cubes = {kCube};
  std::vector<std::string> snapshots;
  int writes = 0;    // acknowledged
  int refusals = 0;  // storage_full
};

// Records a write's reply: acknowledged, or refused as the contract allows
// (anything else fails the test). Returns whether it was acknowledged.
template <class T>
bool record(const memos::Result<T>& reply, Acknowledged& ack, const std::string& what) {
  if (reply.ok()) {
    ++ack.writes;
    return true;
  }
  BOOST_TEST(is_full(reply.error()), what << " on a full disk: " << why(reply));
  ++ack.refusals;
  return false;
}

bool add(memos::Client& c, Acknowledged& ack, const std::string& text) {
  auto r = c.add(kCube, {text});
  if (!record(r, ack, "add")) return false;
  ack.items[r->id] = {text};
  return true;
}

bool update(memos::Client& c, Acknowledged& ack, std::uint64_t id, const std::string& text) {
  auto r = c.update(kCube, id, {text, {}, {}});
  if (!record(r, ack, "update")) return false;
  ack.items[id].push_back(text);
  BOOST_TEST(r->version == ack.items[id].size());
  return true;
}

// The archive of the cube, read whole (reads work on a full disk).
std::string export_cube(memos::Client& c) {
  std::string archive;
  auto n = c.export_cube(kCube, [&](std::string_view chunk) {
    archive.append(chunk);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(n.ok(), "export: " << why(n));
  return archive;
}

memos::Result<memos::Cube> import_as(memos::Client& c, const std::string& archive,
                                     const std::string& name) {
  std::size_t offset = 0;
  return c.import_cube(
      [&](char* out, std::size_t n) {
        n = std::min(n, archive.size() - offset);
        std::copy_n(archive.data() + offset, n, out);
        offset += n;
        return n;
      },
      name);
}

// Every acknowledged version of every item, every cube and snapshot, reads
// back exactly; nothing else (a half-made import) is listed.
void verify(memos::Client& c, const Acknowledged& ack) {
  for (const auto& [id, texts] : ack.items) {
    auto history = c.history(kCube, id);
    BOOST_REQUIRE_MESSAGE(history.ok(), "history: " << why(history));
    BOOST_REQUIRE_EQUAL(history->size(), texts.size());
    for (std::size_t v = 0; v < texts.size(); ++v)
      BOOST_TEST((*history)[v].text == texts[v], memos::format_id(id) << " v" << v + 1);
  }
  auto shown = c.cube_show(kCube);
  BOOST_REQUIRE_MESSAGE(shown.ok(), why(shown));
  BOOST_TEST(shown->live_items == ack.items.size());
  auto cubes = c.cube_list();
  BOOST_REQUIRE(cubes.ok());
  std::vector<std::string> listed, want = ack.cubes;
  for (const auto& cube : *cubes) listed.push_back(cube.name);
  std::sort(listed.begin(), listed.end());
  std::sort(want.begin(), want.end());
  BOOST_TEST(listed == want, boost::test_tools::per_element());
  auto snapshots = c.snapshot_list(kCube);
  BOOST_REQUIRE(snapshots.ok());
  std::vector<std::string> tags;
  for (const auto& s : *snapshots) tags.push_back(s.tag);
  BOOST_TEST(tags == ack.snapshots, boost::test_tools::per_element());
}

// Adds until the disk is full; returns the acknowledged adds. The ballast
// must exist so that deleting it gives space back.
int fill(memos::Client& c, Acknowledged& ack) {
  int added = 0;
  for (int i = 0; i < kMaxFillWrites; ++i) {
    if (!add(c, ack, std::to_string(i) + " " + std::string(kItemBytes, 'f'))) return added;
    ++added;
  }
  BOOST_FAIL("the disk did not fill after " << kMaxFillWrites << " adds");
  return added;
}

// Writes `path` until the disk has no byte left (ENOSPC): what memosd's
// refusal left free, taken too.
void top_off(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  BOOST_REQUIRE(f);
  std::setvbuf(f, nullptr, _IONBF, 0);
  std::string block(4096, 't');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  while (std::fwrite(block.data(), 1, 1, f) == 1) {
  }
  std::fclose(f);
}

// ---- kv prefills -------------------------------------------------------------

// Memories for the prefilled blocks: each pair is a block of its own.
constexpr int kKvMemories = 8;
// Blocks prefilled before the disk fills, while it is full, then with not
// a byte left.
constexpr int kKvBlocksBefore = 2;
constexpr int kKvBlocksFull = 6;
constexpr int kKvBlocksToppedOff = 4;
// The tiny model's context, room for a block of two memories.
constexpr int kKvContextTokens = 2048;

// Where the build has llama.cpp (MEMOS_MKMODEL), a small tmpfs too.
boost::test_tools::assertion_result can_prefill_on_a_small_disk(
    [[maybe_unused]] boost::unit_test::test_unit_id id) {
#ifdef MEMOS_MKMODEL
  return can_mount(id);
#else
  boost::test_tools::assertion_result r(false);
  r.message() << "built without llama.cpp: no executor to prefill with";
  return r;
#endif
}

// memosd.conf's executor sections: the llama.cpp executor on a tiny model
// memos-mkmodel writes in `dir` (not on the small disk).
std::string executor_config([[maybe_unused]] const std::string& dir) {
#ifdef MEMOS_MKMODEL
  std::string model = dir + "/model.gguf", out, err;
  int rc = run_command({MEMOS_MKMODEL, "--out", model, "--vocab", MEMOS_TEST_VOCAB, "--preset",
                        "tiny", "--ctx", std::to_string(kKvContextTokens)},
                       &out, &err);
  BOOST_REQUIRE_MESSAGE(rc == 0, "memos-mkmodel: " << err);
  return "[executor]\nmodel = \"" + model +
         "\"\nthreads = 1\ncontext = " + std::to_string(kKvContextTokens) +
         "\n[activation]\nchunk_tokens = 16\n";
#else
  return "";
#endif
}

// About 100 words, its own: the state of a block of two is tens of KB, more
// than a full disk has left.
std::string memory_text(int i) {
  static const char* const kWords[] = {"river",  "lantern", "copper",  "meadow", "orbit",
                                       "velvet", "harbor",  "glacier", "pepper", "thistle"};
  std::string text = "Memory " + std::to_string(i) + ":";
  for (int w = 0; w < 100; ++w) text += std::string(" ") + kWords[(i * 7 + w * 3) % 10];
  return text;
}

// What the daemon acknowledged of the activation tier.
struct KvAcknowledged {
  std::map<std::uint64_t, std::vector<std::uint64_t>> live;  // activation -> its sources
  std::set<std::uint64_t> removed;
  std::string refusal;  // the last storage_full, for the log
};

// Prefills `block`: acknowledged (a new state, made now) or refused with
// storage_full. Returns whether it was acknowledged.
bool prefill(memos::Client& c, Acknowledged& ack, KvAcknowledged& kv,
             const std::vector<std::uint64_t>& block) {
  auto r = c.kv_prefill(kCube, block);
  if (!record(r, ack, "kv_prefill")) {
    kv.refusal = why(r);
    return false;
  }
  BOOST_TEST(r->prefill_ms > 0.0);
  BOOST_TEST(r->sources == block, boost::test_tools::per_element());
  kv.live[r->id] = block;
  return true;
}

// The cube lists exactly the acknowledged activations; prefilling each one's
// block again finds it rather than computing it anew (prefill_ms 0); with
// `restore`, a chat over each block restores its state from the blob.
void verify_kv(memos::Client& c, const KvAcknowledged& kv, bool restore) {
  auto listed = c.kv_list(kCube);
  BOOST_REQUIRE_MESSAGE(listed.ok(), why(listed));
  std::map<std::uint64_t, std::vector<std::uint64_t>> got;
  for (const auto& a : *listed) got[a.id] = a.sources;
  BOOST_TEST((got == kv.live), listed->size()
                                   << " activations listed, " << kv.live.size() << " acknowledged");
  for (std::uint64_t id : kv.removed) BOOST_TEST(!got.contains(id), "removed " << id << " listed");
  for (const auto& [id, block] : kv.live) {
    auto again = c.kv_prefill(kCube, block);
    BOOST_REQUIRE_MESSAGE(again.ok(), "prefilling " << id << " again: " << why(again));
    BOOST_TEST(again->id == id);
    BOOST_TEST(again->prefill_ms == 0.0, "the state of " << id << " was computed anew");
    if (!restore) continue;
    memos::ChatOptions options;
    options.ids = block;
    options.max_tokens = 1;
    auto chat = c.chat(kCube, "Which is the oldest?", options);
    BOOST_REQUIRE_MESSAGE(chat.ok(), "chat over " << id << ": " << why(chat));
    BOOST_TEST(chat->activation_status.restored, memos::to_string(chat->activation_status));
    BOOST_TEST(chat->activation == id);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_write_on_a_full_disk_is_acknowledged_or_retryable_and_resumes,
                     *boost::unit_test::label("mount") *
                         boost::unit_test::precondition(can_mount)) {
  FullDiskDaemon d("6m");
  std::ofstream(d.ballast()) << std::string(1 << 20, 'b');
  auto c = d.start();
  Acknowledged ack;
  BOOST_REQUIRE(c->cube_create(kCube).ok());
  BOOST_REQUIRE(c->snapshot_create(kCube, "before").ok());
  ack.snapshots.push_back("before");
  std::string small_archive = export_cube(*c);

  int added = fill(*c, ack);
  BOOST_TEST_MESSAGE("disk full after " << added << " adds");
  BOOST_TEST(added > 10);

  // Full: each kind of write again, a few times each, interleaved, so that
  // a write refused after another was acknowledged is seen too. Small
  // writes may still fit now and then; large ones must not.
  std::uint64_t first = ack.items.begin()->first;
  for (int i = 0; i < 5; ++i) {
    update(*c, ack, first,
           "updated on a full disk " + std::to_string(i) + std::string(kItemBytes, 'u'));
    add(*c, ack, "added on a full disk " + std::to_string(i) + std::string(kItemBytes, 'a'));
    std::string tag = "full-" + std::to_string(i);
    if (record(c->snapshot_create(kCube, tag), ack, "snapshot_create"))
      ack.snapshots.push_back(tag);
    std::string cube = "made-full-" + std::to_string(i);
    if (record(c->cube_create(cube), ack, "cube_create")) ack.cubes.push_back(cube);
  }
  // An archive of the full cube cannot fit beside it: refused, and the
  // import leaves nothing behind (no half-made cube, no staging cube).
  std::string big_archive = export_cube(*c);
  std::uint64_t live_at_export = ack.items.size();
  auto imported = import_as(*c, big_archive, "copy");
  BOOST_REQUIRE(!imported.ok());
  BOOST_TEST(is_full(imported.error()), why(imported));
  ++ack.refusals;
  // Index snapshots (every second) come due meanwhile; the daemon stays up.
  std::this_thread::sleep_for(2500ms);
  BOOST_TEST(c->status().ok());
  BOOST_TEST(d.process->running());
  verify(*c, ack);
  BOOST_TEST_MESSAGE(ack.writes << " writes acknowledged, " << ack.refusals
                                << " refused with storage_full");
  BOOST_TEST(ack.refusals >= 2);

  // Space returns, the filler deleted: writes work again, without a restart.
  std::filesystem::remove(d.ballast());
  BOOST_TEST(update(*c, ack, first, "updated after space returned"));
  BOOST_TEST(add(*c, ack, "added after space returned"));
  // More space (the tmpfs remounted bigger) for every kind of write.
  BOOST_REQUIRE(d.fs.resize("64m"));
  BOOST_REQUIRE(c->snapshot_create(kCube, "after").ok());
  ack.snapshots.push_back("after");
  BOOST_REQUIRE(c->cube_create("made-after").ok());
  ack.cubes.push_back("made-after");
  auto copy = import_as(*c, big_archive, "copy");
  BOOST_REQUIRE_MESSAGE(copy.ok(), "import after space returned: " << why(copy));
  ack.cubes.push_back("copy");
  auto small = import_as(*c, small_archive, "small-copy");
  BOOST_REQUIRE_MESSAGE(small.ok(), why(small));
  ack.cubes.push_back("small-copy");
  verify(*c, ack);

  // And all of it is durable: a clean restart reads it back.
  BOOST_TEST(d.process->stop() == 0);
  c = d.start();
  verify(*c, ack);
  BOOST_TEST(c->cube_show("copy")->live_items == live_at_export);
  BOOST_TEST(d.process->stop() == 0);
}

// Issue 13 #11: memosd restarted on a full disk (its indexes stale after a
// kill, so they must be rebuilt) starts and serves reads; writes are refused
// retryably; when space returns, writes and the index rebuild resume
// without another restart.
BOOST_AUTO_TEST_CASE(a_restart_on_a_full_disk_serves_reads,
                     *boost::unit_test::label("mount") *
                         boost::unit_test::precondition(can_mount)) {
  FullDiskDaemon d("6m");
  std::ofstream(d.ballast()) << std::string(1 << 20, 'b');
  auto c = d.start();
  Acknowledged ack;
  BOOST_REQUIRE(c->cube_create(kCube).ok());
  // Words of their own, so that lexical search finds each item.
  for (int i = 0; i < 20; ++i) add(*c, ack, "needle" + std::to_string(i) + " marker text");
  BOOST_REQUIRE_EQUAL(ack.items.size(), 20u);
  fill(*c, ack);
  c.reset();
  // kill -9, and the indexes gone (derived data: rebuilt from the store
  // when missing), so the start must make them anew; and not a byte left.
  BOOST_TEST(d.process->stop(SIGKILL) == 128 + SIGKILL);
  std::filesystem::remove_all(d.process->data_dir() + "/index");
  top_off(d.dir.path() + "/small/topoff");

  BOOST_REQUIRE_MESSAGE(d.process->start(), "memosd did not start on a full disk:\n"
                                                << d.process->log());
  auto connected = memos::Client::connect(d.process->socket());
  BOOST_REQUIRE(connected.ok());
  c = std::move(connected.value());
  verify(*c, ack);
  for (const auto mode : {memos::SearchMode::dense, memos::SearchMode::lexical}) {
    memos::SearchOptions options;
    options.k = 1;
    options.mode = mode;
    auto hits = c->search(kCube, "needle7 marker text", options);
    // A retriever whose index could not be rebuilt may answer unavailable
    // (retryable) for now; it must not answer wrongly.
    if (hits.ok()) {
      BOOST_REQUIRE(!hits->empty());
      BOOST_TEST(hits->front().item.text == "needle7 marker text");
    } else {
      BOOST_TEST(hits.error().retryable, why(hits));
    }
  }
  BOOST_TEST(!add(*c, ack, std::string(kItemBytes, 'x')));

  // Space returns: writes resume and search works, without a restart.
  std::filesystem::remove(d.ballast());
  std::filesystem::remove(d.dir.path() + "/small/topoff");
  BOOST_REQUIRE(d.fs.resize("64m"));
  BOOST_TEST(add(*c, ack, "needle-after space returned"));
  memos::SearchOptions lexical;
  lexical.k = 1;
  lexical.mode = memos::SearchMode::lexical;
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    auto hits = c->search(kCube, "needle7 marker text", lexical);
    found = hits.ok() && !hits->empty() && hits->front().item.text == "needle7 marker text";
    if (!found) std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(found, "lexical search after space returned");
  verify(*c, ack);
  BOOST_TEST(d.process->stop() == 0);
}

// KV prefills on a full disk: the state goes to the blob store (write to
// blobs/tmp/, fsync, rename) before the record's commit; either may find
// the disk full. Each prefill is acknowledged or refused with storage_full,
// retryable; so is a kv remove; once space returns the refused blocks
// prefill without a restart, and all that was acknowledged survives one.
BOOST_AUTO_TEST_CASE(kv_prefills_on_a_full_disk_are_acknowledged_or_retryable_and_resume,
                     *boost::unit_test::label("kv_mount") *
                         boost::unit_test::precondition(can_prefill_on_a_small_disk)) {
  TempDir models;
  FullDiskDaemon d("6m", executor_config(models.path()));
  std::ofstream(d.ballast()) << std::string(1 << 20, 'b');
  auto c = d.start();
  Acknowledged ack;
  KvAcknowledged kv;
  BOOST_REQUIRE(c->cube_create(kCube).ok());
  std::vector<std::uint64_t> memories;
  for (int i = 0; i < kKvMemories; ++i) {
    BOOST_REQUIRE(add(*c, ack, memory_text(i)));
    memories.push_back(std::prev(ack.items.end())->first);
  }
  // Every pair of memories is a block of its own; the first ones are
  // prefilled while there is room.
  std::vector<std::vector<std::uint64_t>> blocks;
  for (std::size_t i = 0; i < memories.size(); ++i)
    for (std::size_t j = i + 1; j < memories.size(); ++j)
      blocks.push_back({memories[i], memories[j]});
  std::size_t next = 0;
  for (int i = 0; i < kKvBlocksBefore; ++i) BOOST_REQUIRE(prefill(*c, ack, kv, blocks[next++]));

  int added = fill(*c, ack);
  BOOST_TEST_MESSAGE("disk full after " << added << " adds");
  std::vector<std::vector<std::uint64_t>> refused;
  auto prefill_or_note = [&](const std::vector<std::uint64_t>& block) {
    if (!prefill(*c, ack, kv, block)) refused.push_back(block);
  };
  for (int i = 0; i < kKvBlocksFull; ++i) prefill_or_note(blocks[next++]);
  // Not a byte left: what the refusals freed, taken too.
  top_off(d.dir.path() + "/small/topoff");
  for (int i = 0; i < kKvBlocksToppedOff; ++i) prefill_or_note(blocks[next++]);
  // A kv remove, then the same block again: its state's blob is still there
  // (unreferenced blobs go with the garbage collection, after a grace
  // period), so only the record's commit meets the full disk.
  auto [first, first_block] = *kv.live.begin();
  auto removed = c->kv_remove(kCube, first);
  BOOST_TEST_MESSAGE("kv_remove on the full disk: " << why(removed));
  if (record(removed, ack, "kv_remove")) {
    kv.live.erase(first);
    kv.removed.insert(first);
    prefill_or_note(first_block);
  }
  BOOST_TEST_MESSAGE(kv.live.size() << " activations acknowledged, " << refused.size()
                                    << " prefills refused (the last: " << kv.refusal << ")");
  BOOST_TEST(!refused.empty());
  // A refused state leaves no temporary file behind.
  BOOST_TEST(std::filesystem::is_empty(d.process->data_dir() + "/blobs/tmp"));
  BOOST_TEST(d.process->running());
  verify(*c, ack);
  verify_kv(*c, kv, false);

  // Space returns: the refused blocks prefill now, without a restart.
  std::filesystem::remove(d.ballast());
  std::filesystem::remove(d.dir.path() + "/small/topoff");
  BOOST_REQUIRE(d.fs.resize("64m"));
  for (const auto& block : refused) {
    auto r = c->kv_prefill(kCube, block);
    BOOST_REQUIRE_MESSAGE(r.ok(), "kv_prefill after space returned: " << why(r));
    BOOST_TEST(r->prefill_ms > 0.0);
    kv.live[r->id] = block;
  }
  verify_kv(*c, kv, false);

  // And all of it is durable: a clean restart lists it, finds it and
  // restores it.
  BOOST_TEST(d.process->stop() == 0);
  c = d.start();
  verify(*c, ack);
  verify_kv(*c, kv, true);
  BOOST_TEST(d.process->stop() == 0);
}
