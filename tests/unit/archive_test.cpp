#define BOOST_TEST_MODULE archive
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <random>

#include "memcube/archive.h"
#include "memcube/crc32c.h"
#include "memcube/record_codec.h"

using namespace memos::store;

namespace {

Item version_of(ItemId id, std::uint32_t version, std::string text) {
  Item item;
  item.id = id;
  item.version = version;
  item.text = std::move(text);
  item.tags = {"t" + std::to_string(id % 3)};
  item.meta = {{"k", std::to_string(version)}};
  item.valid_from_ms = 1000;
  item.created_at_ms = 1000;
  item.recorded_at_ms = 1000 + version;
  item.cube_version = id * 10 + version;
  item.state = version == 3 ? State::deleted : State::active;
  item.provenance = {7, "s", {1}};
  return item;
}

AccessStats strength_of(ItemId id) {
  AccessStats a;
  a.hits = id * 3;
  a.last_access_ms = 5000 + static_cast<std::int64_t>(id);
  a.strength = 1.5 + static_cast<double>(id);
  a.recalls = 0.25 * static_cast<double>(id);
  a.last_recall_ms = 4000 + static_cast<std::int64_t>(id);
  return a;
}

struct Sample {
  ArchiveManifest manifest{"notes", "hash-v1", 64, 5, 99, 6, 2, "dense", "french"};
  std::vector<Item> versions;
  std::vector<Snapshot> snapshots{{"v1", 12, 7, 1, 0}, {"v2", 31, 8, 2, 0}};
  std::string bytes;

  Sample() {
    for (ItemId id = 1; id <= 3; ++id) {
      for (std::uint32_t v = 1; v <= id; ++v) {
        versions.push_back(
            version_of(id, v, "item " + std::to_string(id) + " v" + std::to_string(v)));
      }
    }
    ArchiveWriter w;
    w.header(&bytes);
    w.manifest(manifest, &bytes);
    for (const auto& item : versions) {
      // Items 1 and 3 were read: their strength travels ahead of them.
      if (item.version == 1 && item.id != 2) w.access(item.id, strength_of(item.id), &bytes);
      w.version(item, &bytes);
    }
    for (const auto& snap : snapshots) w.snapshot(snap, &bytes);
    w.trailer(&bytes);
  }
};

struct Collected {
  std::vector<ArchiveManifest> manifests;
  std::vector<Item> versions;
  std::vector<Snapshot> snapshots;
  std::vector<std::pair<ItemId, AccessStats>> strengths;
  std::vector<std::pair<std::array<std::uint8_t, 32>, std::string>> blobs;  // whole files
  ArchiveReader::Sink sink() {
    return {[this](const ArchiveManifest& m) {
              manifests.push_back(m);
              return Status{};
            },
            [this](Item item) {
              versions.push_back(std::move(item));
              return Status{};
            },
            [this](Snapshot s) {
              snapshots.push_back(std::move(s));
              return Status{};
            },
            [this](ItemId id, const AccessStats& a) {
              strengths.emplace_back(id, a);
              return Status{};
            },
            [this](const BlobPiece& piece) {
              if (piece.offset == 0) blobs.emplace_back(piece.digest, "");
              blobs.back().second.append(piece.bytes);
              return Status{};
            }};
  }
};

// A parametric version naming a file of `size` bytes with digest byte `tag`.
Item adapter_version(ItemId id, std::uint32_t version, std::uint8_t tag, std::uint64_t size) {
  Item item = version_of(id, version, "adapter");
  item.state = State::active;
  item.tier = Tier::parametric;
  Parametric p;
  p.name = "style";
  p.blob.fill(tag);
  p.size = size;
  p.base_model = std::string(64, 'a');
  item.param = p;
  return item;
}

// Writes `file` as blob pieces of at most `piece` bytes.
void write_blob(ArchiveWriter& w, const Item& item, const std::string& file, std::size_t piece,
                std::string* out) {
  for (std::size_t at = 0; at < file.size(); at += piece) {
    w.blob_piece({item.param->blob, at, file.size(), std::string_view(file).substr(at, piece)},
                 out);
  }
}

// The sample's plaintext items, then an adapter with three versions: its
// first file, the same again (a scale change), a second file.
struct WithAdapters {
  Sample sample;
  std::string file_a = std::string(1000, 'a'), file_b = std::string(10, 'b');
  std::vector<Item> adapter{adapter_version(2, 1, 1, 1000), adapter_version(2, 2, 1, 1000),
                            adapter_version(2, 3, 2, 10)};
  std::string bytes;

