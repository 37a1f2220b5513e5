// The dense retriever's snapshot writer and reader (snapshot_file.h) on
// their own: the streamed writer produces the very bytes the whole-file
// encoder it replaced did, and a failed save leaves the previous snapshot
// and no .tmp. The round trips and the refusals of damaged files are in
// faiss_retriever_test.cpp.
#define BOOST_TEST_MODULE dense_snapshot
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "plugins/faiss-retriever/dense_collection.h"
#include "plugins/faiss-retriever/dense_index.h"
#include "plugins/faiss-retriever/durable_file.h"
#include "plugins/faiss-retriever/snapshot_file.h"
#include "tests/support/memosd_process.h"

using namespace memos::faiss_retriever;
using memos::retrieval::Attributes;
using memos::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// ---- the encoder of format 2 as it was before streaming (the reference) -------

struct OldSlot {
  std::uint64_t id = 0;
  bool dead = false;
  Attributes attributes;
};

struct OldSnapshot {
  std::uint64_t collection = 0;
  std::uint32_t dimension = 0;
  IndexKind kind = IndexKind::exact;
  std::uint64_t version = 0;
  std::vector<OldSlot> slots;
  std::vector<float> vectors;
  std::vector<std::uint8_t> faiss_index;
  std::vector<OldSlot> fresh;
  std::vector<float> fresh_vectors;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T value) {
    auto at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  void put_bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    put_bytes(s.data(), s.size());
  }

 private:
  std::vector<std::uint8_t>& out_;
};

void put_attributes(ByteWriter& w, const Attributes& a) {
  w.put(static_cast<std::uint32_t>(a.tags.size()));
  for (const auto& t : a.tags) w.put_string(t);
  w.put(static_cast<std::uint32_t>(a.meta.size()));
  for (const auto& [key, value] : a.meta) {
    w.put_string(key);
    w.put_string(value);
  }
  w.put_string(a.tier);
  w.put_string(a.state);
  w.put(a.valid_from_ms);
  w.put(a.valid_to_ms);
  w.put(a.recorded_at_ms);
  w.put(a.expires_at_ms);
  w.put(a.importance);
}

