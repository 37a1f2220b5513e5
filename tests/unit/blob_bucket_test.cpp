// The cluster's shared blobs (cluster/blob_bucket.h) on a real nats-server:
// a blob one node's store puts is fetched whole by another's, in chunks
// (more than an upload keeps in flight) and empty; a blob put before sharing began is shared on
// demand; a blob the bucket already holds is not uploaded again; and what a hostile or damaged
// bucket holds (a description naming another blob, impossible sizes, a missing or altered chunk) is
// refused as corrupt and never kept; a bucket whose stream refuses direct gets is read from its
// leader.
#define BOOST_TEST_MODULE blob_bucket
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/blob_bucket.h"
#include "cluster/jetstream.h"
#include "cluster/nats_connection.h"
#include "tests/support/engine_servers.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/store_helpers.h"

using namespace memos::cluster;
using namespace std::chrono_literals;
using memos::store::BlobId;
using memos::store::BlobStore;
using memos::store::Errc;
using memos::testing::kNatsServer;
using memos::testing::NatsServers;
using memos::testing::TempDir;

namespace {

const auto nats_installed = memos::testing::HasProgram{kNatsServer};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(random());
  return s;
}

// One nats-server, and a node's blob store sharing through the bucket.
struct Fixture {
  NatsServers nats{1};
  std::unique_ptr<NatsConnection> connection;

  Fixture() {
    BOOST_REQUIRE_MESSAGE(nats.start(), nats.log(0));
    NatsOptions options;
    options.servers = {nats.url(0)};
    Status s;
    connection = NatsConnection::connect(options, &s);
    BOOST_REQUIRE_MESSAGE(connection, s.message);
  }

  // A bucket handle as a node opens it (each node has its own), chunks of
  // 1000 bytes so that small blobs take several.
  std::unique_ptr<BlobBucket> bucket() {
    BucketSettings settings;
    settings.name = "T_BLOBS";
    settings.chunk_bytes = 1000;
    Status s;
    std::unique_ptr<BlobBucket> b;
    for (int i = 0; i < 100 && !b; ++i) {
      b = BlobBucket::open(settings, *connection, 5s, &s);
      if (!b && s.code == Errc::unavailable) std::this_thread::sleep_for(200ms);
    }
    BOOST_REQUIRE_MESSAGE(b, s.message);
    return b;
  }
};

struct Node {
  TempDir dir;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<BlobBucket> bucket;
  Node(Fixture& f) : blobs(memos::testing::open_blobs(dir.path() + "/blobs")), bucket(f.bucket()) {
    blobs->share_with(bucket.get());
  }
};

// Appends a description of `id` as a hostile bucket might hold it.
void put_description(Fixture& f, const BlobBucket& b, const BlobId& id, const std::string& meta) {
  JetStream js(*f.connection, 5s);
  std::uint64_t sequence = 0;
  Status s = js.append(b.meta_subject(id), meta, std::nullopt, "", &sequence);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
}

void put_chunk(Fixture& f, const std::string& nuid, const std::string& bytes) {
  JetStream js(*f.connection, 5s);
  std::uint64_t sequence = 0;
  Status s = js.append("$O.T_BLOBS.C." + nuid, bytes, std::nullopt, "", &sequence);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
}

nlohmann::json description(const BlobId& id, std::uint64_t size, std::uint64_t chunks,
                           const std::string& nuid) {
  return {{"name", memos::store::to_hex(id)},
          {"bucket", "T_BLOBS"},
          {"nuid", nuid},
          {"size", size},
          {"chunks", chunks}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_blob_put_on_one_node_is_fetched_whole_on_another,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f), b(f);
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{999}, std::size_t{1000}, std::size_t{4321},
        std::size_t{12345}}) {  // more chunks than an upload keeps in flight
    const std::string bytes = random_bytes(size, static_cast<unsigned>(size));
    BlobId id;
    Status s = a.blobs->put(bytes, &id);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_TEST(a.bucket->known_published(id));
    BOOST_TEST(!b.blobs->contains(id));
    s = b.blobs->make_local(id, size);
    BOOST_REQUIRE_MESSAGE(s.ok(), "size " << size << ": " << s.message);
    std::string read;
    s = b.blobs->get(id, &read);  // checks the digest again
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_TEST(read == bytes);
    BOOST_TEST(b.blobs->make_local(id, size).ok());  // there now: nothing to fetch
  }
}