  WithAdapters() {
    ArchiveWriter w;
    w.header(&bytes);
    w.manifest(sample.manifest, &bytes);
    for (const auto& item : sample.versions) w.version(item, &bytes);
    write_blob(w, adapter[0], file_a, 300, &bytes);
    w.version(adapter[0], &bytes);
    w.version(adapter[1], &bytes);
    write_blob(w, adapter[2], file_b, 300, &bytes);
    w.version(adapter[2], &bytes);
    w.trailer(&bytes);
  }
};

// Feeds `bytes` in pieces of `piece` bytes; returns the first error or finish().
Status read_all(std::string_view bytes, std::size_t piece, Collected* out) {
  ArchiveReader reader(1 << 20);
  auto sink = out->sink();
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    if (Status s = reader.feed(bytes.substr(at, piece), sink); !s.ok()) return s;
  }
  return reader.finish();
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_is_exact_in_any_chunking) {
  Sample sample;
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{64}, sample.bytes.size()}) {
    Collected got;
    Status s = read_all(sample.bytes, piece, &got);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_REQUIRE_EQUAL(got.manifests.size(), 1u);
    BOOST_TEST(got.manifests[0].cube_name == "notes");
    BOOST_TEST(got.manifests[0].head_version == 99u);
    BOOST_REQUIRE_EQUAL(got.versions.size(), sample.versions.size());
    for (std::size_t i = 0; i < got.versions.size(); ++i) {
      BOOST_TEST(encode_item(got.versions[i]) == encode_item(sample.versions[i]));
    }
    BOOST_REQUIRE_EQUAL(got.snapshots.size(), 2u);
    BOOST_TEST(got.snapshots[1].tag == "v2");
    BOOST_TEST(got.snapshots[1].cube_version == 31u);
    BOOST_REQUIRE_EQUAL(got.strengths.size(), 2u);
    BOOST_TEST(got.strengths[0].first == 1u);
    BOOST_TEST((got.strengths[0].second == strength_of(1)));
    BOOST_TEST(got.strengths[1].first == 3u);
    BOOST_TEST((got.strengths[1].second == strength_of(3)));
  }
}

BOOST_AUTO_TEST_CASE(a_version_1_archive_is_still_read) {
  // As memosd wrote archives before strengths: format 1, no kind 4 frames.
  Sample sample;
  std::string head = "MEMOSARC";
  head += std::string("\x01\0\0\0\0\0\0\0", 8);
  // Re-create the writer's running checksum over the edited header.
  ArchiveWriter::State state;
  state.crc = memos::store::crc32c(head.data(), head.size());
  ArchiveWriter rest(state);
  std::string bytes = head;
  rest.manifest(sample.manifest, &bytes);
  for (const auto& item : sample.versions) rest.version(item, &bytes);
  rest.trailer(&bytes);
  Collected got;
  Status s = read_all(bytes, 4096, &got);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(got.versions.size() == sample.versions.size());
  BOOST_TEST(got.strengths.empty());
  // A format from the future is refused, saying which versions are read.
  std::string future = sample.bytes;
  future[8] = 4;
  Status refused = read_all(future, 4096, &got);
  BOOST_TEST(refused.message.find("reads versions 1 to 3") != std::string::npos, refused.message);
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  Sample sample;
  for (std::size_t cut = 0; cut < sample.bytes.size(); ++cut) {
    Collected got;
    BOOST_TEST((read_all(sample.bytes.substr(0, cut), 13, &got).code == Errc::corrupt), cut);
  }
}

BOOST_AUTO_TEST_CASE(every_bit_flip_is_refused) {
  Sample sample;
  for (std::size_t i = 0; i < sample.bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = sample.bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      Collected got;
      BOOST_TEST((read_all(flipped, 4096, &got).code == Errc::corrupt),
                 "byte " << i << " bit " << bit);
    }
  }
}

