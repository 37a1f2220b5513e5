// Imports of crafted archives (issue 13): an archive is the client's input,
// so nothing in it is trusted beyond its content. Its version counter
// cannot be brought to wrap, its uids and item ids are replaced by the
// importer's and fresh ones, the staging cube it fills is invisible to
// every client, and an archive over store.max_import_mb is refused.
#define BOOST_TEST_MODULE archive_import
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memcube/archive.h"
#include "tests/support/archive_ids.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/printing.h"

using memos::testing::Daemon;
using memos::testing::item_ids;
using memos::testing::why;
namespace store = memos::store;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What an archive says of itself, and of each of its items.
struct Crafted {
  std::uint64_t head_version = 0;  // 0: the number of items
  std::uint32_t writer = 4242;     // the uid the archive claims wrote it
  int items = 3;
  std::size_t text_bytes = 16;
  // Item i (from 1) names item i-1 as its source; the first names an id the
  // archive does not hold.
  bool chain_sources = false;
};

// An archive made with the real writer, for the embedder `probe` has.
std::string craft(const memos::Cube& probe, const Crafted& c) {
  store::ArchiveWriter w;
  std::string out;
  const std::int64_t now = now_ms();
  const std::uint64_t head = c.head_version ? c.head_version : std::uint64_t(c.items);
  w.header(&out);
  w.manifest({"crafted", probe.embedder, probe.dimension, now, head, now,
              static_cast<std::uint64_t>(c.items), "dense", "english"},
             &out);
  const std::uint64_t first_id = static_cast<std::uint64_t>(now - 60'000) << 16;
  for (int i = 0; i < c.items; ++i) {
    store::Item item;
    item.id = first_id + static_cast<std::uint64_t>(i);
    item.version = 1;
    item.text = "crafted memory " + std::to_string(i) + " " + std::string(c.text_bytes, 'x');
    item.created_at_ms = item.recorded_at_ms = item.valid_from_ms = now;
    item.provenance.writer = c.writer;
    if (c.chain_sources) item.provenance.sources = {i == 0 ? first_id - 7 : item.id - 1};
    item.cube_version = static_cast<std::uint64_t>(i) + 1;
    w.version(item, &out);
  }
  w.snapshot({"crafted-snap", head, now, static_cast<std::uint64_t>(c.items), c.writer}, &out);
  w.trailer(&out);
  return out;
}

std::function<std::size_t(char*, std::size_t)> reader(const std::string& bytes) {
  auto at = std::make_shared<std::size_t>(0);
  return [&bytes, at](char* buf, std::size_t n) {
    std::size_t take = std::min(n, bytes.size() - *at);
    std::memcpy(buf, bytes.data() + *at, take);
    *at += take;
    return take;
  };
}

bool no_cube_starts_with_a_dot(memos::Client& c) {
  auto cubes = c.cube_list();
  BOOST_REQUIRE(cubes.ok());
  return std::none_of(cubes->begin(), cubes->end(),
                      [](const memos::Cube& cube) { return cube.name.starts_with('.'); });
}

}  // namespace

// headVersion = 2^64-1 imported; after one add a snapshot recorded version 0
// and diffs were wrong.
BOOST_AUTO_TEST_CASE(a_crafted_version_counter_is_refused) {
  Daemon d;
  auto c = d.client();
  auto probe = c->cube_create("probe");
  BOOST_REQUIRE(probe.ok());

  for (std::uint64_t head : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1} << 60}) {
    std::string archive = craft(*probe, {.head_version = head});
    auto r = c->import_cube(reader(archive));
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST((r.error().code == memos::ErrorCode::bad_request), why(r));
    BOOST_TEST(r.error().message.find("head version") != std::string::npos, why(r));
  }
  // Item versions past the head the manifest gives.
  std::string past = craft(*probe, {.head_version = 2, .items = 3});
  auto r = c->import_cube(reader(past));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message.find("outside its cube's versions") != std::string::npos, why(r));
  BOOST_TEST(c->cube_list()->size() == 1u);  // nothing left behind
  BOOST_TEST(no_cube_starts_with_a_dot(*c));

  // A sound archive goes on counting from its head.
  std::string sound = craft(*probe, {.items = 3});
  auto imported = c->import_cube(reader(sound));
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  BOOST_TEST(imported->head_version == 3u);
  auto added = c->add("crafted", {"one more"});
  BOOST_REQUIRE(added.ok());
  BOOST_TEST(added->cube_version == 4u);
  auto snap = c->snapshot_create("crafted", "after");
  BOOST_REQUIRE(snap.ok());
  BOOST_TEST(snap->cube_version == 4u);
  auto diff = c->snapshot_diff("crafted", "crafted-snap", "after");
  BOOST_REQUIRE(diff.ok());
  BOOST_TEST(diff->size() == 1u);
}