std::uint32_t crc32c_bitwise(const std::uint8_t* p, std::size_t size) {
  std::uint32_t crc = ~0u;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

std::vector<std::uint8_t> old_encode(const OldSnapshot& s) {
  constexpr std::size_t kHeaderSize = 48;
  std::vector<std::uint8_t> bytes(kHeaderSize);
  ByteWriter body(bytes);
  for (const auto& slot : s.slots) {
    body.put(slot.id);
    body.put(static_cast<std::uint8_t>(slot.dead ? 1 : 0));
    if (!slot.dead) put_attributes(body, slot.attributes);
  }
  body.put(static_cast<std::uint64_t>(s.fresh.size()));
  for (const auto& doc : s.fresh) {
    body.put(doc.id);
    put_attributes(body, doc.attributes);
  }
  body.put_bytes(s.fresh_vectors.data(), s.fresh_vectors.size() * sizeof(float));
  if (s.kind == IndexKind::exact) {
    body.put_bytes(s.vectors.data(), s.vectors.size() * sizeof(float));
  } else {
    body.put_bytes(s.faiss_index.data(), s.faiss_index.size());
  }
  std::uint64_t body_size = bytes.size() - kHeaderSize;
  std::vector<std::uint8_t> header;
  ByteWriter h(header);
  h.put_bytes("MFRS", 4);
  h.put(std::uint32_t{2});
  h.put(s.collection);
  h.put(s.dimension);
  h.put(static_cast<std::uint32_t>(s.kind));
  h.put(s.version);
  h.put(static_cast<std::uint64_t>(s.slots.size()));
  h.put(body_size);
  std::memcpy(bytes.data(), header.data(), kHeaderSize);
  ByteWriter trailer(bytes);
  trailer.put(crc32c_bitwise(bytes.data(), bytes.size()));
  return bytes;
}

// What DenseIndex::to_snapshot filled in before streaming, from the view
// that replaced it.
OldSnapshot old_snapshot_of(const SnapshotView& v) {
  OldSnapshot s;
  s.collection = v.collection;
  s.dimension = v.dimension;
  s.kind = v.kind;
  s.version = v.version;
  for (std::size_t p = 0; p < v.slots; ++p) {
    auto slot = v.slot(p);
    s.slots.push_back({slot.id, slot.dead, slot.dead ? Attributes{} : *slot.attributes});
  }
  for (std::size_t i = 0; i < v.fresh_ids.size(); ++i) {
    s.fresh.push_back({v.fresh_ids[i], false, v.fresh_attributes[i]});
  }
  s.fresh_vectors.assign(v.fresh_vectors.begin(), v.fresh_vectors.end());
  if (v.kind == IndexKind::exact) {
    s.vectors.assign(v.vectors.begin(), v.vectors.end());
  } else {
    faiss::VectorIOWriter writer;
    faiss::write_index(v.faiss_index, &writer);
    s.faiss_index = std::move(writer.data);
  }
  return s;
}

// ---- documents ------------------------------------------------------------------

std::vector<float> random_vector(std::mt19937_64& rng, std::uint32_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

// Every attribute set, differently per document.
Attributes attributes_for(std::uint64_t id) {
  Attributes a;
  for (std::uint64_t t = 0; t < id % 4; ++t) a.tags.push_back("tag" + std::to_string(t));
  if (id % 3 == 0) a.meta = {{"source", "doc" + std::to_string(id)}, {"lang", "en"}};
  a.tier = id % 5 == 0 ? "activation" : "plaintext";
  a.state = id % 7 == 0 ? "archived" : "active";
  a.valid_from_ms = static_cast<std::int64_t>(id) * 10;
  a.valid_to_ms = id % 2 ? 0 : static_cast<std::int64_t>(id) * 1000;
  a.recorded_at_ms = static_cast<std::int64_t>(id) + 5;
  a.expires_at_ms = id % 11 == 0 ? 99999 : 0;
  a.importance = static_cast<float>(id % 10) / 10.0f;
  return a;
}

void upsert(DenseIndex& index, std::uint64_t first, std::size_t count, std::mt19937_64& rng) {
  std::vector<std::uint64_t> ids;
  std::vector<float> vectors;
  std::vector<Attributes> attributes;
  for (std::uint64_t id = first; id < first + count; ++id) {
    ids.push_back(id);
    auto v = random_vector(rng, index.dimension());
    vectors.insert(vectors.end(), v.begin(), v.end());
    attributes.push_back(attributes_for(id));
  }
  index.upsert(ids, vectors, std::move(attributes));
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Writes `index` as collection 7 at version 42 with the streaming writer
// and checks the file is what the old encoder made of the same contents,
// and that it loads back.
void check_same_bytes(const DenseIndex& index, const IndexSettings& settings) {
  TempDir dir;
  std::string folder = dir.path() + "/index";
  SnapshotView view = index.snapshot_view();
  view.collection = 7;
  view.version = 42;
  {
    DurableFile file;
    BOOST_REQUIRE_EQUAL(file.create(folder, snapshot_path(folder, 7)), "");
    BOOST_REQUIRE_EQUAL(write_snapshot(view, file), "");
    BOOST_REQUIRE_EQUAL(file.commit(), "");
  }
  auto written = read_file(snapshot_path(folder, 7));
  auto expected = old_encode(old_snapshot_of(view));
  BOOST_TEST_MESSAGE("snapshot: " << written.size() << " bytes");
  BOOST_REQUIRE_EQUAL(written.size(), expected.size());
  BOOST_TEST((written == expected));
  BOOST_TEST(!fs::exists(snapshot_path(folder, 7) + ".tmp"));

  Snapshot snapshot;
  BOOST_REQUIRE_EQUAL(read_snapshot(folder, 7, index.dimension(), &snapshot), "");
  BOOST_TEST(snapshot.version == 42u);
  std::string why;
  auto loaded = DenseIndex::from_snapshot(std::move(snapshot), settings, &why);
  BOOST_REQUIRE_MESSAGE(loaded, why);
  BOOST_TEST(loaded->documents() == index.documents());
  BOOST_TEST(loaded->tombstones() == index.tombstones());
  BOOST_TEST(loaded->fresh_documents() == index.fresh_documents());
}

}  // namespace

BOOST_AUTO_TEST_CASE(streamed_exact_snapshot_is_the_old_encoding) {
  std::mt19937_64 rng(1);
  IndexSettings settings;
  DenseIndex index(12, IndexKind::exact, settings);
  upsert(index, 1, 60, rng);
  index.remove(4);  // tombstones are written too
  index.remove(17);
  upsert(index, 30, 5, rng);  // replaced: more tombstones
  check_same_bytes(index, settings);
}

BOOST_AUTO_TEST_CASE(streamed_hnsw_snapshot_is_the_old_encoding) {
  std::mt19937_64 rng(2);
  IndexSettings settings;
  settings.bulk_min = 100;  // the first 300 go straight into the graph
  DenseIndex index(16, IndexKind::hnsw, settings);
  upsert(index, 1, 300, rng);
  upsert(index, 1000, 25, rng);  // into the buffer
  upsert(index, 10, 3, rng);     // replaced: graph tombstones, buffered again
  index.remove(20);
  index.remove(1003);
  BOOST_REQUIRE(index.fresh_documents() > 0);
  BOOST_REQUIRE(index.tombstones() > 0);
  check_same_bytes(index, settings);
}

BOOST_AUTO_TEST_CASE(an_empty_collection_is_the_old_encoding) {
  IndexSettings settings;
  DenseIndex exact(4, IndexKind::exact, settings);
  check_same_bytes(exact, settings);
  DenseIndex hnsw(4, IndexKind::hnsw, settings);
  check_same_bytes(hnsw, settings);
}

// A save that cannot write (the file size limit stands in for a full
// disk, and works for root too) reports why, keeps the previous snapshot
// as it was and leaves no .tmp, whether it fails while streaming the index
// (under the lock) or when flushing the last buffer (at commit).
BOOST_AUTO_TEST_CASE(a_failed_save_keeps_the_old_snapshot) {
  TempDir dir;
  std::string folder = dir.path() + "/index";
  IndexSettings settings;
  settings.hnsw_threshold = 100;
  settings.bulk_min = 100;
  const std::uint32_t dim = 128;
  std::mt19937_64 rng(3);
  DenseCollection c(9, dim, settings);
  auto add = [&](std::uint64_t first, std::size_t count, std::uint64_t version) {
    std::vector<DocumentChange> docs;
    for (std::uint64_t id = first; id < first + count; ++id) {
      docs.push_back({id, random_vector(rng, dim), attributes_for(id), false});
    }
    BOOST_REQUIRE_EQUAL(c.index(std::move(docs), version), "");
    c.wait_for_rebuild();
    c.wait_for_merge();
  };
  add(1, 50, 1);
  CollectionState state;
  BOOST_REQUIRE_EQUAL(c.save(folder, &state), "");
  std::string path = snapshot_path(folder, 9);
  auto old_bytes = read_file(path);
  BOOST_REQUIRE(old_bytes.size() > 1000u);

  // Writes past the limit fail with EFBIG instead of raising SIGXFSZ.
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  auto failed_save = [&](rlim_t limit) {
    rlimit old_limit{};
    BOOST_REQUIRE_EQUAL(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    rlimit small = old_limit;
    small.rlim_cur = limit;
    BOOST_REQUIRE_EQUAL(setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string why = c.save(folder, &state);
    BOOST_REQUIRE_EQUAL(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    BOOST_TEST_MESSAGE("limit " << limit << ": " << why);
    BOOST_TEST(why.find("cannot write") != std::string::npos, why);
    BOOST_TEST((read_file(path) == old_bytes));
    BOOST_TEST(!fs::exists(path + ".tmp"));
  };
  // Small: the whole file is in the writer's buffer until commit.
  add(60, 10, 2);
  failed_save(old_bytes.size() / 2);
  // HNSW, its vectors alone 1.3 MB: past the buffer, so the failure comes
  // while FAISS writes (under the lock), as an exception.
  add(100, 2500, 3);
  BOOST_REQUIRE((c.stats().kind == IndexKind::hnsw));
  failed_save(100000);
  std::signal(SIGXFSZ, old_handler);

  // A folder it cannot create its .tmp in (root may write anywhere).
  if (geteuid() != 0) {
    BOOST_REQUIRE_EQUAL(::chmod(folder.c_str(), 0500), 0);
    std::string why = c.save(folder, &state);
    ::chmod(folder.c_str(), 0700);
    BOOST_TEST(why.find("cannot create") != std::string::npos, why);
    BOOST_TEST((read_file(path) == old_bytes));
    BOOST_TEST(!fs::exists(path + ".tmp"));
  }

  // With room again, the save goes through and loads.
  BOOST_REQUIRE_EQUAL(c.save(folder, &state), "");
  BOOST_TEST(!fs::exists(path + ".tmp"));
  std::string detail;
  auto again = DenseCollection::open(9, dim, settings, folder, &detail);
  BOOST_TEST(detail == "loaded snapshot");
  BOOST_TEST(again->stats().documents == 2560u);
  BOOST_TEST(again->stats().version == 3u);
}

// A save after a drop is refused and writes nothing: it must not bring
// back the file the drop deleted.
BOOST_AUTO_TEST_CASE(a_dropped_collection_does_not_save) {
  TempDir dir;
  std::string folder = dir.path() + "/index";
  DenseCollection c(3, 4, IndexSettings{});
  c.mark_dropped();
  CollectionState state;
  BOOST_TEST(c.save(folder, &state).find("was dropped") != std::string::npos);
  BOOST_TEST(!fs::exists(snapshot_path(folder, 3)));
  BOOST_TEST(!fs::exists(snapshot_path(folder, 3) + ".tmp"));
}
