// Disk full (issue 13, "Faults"): a real memosd whose data folder is on a
// small tmpfs the test mounts. Every kind of write is made to fill it (adds,
// updates, cube creations, snapshots, archive imports, and index snapshots
// in the background): each write is either acknowledged or refused with the
// typed, retryable storage_full (docs/design.md, "Durability contract");
// every acknowledged write reads back, before and after a restart; when space
// returns (the filler file deleted, or the tmpfs remounted bigger) writes
// succeed again without a restart. Needs root and mount(2): the cases carry
// the `mount` label and are skipped without it.
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
#include <string>
#include <thread>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"
#include "tests/support/small_filesystem.h"

using memos::testing::can_mount;
using memos::testing::MemosdProcess;
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
  explicit FullDiskDaemon(const std::string& size) : fs(dir.path() + "/small", size) {
    BOOST_REQUIRE_MESSAGE(fs.mounted(), "mounting a tmpfs worked for the precondition, not now");
    // Index snapshots every second, so that some are due while the disk is full.
    std::ofstream(dir.path() + "/memosd.conf") << "[search]\nsnapshot_interval_s = 1\n";
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