BOOST_AUTO_TEST_CASE(hostile_archives_are_refused) {
  Sample sample;
  Collected got;
  // Bytes after the trailer.
  BOOST_TEST((read_all(sample.bytes + "x", 4096, &got).code == Errc::corrupt));
  // A frame announcing 4 GiB is refused before any buffering.
  {
    std::string huge = sample.bytes.substr(0, 16);
    huge += std::string("\x02\xff\xff\xff\xff\0\0\0\0", 9);
    ArchiveReader reader(1 << 20);
    BOOST_TEST((reader.feed(huge, got.sink()).code == Errc::corrupt));
  }
  // Strengths out of place: for an earlier item, twice, before the wrong
  // item's version, of no item, impossible values.
  {
    auto archive = [&](auto&& body) {
      std::string bytes;
      ArchiveWriter w;
      w.header(&bytes);
      w.manifest(sample.manifest, &bytes);
      body(w, bytes);
      w.trailer(&bytes);
      return bytes;
    };
    AccessStats nan_strength = strength_of(1);
    nan_strength.strength = std::nan("");
    AccessStats weak = strength_of(1);
    weak.strength = 0.5;
    const std::string cases[] = {
        archive([&](ArchiveWriter& w, std::string& b) {
          w.version(sample.versions[0], &b);
          w.access(1, strength_of(1), &b);  // after its own version
          w.version(sample.versions[1], &b);
        }),
        archive([&](ArchiveWriter& w, std::string& b) {
          w.access(1, strength_of(1), &b);
          w.access(1, strength_of(1), &b);
          w.version(sample.versions[0], &b);
        }),
        archive([&](ArchiveWriter& w, std::string& b) {
          w.access(2, strength_of(2), &b);
          w.version(sample.versions[0], &b);  // item 1
        }),
        archive([&](ArchiveWriter& w, std::string& b) {
          w.version(sample.versions[0], &b);
          w.access(9, strength_of(9), &b);  // then the trailer
        }),
        archive([&](ArchiveWriter& w, std::string& b) {
          w.access(1, nan_strength, &b);
          w.version(sample.versions[0], &b);
        }),
        archive([&](ArchiveWriter& w, std::string& b) {
          w.access(1, weak, &b);
          w.version(sample.versions[0], &b);
        }),
    };
    for (const auto& bytes : cases) {
      Collected bad;
      BOOST_TEST((read_all(bytes, 4096, &bad).code == Errc::corrupt));
    }
  }
  // Versions out of order, a missing manifest, unknown kinds, random bytes.
  {
    std::string bytes;
    ArchiveWriter w;
    w.header(&bytes);
    w.manifest(sample.manifest, &bytes);
    w.version(sample.versions[1], &bytes);
    w.version(sample.versions[0], &bytes);
    w.trailer(&bytes);
    BOOST_TEST((read_all(bytes, 4096, &got).code == Errc::corrupt));
  }
  {
    std::string bytes;
    ArchiveWriter w;
    w.header(&bytes);
    w.version(sample.versions[0], &bytes);
    w.trailer(&bytes);
    BOOST_TEST((read_all(bytes, 4096, &got).code == Errc::corrupt));
  }
  {
    std::string bytes;
    ArchiveWriter w;
    w.header(&bytes);
    w.manifest(sample.manifest, &bytes);
    w.version(version_of(5, 2, "starts at version 2"), &bytes);
    w.trailer(&bytes);
    BOOST_TEST((read_all(bytes, 4096, &got).code == Errc::corrupt));
  }
  std::mt19937_64 rng(11);
  for (int round = 0; round < 500; ++round) {
    std::string junk = sample.bytes.substr(0, rng() % 40);
    for (int i = 0; i < 64; ++i) junk.push_back(static_cast<char>(rng()));
    BOOST_TEST((read_all(junk, 17, &got).code == Errc::corrupt));
  }
  // A sink's error stops the reader.
  ArchiveReader refusing(1 << 20);
  ArchiveReader::Sink no{[](const ArchiveManifest&) {
                           return Status{Errc::conflict, "no"};
                         },
                         [](Item) { return Status{}; },
                         [](Snapshot) { return Status{}; },
                         {},
                         {}};
  BOOST_TEST((refusing.feed(sample.bytes, no).code == Errc::conflict));
}

BOOST_AUTO_TEST_CASE(adapters_travel_with_their_files_in_any_chunking) {
  WithAdapters sample;
  for (std::size_t piece : {std::size_t{1}, std::size_t{13}, sample.bytes.size()}) {
    Collected got;
    Status s = read_all(sample.bytes, piece, &got);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_REQUIRE_EQUAL(got.versions.size(), sample.sample.versions.size() + 3);
    const Item& last = got.versions.back();
    BOOST_TEST((last.tier == Tier::parametric));
    BOOST_TEST((*last.param == *sample.adapter[2].param));
    // Two files, each once, whole: the second version named the first's.
    BOOST_REQUIRE_EQUAL(got.blobs.size(), 2u);
    BOOST_TEST((got.blobs[0].first == sample.adapter[0].param->blob));
    BOOST_TEST(got.blobs[0].second == sample.file_a);
    BOOST_TEST(got.blobs[1].second == sample.file_b);
  }
  for (std::size_t cut = 0; cut < sample.bytes.size(); cut += 7) {
    Collected got;
    BOOST_TEST((read_all(sample.bytes.substr(0, cut), 64, &got).code == Errc::corrupt), cut);
  }
}

