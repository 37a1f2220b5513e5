// BlobPrefetch (cluster.prefetch_blobs) against a shared store that is
// another local blob store (the real bucket is tested in test_blob_bucket
// and test_cluster_kv): what it fetches, dedupes, drops past its bound,
// counts as failed, and that it stops while a fetch waits.
#define BOOST_TEST_MODULE blob_prefetch
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "kernel/blob_prefetch.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/store_helpers.h"

using memos::kernel::BlobPrefetch;
using memos::store::BlobId;
using memos::store::BlobStore;
using memos::store::Errc;
using memos::store::Status;
using memos::testing::eventually;
using memos::testing::open_blobs;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

// Serves what `source` holds; fails the blobs in `failing`; while `held`,
// every fetch waits for release().
class OtherStore : public memos::store::SharedBlobs {
 public:
  explicit OtherStore(BlobStore& source) : source_(source) {}

  Status publish(const BlobId&, std::uint64_t, const BlobStore&) override { return {}; }
  bool known_published(const BlobId&) const override { return true; }
  Status fetch(const BlobId& id, std::uint64_t size, BlobStore& into) override {
    {
      std::unique_lock lock(mutex_);
      ++fetches_;
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return !held_; });
      --waiting_;
      if (failing_.contains(id)) return {Errc::unavailable, "the shared store is down"};
    }
    std::string bytes;
    if (Status s = source_.get(id, &bytes); !s.ok()) return s;
    if (bytes.size() != size) return {Errc::corrupt, "another size"};
    std::unique_ptr<memos::store::BlobUpload> upload;
    if (Status s = into.begin_upload(id, size, &upload); !s.ok()) return s;
    if (Status s = upload->write(0, bytes); !s.ok()) return s;
    return upload->finish();
  }

  void fail(const BlobId& id) {
    std::lock_guard lock(mutex_);
    failing_.insert(id);
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  // Waits until a fetch waits in hold().
  bool one_waiting() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [this] { return waiting_ > 0; });
  }
  int fetches() const {
    std::lock_guard lock(mutex_);
    return fetches_;
  }

 private:
  BlobStore& source_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::set<BlobId> failing_;
  bool held_ = false;
  int waiting_ = 0;
  int fetches_ = 0;
};

struct Nodes {
  TempDir dir;
  std::unique_ptr<BlobStore> owner = open_blobs(dir.path() + "/owner");
  std::unique_ptr<BlobStore> follower = open_blobs(dir.path() + "/follower");
  OtherStore shared{*owner};
  Nodes() { follower->share_with(&shared); }
  ~Nodes() { follower->share_with(nullptr); }

  BlobId put(const std::string& bytes) {
    BlobId id;
    Status s = owner->put(bytes, &id);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    return id;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(wanted_blobs_are_fetched_once_and_counted) {
  Nodes n;
  const BlobId a = n.put("a state"), b = n.put("an adapter, longer");
  BlobPrefetch prefetch(*n.follower);
  prefetch.want(a, 7);
  prefetch.want(b, 18);
  BOOST_TEST(eventually([&] { return prefetch.counters().fetched == 2u; }, 10s));
  BOOST_TEST(n.follower->contains(a));
  BOOST_TEST(n.follower->contains(b));
  // Held already: nothing fetched again.
  prefetch.want(a, 7);
  BOOST_TEST(eventually([&] { return n.shared.fetches() == 2; }, 10s));
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(n.shared.fetches() == 2);
  BOOST_TEST(prefetch.counters().failed == 0u);
  BOOST_TEST(prefetch.counters().dropped == 0u);
}

// What the store referenced before: fetched behind the wants, in order.
BOOST_AUTO_TEST_CASE(the_backlog_is_fetched_after_the_wants) {
  Nodes n;
  const BlobId old1 = n.put("referenced before"), old2 = n.put("also before");
  const BlobId fresh = n.put("applied just now");
  n.shared.hold();
  BlobPrefetch prefetch(*n.follower);
  prefetch.want(fresh, 16);  // taken at once: waits in the shared store
  BOOST_REQUIRE(n.shared.one_waiting());
  // The backlog lists what the store references, held or not: one the
  // follower holds is not fetched.
  BlobId held;
  BOOST_REQUIRE(n.follower->put("held by the follower", &held).ok());
  prefetch.add_backlog({{old1, 17}, {held, 20}, {old2, 11}});
  n.shared.release();
  BOOST_TEST(eventually([&] { return prefetch.counters().fetched == 3u; }, 10s));
  for (const BlobId& id : {old1, old2, fresh}) BOOST_TEST(n.follower->contains(id));
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(n.shared.fetches() == 3);
  BOOST_TEST(prefetch.counters().fetched == 3u);
  BOOST_TEST(prefetch.counters().dropped == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_fetch_is_counted_and_keeps_nothing) {
  Nodes n;
  const BlobId down = n.put("behind a dead server"), wrong = n.put("nine byte");
  n.shared.fail(down);
  BlobPrefetch prefetch(*n.follower);
  prefetch.want(down, 20);
  prefetch.want(wrong, 12345);  // a record giving another size: refused
  BOOST_TEST(eventually([&] { return prefetch.counters().failed == 2u; }, 10s));
  BOOST_TEST(!n.follower->contains(down));
  BOOST_TEST(!n.follower->contains(wrong));
  BOOST_TEST(prefetch.counters().fetched == 0u);
  // Not retried by the prefetcher: the first use fetches it.
  BOOST_TEST(n.follower->make_local(wrong, 9).ok());
}

BOOST_AUTO_TEST_CASE(wants_past_the_bound_are_dropped_and_waiting_ones_deduped) {
  Nodes n;
  n.shared.hold();
  BlobPrefetch prefetch(*n.follower);
  const BlobId first = n.put("the one being fetched");
  prefetch.want(first, 21);
  BOOST_REQUIRE(n.shared.one_waiting());
  // The queue fills with wants of blobs nobody holds; a second want of a
  // queued one takes no room.
  const BlobId again = memos::store::sha256("wanted twice");
  prefetch.want(again, 1);
  prefetch.want(again, 1);
  for (std::size_t i = 1; i < BlobPrefetch::kMaxQueued; ++i) {
    prefetch.want(memos::store::sha256("absent " + std::to_string(i)), 1);
  }
  BOOST_TEST(prefetch.counters().dropped == 0u);
  prefetch.want(memos::store::sha256("one too many"), 1);
  BOOST_TEST(prefetch.counters().dropped == 1u);
  n.shared.release();
  BOOST_TEST(eventually([&] { return n.follower->contains(first); }, 10s));
}

BOOST_AUTO_TEST_CASE(it_stops_after_the_fetch_under_way) {
  Nodes n;
  n.shared.hold();
  const BlobId id = n.put("fetched while memosd stops");
  std::thread releaser;
  {
    BlobPrefetch prefetch(*n.follower);
    prefetch.want(id, 26);
    for (int i = 0; i < 100; ++i) prefetch.want(memos::store::sha256(std::to_string(i)), 1);
    BOOST_REQUIRE(n.shared.one_waiting());
    releaser = std::thread([&] {
      std::this_thread::sleep_for(100ms);
      n.shared.release();
    });
  }  // the destructor waits for the fetch under way, not for the queue
  releaser.join();
  BOOST_TEST(n.follower->contains(id));
  BOOST_TEST(n.shared.fetches() == 1);
}
