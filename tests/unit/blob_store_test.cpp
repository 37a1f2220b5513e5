#define BOOST_TEST_MODULE blob_store
#include <sys/stat.h>
#include <utime.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "memcube/blob_store.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

using namespace memos::store;
using memos::testing::open_blobs;
using memos::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void age(const std::string& path, int seconds) {
  struct stat st {};
  BOOST_REQUIRE(stat(path.c_str(), &st) == 0);
  utimbuf times{st.st_atime - seconds, st.st_mtime - seconds};
  BOOST_REQUIRE(utime(path.c_str(), &times) == 0);
}

std::string path_of(const std::string& dir, const BlobId& id) {
  std::string hex = to_hex(id);
  return dir + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

}  // namespace

BOOST_AUTO_TEST_CASE(content_addressed_round_trip) {
  TempDir dir;
  auto blobs = open_blobs(dir.path() + "/blobs");
  std::string payload(1 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  BlobId id, again;
  BOOST_REQUIRE(blobs->put(payload, &id).ok());
  BOOST_TEST(to_hex(id) == to_hex(sha256(payload)));
  BOOST_REQUIRE(blobs->put(payload, &again).ok());  // stored once
  BOOST_TEST(to_hex(again) == to_hex(id));
  std::string back;
  BOOST_REQUIRE(blobs->get(id, &back).ok());
  BOOST_TEST((back == payload));
  BOOST_TEST(fs::is_empty(dir.path() + "/blobs/tmp"));
  // The SHA-256 of "abc" is the standard test vector.
  BOOST_TEST(to_hex(sha256("abc")) ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BlobId parsed;
  BOOST_TEST(from_hex(to_hex(id), &parsed));
  BOOST_TEST(to_hex(parsed) == to_hex(id));
  BOOST_TEST(!from_hex("xyz", &parsed));
  BOOST_TEST(!from_hex(std::string(64, 'G'), &parsed));
}

// A file is stored by copy (put_file: the file stays) or taken whole
// (take_file: renamed in, its bytes not written again, the file gone); a
// link, a folder or a missing file is refused and left as it was.
BOOST_AUTO_TEST_CASE(files_are_copied_in_or_taken_in_whole) {
  TempDir dir;
  auto blobs = open_blobs(dir.path() + "/blobs");
  std::string payload(3 << 20, '\0');  // several of the read's blocks
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 17 + 3);
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string path = dir.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
    return path;
  };
  BlobId id{};
  std::uint64_t size = 0;
  const std::string copied = write("copied", payload);
  BOOST_REQUIRE(blobs->put_file(copied, &id, &size).ok());
  BOOST_TEST(size == payload.size());
  BOOST_TEST(to_hex(id) == to_hex(sha256(payload)));
  BOOST_TEST(fs::exists(copied));

  const std::string other = payload + "more";
  const std::string taken = write("taken", other);
  BOOST_REQUIRE(blobs->take_file(taken, &id, &size).ok());
  BOOST_TEST(!fs::exists(taken));
  BOOST_TEST(size == other.size());
  BOOST_TEST(to_hex(id) == to_hex(sha256(other)));
  std::string back;
  BOOST_REQUIRE(blobs->get(id, &back).ok());
  BOOST_TEST((back == other));
  struct stat st {};
  BOOST_REQUIRE(stat(path_of(dir.path() + "/blobs", id).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);  // its owner's alone, as put() makes it
  // The same bytes again: the file goes, the blob stays.
  const std::string again = write("again", other);
  BOOST_REQUIRE(blobs->take_file(again, &id, &size).ok());
  BOOST_TEST(!fs::exists(again));
  BOOST_REQUIRE(blobs->get(id, &back).ok());
  BOOST_TEST((back == other));
  BOOST_TEST(fs::is_empty(dir.path() + "/blobs/tmp"));

  fs::create_symlink(copied, dir.path() + "/link");
  fs::create_directory(dir.path() + "/folder");
  for (const char* name : {"link", "folder"}) {
    const std::string path = dir.path() + "/" + name;
    BOOST_TEST((blobs->put_file(path, &id, &size).code == Errc::io), name);
    BOOST_TEST((blobs->take_file(path, &id, &size).code == Errc::io), name);
    BOOST_TEST(fs::exists(fs::symlink_status(path)), name);
  }
  BOOST_TEST((blobs->take_file(dir.path() + "/none", &id, &size).code == Errc::not_found));
  BOOST_TEST(to_hex(std::string_view("abc\xff")) == "616263ff");
}

BOOST_AUTO_TEST_CASE(damaged_and_missing_blobs_are_reported) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  BlobId id;
  BOOST_REQUIRE(blobs->put("a KV state, say", &id).ok());
  std::string path = path_of(dir.path(), id);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('#');
  }
  std::string back;
  BOOST_TEST((blobs->get(id, &back).code == Errc::corrupt));
  fs::resize_file(path, 2);  // torn
  BOOST_TEST((blobs->get(id, &back).code == Errc::corrupt));
  fs::remove(path);
  BOOST_TEST((blobs->get(id, &back).code == Errc::not_found));
  BOOST_TEST(!blobs->contains(id));
  BOOST_TEST((blobs->discard_if_damaged(id).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(a_damaged_blob_is_discarded_so_putting_it_again_repairs_it) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  BlobId id;
  BOOST_REQUIRE(blobs->put("a KV state, say", &id).ok());
  BOOST_TEST(blobs->discard_if_damaged(id).ok());  // a sound blob stays
  BOOST_TEST(blobs->contains(id));
  {
    std::fstream f(path_of(dir.path(), id), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('#');
  }
  BlobId again;
  BOOST_REQUIRE(blobs->put("a KV state, say", &again).ok());  // present: not rewritten
  std::string back;
  BOOST_TEST((blobs->get(id, &back).code == Errc::corrupt));
  BOOST_TEST((blobs->discard_if_damaged(id).code == Errc::corrupt));
  BOOST_TEST(!blobs->contains(id));
  BOOST_REQUIRE(blobs->put("a KV state, say", &again).ok());
  BOOST_REQUIRE(blobs->get(id, &back).ok());
  BOOST_TEST(back == "a KV state, say");
}

BOOST_AUTO_TEST_CASE(leftover_temporary_files_are_removed_at_open) {
  TempDir dir;
  open_blobs(dir.path());
  std::ofstream(dir.path() + "/tmp/half-written.1.2") << "partial";
  open_blobs(dir.path());
  BOOST_TEST(fs::is_empty(dir.path() + "/tmp"));
}

BOOST_AUTO_TEST_CASE(garbage_collection_keeps_referenced_and_young_blobs) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  BlobId kept, young, old;
  BOOST_REQUIRE(blobs->put("referenced", &kept).ok());
  BOOST_REQUIRE(blobs->put("unreferenced but new", &young).ok());
  BOOST_REQUIRE(blobs->put("unreferenced and old", &old).ok());
  age(path_of(dir.path(), kept), 7200);
  age(path_of(dir.path(), old), 7200);
  std::size_t removed = 0;
  auto referenced = [&](const BlobId& id) { return id == kept; };
  BOOST_REQUIRE(blobs->collect_garbage(referenced, std::chrono::hours(1), &removed).ok());
  BOOST_TEST(removed == 1u);
  BOOST_TEST(blobs->contains(kept));
  BOOST_TEST(blobs->contains(young));
  BOOST_TEST(!blobs->contains(old));
}

BOOST_AUTO_TEST_CASE(references_are_counted_in_the_store) {
  TempDir dir;
  Status s;
  auto store = Store::open(dir.path(), StoreOptions{}, &s);
  BOOST_REQUIRE_MESSAGE(store, s.message);
  BlobId id = sha256("payload");
  auto write = [&](auto&& fn) {
    std::optional<WriteTxn> txn;
    BOOST_REQUIRE(store->begin_write(&txn).ok());
    Status r = fn(*txn);
    if (r.ok()) r = txn->commit();
    return r;
  };
  auto refs = [&] {
    std::optional<ReadTxn> r;
    BOOST_REQUIRE(store->begin_read(&r).ok());
    std::uint64_t n = 99;
    BOOST_REQUIRE(r->blob_refs(id, &n).ok());
    return n;
  };
  BOOST_TEST(refs() == 0u);
  BOOST_REQUIRE(write([&](WriteTxn& t) { return t.blob_ref(id, 7); }).ok());
  BOOST_REQUIRE(write([&](WriteTxn& t) { return t.blob_ref(id, 7); }).ok());
  BOOST_TEST(refs() == 2u);
  BOOST_TEST((write([&](WriteTxn& t) { return t.blob_ref(id, 8); }).code == Errc::corrupt));
  BOOST_REQUIRE(write([&](WriteTxn& t) { return t.blob_unref(id); }).ok());
  BOOST_REQUIRE(write([&](WriteTxn& t) { return t.blob_unref(id); }).ok());
  BOOST_TEST(refs() == 0u);
  BOOST_TEST((write([&](WriteTxn& t) { return t.blob_unref(id); }).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(an_upload_in_pieces_lands_whole_or_not_at_all) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  std::string bytes;
  for (int i = 0; i < 5000; ++i) bytes.push_back(static_cast<char>(i * 31));
  const BlobId id = sha256(bytes);
  std::unique_ptr<BlobUpload> upload;
  BOOST_REQUIRE(blobs->begin_upload(id, bytes.size(), &upload).ok());
  BOOST_TEST(upload->write(0, std::string_view(bytes).substr(0, 2000)).ok());
  // A transaction run again feeds the same pieces: skipped, not doubled.
  BOOST_TEST(upload->write(0, std::string_view(bytes).substr(0, 2000)).ok());
  BOOST_TEST(upload->write(1000, std::string_view(bytes).substr(1000, 1500)).ok());
  BOOST_TEST(upload->written() == 2500u);
  // A gap, and bytes past the size, are refused.
  BOOST_TEST((upload->write(2600, "x").code == Errc::corrupt));
  BOOST_TEST((upload->write(2500, std::string(2501, 'x')).code == Errc::corrupt));
  // Not in place until finished, and finish() refuses a short blob.
  BOOST_TEST(!blobs->contains(id));
  BOOST_TEST((upload->finish().code == Errc::corrupt));
  BOOST_TEST(upload->write(2500, std::string_view(bytes).substr(2500)).ok());
  BOOST_TEST(upload->finish().ok());
  BOOST_TEST(upload->finish().ok());  // repeated
  std::string back;
  BOOST_TEST(blobs->get(id, &back).ok());
  BOOST_TEST((back == bytes));
  std::uint64_t size = 0;
  BOOST_TEST(blobs->check(id, &size).ok());
  BOOST_TEST(size == bytes.size());
  // read_at() serves any range; none past the end.
  std::string piece;
  BOOST_TEST(blobs->read_at(id, 4990, 100, &piece).ok());
  BOOST_TEST((piece == bytes.substr(4990)));
  BOOST_TEST(blobs->read_at(id, 9000, 100, &piece).ok());
  BOOST_TEST(piece.empty());
  BOOST_TEST((blobs->read_at(sha256("absent"), 0, 1, &piece).code == Errc::not_found));
  BOOST_TEST((blobs->check(sha256("absent"), &size).code == Errc::not_found));
  BOOST_TEST(fs::is_empty(dir.path() + "/tmp"));
}

// A reader holds its blob's file: a collection while it reads (an upload to
// the bucket) does not cut it short.
BOOST_AUTO_TEST_CASE(a_reader_reads_its_blob_to_the_end_though_it_is_collected) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  const std::string bytes(3000, 'r');
  BlobId id;
  BOOST_REQUIRE(blobs->put(bytes, &id).ok());
  std::unique_ptr<memos::store::BlobReader> reader;
  BOOST_REQUIRE(blobs->open_reader(id, &reader).ok());
  std::string piece;
  BOOST_TEST(reader->read_at(0, 1000, &piece).ok());
  BOOST_TEST((piece == bytes.substr(0, 1000)));
  age(blobs->path(id), 7200);
  std::size_t removed = 0;
  BOOST_REQUIRE(
      blobs->collect_garbage([](const BlobId&) { return false; }, std::chrono::hours(1), &removed)
          .ok());
  BOOST_TEST(removed == 1u);
  BOOST_TEST(!blobs->contains(id));
  BOOST_TEST(reader->read_at(1000, 5000, &piece).ok());
  BOOST_TEST((piece == bytes.substr(1000)));
  BOOST_TEST(reader->read_at(3000, 1, &piece).ok());
  BOOST_TEST(piece.empty());
  // Gone now: no reader opens.
  BOOST_TEST((blobs->open_reader(id, &reader).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(an_upload_whose_bytes_are_not_its_digest_never_lands) {
  TempDir dir;
  auto blobs = open_blobs(dir.path());
  const BlobId claimed = sha256("the real bytes");
  {
    std::unique_ptr<BlobUpload> upload;
    BOOST_REQUIRE(blobs->begin_upload(claimed, 14, &upload).ok());
    BOOST_TEST(upload->write(0, "other bytes!!!").ok());
    Status s = upload->finish();
    BOOST_TEST((s.code == Errc::corrupt));
    BOOST_TEST(s.message.find("do not match its digest") != std::string::npos, s.message);
    BOOST_TEST(!blobs->contains(claimed));
  }
  // An abandoned upload leaves no temporary file.
  {
    std::unique_ptr<BlobUpload> upload;
    BOOST_REQUIRE(blobs->begin_upload(claimed, 14, &upload).ok());
    BOOST_TEST(upload->write(0, "the real").ok());
  }
  BOOST_TEST(fs::is_empty(dir.path() + "/tmp"));
  BOOST_TEST(!blobs->contains(claimed));
  // check() finds a damaged file without reading it whole into memory.
  BlobId id;
  BOOST_REQUIRE(blobs->put("the real bytes", &id).ok());
  std::ofstream(path_of(dir.path(), id), std::ios::binary | std::ios::trunc) << "the real bytez";
  std::uint64_t size = 0;
  BOOST_TEST((blobs->check(id, &size).code == Errc::corrupt));
}