// What `memctl cluster status` shows of the bucket: its blobs (one each,
// however many nodes put the same bytes) and the bytes its stream stores.
BOOST_AUTO_TEST_CASE(a_bucket_reports_its_blobs_and_bytes,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f), b(f);
  memos::cluster::BucketUsage usage;
  Status s = a.bucket->usage(5s, &usage);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(usage.blobs == 0u);
  BOOST_TEST(usage.bytes == 0u);
  std::uint64_t sizes = 0;
  for (std::size_t size : {std::size_t{10}, std::size_t{2500}, std::size_t{7000}}) {
    BlobId id;
    BOOST_REQUIRE(a.blobs->put(random_bytes(size, static_cast<unsigned>(size)), &id).ok());
    BOOST_REQUIRE(b.blobs->put(random_bytes(size, static_cast<unsigned>(size)), &id).ok());
    sizes += size;
  }
  BOOST_REQUIRE_MESSAGE((s = b.bucket->usage(5s, &usage)).ok(), s.message);
  BOOST_TEST(usage.blobs == 3u);
  BOOST_TEST(usage.bytes >= sizes);  // and the descriptions, and headers
  f.nats.kill(0);
  s = a.bucket->usage(1s, &usage);
  BOOST_TEST((s.code == Errc::unavailable), s.message);
}

BOOST_AUTO_TEST_CASE(a_blob_nobody_shared_is_not_found,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f);
  const BlobId id = memos::store::sha256("never put");
  Status s = a.blobs->make_local(id, 9);
  BOOST_TEST((s.code == Errc::not_found), s.message);
  BOOST_TEST(!a.blobs->contains(id));
  BOOST_TEST(!a.bucket->known_published(id));
}