// Imports kept the archive's "recorded by" uid (anything a crafted archive
// says) and its item ids (one archive imported twice gave two cubes the
// same ids, though memos(7) says ids are unique).
BOOST_AUTO_TEST_CASE(imports_are_recorded_as_the_importers_with_fresh_ids) {
  Daemon d;
  auto c = d.client();
  auto probe = c->cube_create("probe");
  BOOST_REQUIRE(probe.ok());
  const std::uint32_t me = c->status()->tenant_uid;
  std::string archive = craft(*probe, {.writer = 4242, .items = 4, .chain_sources = true});

  BOOST_REQUIRE(c->import_cube(reader(archive), "first").ok());
  BOOST_REQUIRE(c->import_cube(reader(archive), "second").ok());
  auto first = item_ids(*c, "first"), second = item_ids(*c, "second");
  BOOST_REQUIRE(first.size() == 4u);
  BOOST_REQUIRE(second.size() == 4u);
  for (auto id : first) {
    BOOST_TEST((std::find(second.begin(), second.end(), id) == second.end()), id);
  }
  const std::uint64_t archive_first = static_cast<std::uint64_t>(now_ms() - 60'000) << 16;
  BOOST_TEST(first.front() > archive_first);  // issued here, not the archive's

  for (std::size_t i = 0; i < first.size(); ++i) {
    auto h = c->history("first", first[i]);
    BOOST_REQUIRE_MESSAGE(h.ok(), why(h));
    for (const auto& v : *h) {
      BOOST_TEST(v.writer_uid == me);
      // Sources follow the items to their new ids; one outside the archive
      // does not exist here and is dropped.
      if (i == 0) {
        BOOST_TEST(v.sources.empty());
      } else {
        BOOST_REQUIRE(v.sources.size() == 1u);
        BOOST_TEST(v.sources.front() == first[i - 1]);
      }
    }
  }
  auto snaps = c->snapshot_list("first");
  BOOST_REQUIRE(snaps.ok() && snaps->size() == 1u);
  BOOST_TEST(snaps->front().created_by == me);
}

// ".import-N" showed in cube lists and took an add, which then appeared in
// the imported cube.
BOOST_AUTO_TEST_CASE(the_staging_cube_is_invisible_and_unwritable) {
  Daemon d;
  auto c = d.client();
  auto probe = c->cube_create("probe");
  BOOST_REQUIRE(probe.ok());
  // Large enough for several chunks.
  std::string archive = craft(*probe, {.items = 400, .text_bytes = 8000});

  std::mutex m;
  std::condition_variable cv;
  bool first_chunk_sent = false, go_on = false;
  std::size_t at = 0, calls = 0;
  auto paused = [&](char* buf, std::size_t n) -> std::size_t {
    std::unique_lock lock(m);
    // The SDK asks for the next chunk once the previous one is answered:
    // the second call means the first is in the staging cube.
    if (++calls == 2) {
      first_chunk_sent = true;
      cv.notify_all();
      cv.wait(lock, [&] { return go_on; });
    }
    std::size_t take = std::min(n, archive.size() - at);
    std::memcpy(buf, archive.data() + at, take);
    at += take;
    return take;
  };
  memos::Result<memos::Cube> imported = memos::Error{memos::ErrorCode::unknown, "not run"};
  std::thread importer([&] {
    auto own = d.client();
    imported = own->import_cube(paused, "landed");
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return first_chunk_sent; });
  }
  BOOST_TEST(no_cube_starts_with_a_dot(*c));
  BOOST_TEST(c->cube_list()->size() == 1u);
  for (const std::string staging : {".import-1", ".import-2", ".import-0"}) {
    auto added = c->add(staging, {"smuggled into the import"});
    BOOST_TEST(!added.ok(), staging);
    BOOST_TEST(!c->cube_show(staging).ok(), staging);
    BOOST_TEST(!c->search(staging, "crafted").ok(), staging);
    BOOST_TEST(!c->snapshot_create(staging, "peek").ok(), staging);
    BOOST_TEST(!c->cube_remove(staging, true).ok(), staging);
    BOOST_TEST(!c->cube_create(staging).ok(), staging);
  }
  {
    std::lock_guard lock(m);
    go_on = true;
  }
  cv.notify_all();
  importer.join();
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  BOOST_TEST(imported->live_items == 400u);
  auto hits = c->search("landed", "smuggled", {.k = 5, .mode = memos::SearchMode::lexical});
  BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
  BOOST_TEST(hits->empty());
}

// Archives had no size limit.
BOOST_AUTO_TEST_CASE(an_archive_over_the_import_limit_is_refused) {
  Daemon d("[store]\nmax_import_mb = 1\n");
  auto c = d.client();
  auto probe = c->cube_create("probe");
  BOOST_REQUIRE(probe.ok());
  std::string big = craft(*probe, {.items = 300, .text_bytes = 8000});  // ~2.4 MB
  BOOST_REQUIRE(big.size() > (1u << 20));
  auto r = c->import_cube(reader(big));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == memos::ErrorCode::too_large), why(r));
  BOOST_TEST(r.error().message.find("max_import_mb") != std::string::npos, why(r));
  BOOST_TEST(c->cube_list()->size() == 1u);
  BOOST_TEST(no_cube_starts_with_a_dot(*c));
  std::string small = craft(*probe, {.items = 10});
  auto ok = c->import_cube(reader(small));
  BOOST_TEST(ok.ok(), why(ok));
}