BOOST_AUTO_TEST_CASE(adapters_out_of_place_are_refused) {
  Sample sample;
  const std::string file(100, 'f');
  const Item a1 = adapter_version(2, 1, 1, file.size());
  auto archive = [&](auto&& body, std::uint32_t format = kArchiveFormat) {
    std::string bytes;
    ArchiveWriter w;
    w.header(&bytes);
    bytes[8] = static_cast<char>(format);
    ArchiveWriter rest({memos::store::crc32c(bytes.data(), bytes.size()), 0, 0, 0});
    rest.manifest(sample.manifest, &bytes);
    body(rest, bytes);
    rest.trailer(&bytes);
    return bytes;
  };
  Item other_file = a1;
  other_file.param->blob.fill(9);
  Item wrong_size = a1;
  wrong_size.param->size = 99;
  Item muddled = sample.versions[0];
  muddled.param = a1.param;
  Item switched = adapter_version(2, 2, 2, file.size());  // version 2 names a file not sent
  const std::pair<const char*, std::string> cases[] = {
      {"file not carried", archive([&](ArchiveWriter& w, std::string& b) { w.version(a1, &b); })},
      {"file no version names",
       archive([&](ArchiveWriter& w, std::string& b) { write_blob(w, a1, file, 40, &b); })},
      {"version inside the file", archive([&](ArchiveWriter& w, std::string& b) {
         w.blob_piece({a1.param->blob, 0, file.size(), std::string_view(file).substr(0, 50)}, &b);
         w.version(a1, &b);
       })},
      {"a gap", archive([&](ArchiveWriter& w, std::string& b) {
         w.blob_piece({a1.param->blob, 0, file.size(), std::string_view(file).substr(0, 50)}, &b);
         w.blob_piece({a1.param->blob, 60, file.size(), std::string_view(file).substr(60)}, &b);
         w.version(a1, &b);
       })},
      {"past its size", archive([&](ArchiveWriter& w, std::string& b) {
         w.blob_piece({a1.param->blob, 0, 10, file}, &b);
         w.version(a1, &b);
       })},
      {"another file's pieces", archive([&](ArchiveWriter& w, std::string& b) {
         w.blob_piece({a1.param->blob, 0, file.size(), std::string_view(file).substr(0, 50)}, &b);
         w.blob_piece({other_file.param->blob, 50, file.size(), std::string_view(file).substr(50)},
                      &b);
         w.version(a1, &b);
       })},
      {"names another file", archive([&](ArchiveWriter& w, std::string& b) {
         write_blob(w, a1, file, 40, &b);
         w.version(other_file, &b);
       })},
      {"names another size", archive([&](ArchiveWriter& w, std::string& b) {
         write_blob(w, a1, file, 40, &b);
         w.version(wrong_size, &b);
       })},
      {"a later version names a file not sent", archive([&](ArchiveWriter& w, std::string& b) {
         write_blob(w, a1, file, 40, &b);
         w.version(a1, &b);
         w.version(switched, &b);
       })},
      {"plaintext after adapters", archive([&](ArchiveWriter& w, std::string& b) {
         write_blob(w, a1, file, 40, &b);
         w.version(a1, &b);
         w.version(version_of(3, 1, "late"), &b);
       })},
      {"strength of an adapter", archive([&](ArchiveWriter& w, std::string& b) {
         write_blob(w, a1, file, 40, &b);
         w.access(2, strength_of(2), &b);
         w.version(a1, &b);
       })},
      {"muddled tier", archive([&](ArchiveWriter& w, std::string& b) { w.version(muddled, &b); })},
      {"an adapter in format 2", archive(
                                     [&](ArchiveWriter& w, std::string& b) {
                                       write_blob(w, a1, file, 40, &b);
                                       w.version(a1, &b);
                                     },
                                     2)},
  };
  for (const auto& [what, bytes] : cases) {
    Collected got;
    Status s = read_all(bytes, 4096, &got);
    BOOST_TEST((s.code == Errc::corrupt), what << ": " << s.message);
  }
  // The same adapter, well formed, reads.
  Collected good;
  Status s = read_all(archive([&](ArchiveWriter& w, std::string& b) {
                        write_blob(w, a1, file, 40, &b);
                        w.version(a1, &b);
                      }),
                      4096, &good);
  BOOST_TEST(s.ok(), s.message);
}