BOOST_AUTO_TEST_CASE(a_blob_put_before_sharing_is_shared_on_demand_and_once,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f), b(f);
  a.blobs->share_with(nullptr);  // before cluster mode
  BlobId id;
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 7), &id).ok());
  BOOST_TEST((b.blobs->make_local(id, 2500).code == Errc::not_found));
  a.blobs->share_with(a.bucket.get());
  Status s = a.blobs->share(id);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_REQUIRE_MESSAGE((s = b.blobs->make_local(id, 2500)).ok(), s.message);

  // Another node putting the same bytes finds them in the bucket: no second
  // upload (the same chunks), only the description appended again (a touch,
  // which a sweep's removal is fenced against), the older one dropped.
  JetStream js(*f.connection, 5s);
  StoredMessage before, after;
  BOOST_REQUIRE(js.last_message(a.bucket->stream(), a.bucket->meta_subject(id), &before).ok());
  Node c(f);
  BlobId same;
  BOOST_REQUIRE(c.blobs->put(random_bytes(2500, 7), &same).ok());
  BOOST_TEST((same == id));
  BOOST_REQUIRE(js.last_message(a.bucket->stream(), a.bucket->meta_subject(id), &after).ok());
  BOOST_TEST(after.sequence > before.sequence);
  BOOST_TEST(after.data == before.data);
  StoredMessage first;
  BOOST_TEST((js.next_message(a.bucket->stream(), 1, a.bucket->meta_subject(id), &first).ok() &&
              first.sequence == after.sequence));
  BOOST_TEST(c.bucket->known_published(id));

  // share() of a blob this store does not hold.
  BOOST_TEST((c.blobs->share(memos::store::sha256("absent")).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(what_a_hostile_bucket_holds_is_refused_and_never_kept,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f);
  const std::string bytes = random_bytes(1500, 3);
  const BlobId id = memos::store::sha256(bytes);
  auto expect = [&](Errc code, const std::string& why) {
    Node fresh(f);  // its own cache: nothing known
    Status s = fresh.blobs->make_local(id, 1500);
    BOOST_TEST((s.code == code), why << ": " << s.message);
    BOOST_TEST(!fresh.blobs->contains(id), why);
  };
  put_description(f, *a.bucket, id, "not json");
  expect(Errc::corrupt, "not JSON");
  auto d = description(id, 1500, 2, "N1");
  d["name"] = memos::store::to_hex(memos::store::sha256("other"));
  put_description(f, *a.bucket, id, d.dump());
  expect(Errc::corrupt, "another blob's name");
  put_description(f, *a.bucket, id, description(id, 1500, 2000, "N1").dump());
  expect(Errc::corrupt, "more chunks than bytes");
  put_description(f, *a.bucket, id, description(id, 1ull << 50, 2, "N1").dump());
  expect(Errc::corrupt, "a petabyte");
  put_description(f, *a.bucket, id, description(id, 1500, 2, "../x").dump());
  expect(Errc::corrupt, "a nuid that is not a name");
  put_description(f, *a.bucket, id, description(id, 1500, 0, "N1").dump());
  expect(Errc::corrupt, "bytes in no chunk");

  // A chunk missing, then one altered, then one too many bytes.
  put_chunk(f, "N2", bytes.substr(0, 1000));
  put_description(f, *a.bucket, id, description(id, 1500, 2, "N2").dump());
  expect(Errc::corrupt, "a chunk missing");
  std::string altered = bytes;
  altered[1200] ^= 1;
  put_chunk(f, "N3", altered.substr(0, 1000));
  put_chunk(f, "N3", altered.substr(1000));
  put_description(f, *a.bucket, id, description(id, 1500, 2, "N3").dump());
  expect(Errc::corrupt, "an altered byte");
  put_chunk(f, "N4", bytes.substr(0, 1000));
  put_chunk(f, "N4", bytes.substr(1000) + "x");
  put_description(f, *a.bucket, id, description(id, 1500, 2, "N4").dump());
  expect(Errc::corrupt, "a byte too many");
  auto deleted = description(id, 1500, 2, "N4");
  deleted["deleted"] = true;
  put_description(f, *a.bucket, id, deleted.dump());
  expect(Errc::not_found, "removed");

  // The real upload after all that: its description is the last, and wins.
  BlobId put;
  BOOST_REQUIRE(a.blobs->put(bytes, &put).ok());
  Node b(f);
  // Not as a record of another size would have it: the description's size
  // must be the record's.
  Status s = b.blobs->make_local(id, 1 << 20);
  BOOST_TEST((s.code == Errc::corrupt), s.message);
  BOOST_TEST(!b.blobs->contains(id));
  s = b.blobs->make_local(id, 1500);
  BOOST_TEST(s.ok(), s.message);
}

BOOST_AUTO_TEST_CASE(a_bucket_that_cannot_answer_is_unavailable,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f);
  f.nats.kill(0);
  BlobId id;
  Status s = a.blobs->put("written while the log is down", &id);
  BOOST_TEST((s.code == Errc::unavailable), s.message);
  BOOST_TEST(a.blobs->contains(id));  // kept locally; shared by a later put
  s = a.blobs->make_local(memos::store::sha256("elsewhere"), 9);
  BOOST_TEST((s.code == Errc::unavailable), s.message);
}

BOOST_AUTO_TEST_CASE(a_bucket_made_without_direct_gets_is_read_from_its_leader,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  {
    // The stream as a bucket from before direct gets was made.
    JetStream js(*f.connection, 5s);
    StreamSettings settings;
    settings.name = "OBJ_T_BLOBS";
    settings.subjects = {"$O.T_BLOBS.C.>", "$O.T_BLOBS.M.>"};
    Status s;
    for (int i = 0; i < 100 && (s = js.ensure_stream(settings)).code == Errc::unavailable; ++i)
      std::this_thread::sleep_for(200ms);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  }
  Node a(f), b(f);
  const std::string bytes = random_bytes(3333, 11);
  BlobId id;
  BOOST_REQUIRE(a.blobs->put(bytes, &id).ok());
  Status s = b.blobs->make_local(id, bytes.size());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  std::string read;
  BOOST_REQUIRE(b.blobs->get(id, &read).ok());
  BOOST_TEST(read == bytes);
}

// The sweep of the log's bucket (docs/scale-out.md, "Blobs shared"): of the
// blobs whose descriptions are older than the cut, the one the caller says
// is referenced stays, the one another node used since the listing (a touch)
// stays, the other goes, chunks and all; a blob put after the cut is not
// listed; a removed blob put again is uploaded anew; descriptions that name
// no blob, or another subject's, are never listed; listings of a few at a
// time go round them all.
BOOST_AUTO_TEST_CASE(a_sweep_removes_only_blobs_unreferenced_and_untouched_since_it_listed_them,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  Fixture f;
  Node a(f), b(f);
  BlobId kept, dropped, touched, fresh;
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 11), &kept).ok());
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 12), &dropped).ok());
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 13), &touched).ok());
  // Hostile descriptions: not JSON; naming another blob than its subject's.
  put_description(f, *a.bucket, memos::store::sha256("junk"), "{not json");
  put_description(f, *a.bucket, memos::store::sha256("elsewhere"),
                  description(kept, 2500, 3, "N1").dump());
  std::this_thread::sleep_for(1100ms);
  const auto cut =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::this_thread::sleep_for(1100ms);
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 14), &fresh).ok());

  std::vector<StaleBlob> stale;
  std::uint64_t cursor = 1;
  Status s = a.bucket->list_stale(cut, 100, &cursor, &stale);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  std::vector<BlobId> listed;
  for (const StaleBlob& blob : stale) listed.push_back(blob.id);
  BOOST_TEST((listed == std::vector<BlobId>{kept, dropped, touched}));
  BOOST_TEST(cursor == 1u);  // it reached the new ones: the next starts over
  // One at a time, listings go on where the last stopped, round them all,
  // then start over.
  std::vector<BlobId> one_at_a_time;
  for (int i = 0; i < 3; ++i) {
    std::vector<StaleBlob> one;
    BOOST_REQUIRE(a.bucket->list_stale(cut, 1, &cursor, &one).ok());
    BOOST_REQUIRE(one.size() == 1u);
    BOOST_TEST(cursor > one[0].sequence);
    one_at_a_time.push_back(one[0].id);
  }
  BOOST_TEST((one_at_a_time == listed));
  std::vector<StaleBlob> none;
  BOOST_REQUIRE(a.bucket->list_stale(cut, 1, &cursor, &none).ok());
  BOOST_TEST(none.empty());  // only descriptions naming no blob, then `fresh`
  BOOST_TEST(cursor == 1u);

  // Another node takes `touched` as shared only after asking: a touch.
  BucketSettings asks_always;
  asks_always.name = "T_BLOBS";
  asks_always.known_for = 0ms;
  TempDir c_dir;
  auto c_blobs = memos::testing::open_blobs(c_dir.path() + "/blobs");
  auto c_bucket = BlobBucket::open(asks_always, *f.connection, 5s, &s);
  BOOST_REQUIRE_MESSAGE(c_bucket, s.message);
  c_blobs->share_with(c_bucket.get());
  BlobId again;
  BOOST_REQUIRE(c_blobs->put(random_bytes(2500, 13), &again).ok());
  BOOST_TEST(!c_bucket->known_published(again));  // asked again next time

  for (const StaleBlob& blob : stale) {
    if (blob.id == kept) continue;  // the caller's store references it
    bool removed = true;
    s = a.bucket->remove_if_unchanged(blob, &removed);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_TEST(removed == (blob.id == dropped));
  }
  BOOST_TEST(!a.bucket->known_published(dropped));
  BOOST_TEST((b.blobs->make_local(dropped, 2500).code == Errc::not_found));
  for (const BlobId& id : {kept, touched, fresh}) {
    s = b.blobs->make_local(id, 2500);
    BOOST_TEST(s.ok(), s.message);
  }
  // Its chunks are gone, and so are its description and the mark.
  JetStream js(*f.connection, 5s);
  StoredMessage m;
  BOOST_TEST((js.next_message(a.bucket->stream(), 1, "$O.T_BLOBS.C." + stale[1].nuid, &m).code ==
              Errc::not_found));
  BOOST_TEST((js.next_message(a.bucket->stream(), 1, a.bucket->meta_subject(dropped), &m).code ==
              Errc::not_found));
  // Put again, it is uploaded anew and fetched whole.
  BOOST_REQUIRE(a.blobs->put(random_bytes(2500, 12), &again).ok());
  Node d(f);
  s = d.blobs->make_local(dropped, 2500);
  BOOST_TEST(s.ok(), s.message);
}
