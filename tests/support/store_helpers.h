// store_helpers.h — opening a store or a blob store, committing one write
// transaction and holding the writer in unit tests of memcube
// (BOOST_REQUIRE on failure to open).
#pragma once

#include <boost/test/unit_test.hpp>

#include <future>
#include <memory>
#include <optional>
#include <string>

#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::testing {

// `shards`: those the store issues ids for (StoreOptions::shards).
inline std::unique_ptr<store::Store> open_store(const std::string& dir, std::uint32_t shards = 1) {
  store::Status s;
  store::StoreOptions options;
  options.shards = shards;
  auto st = store::Store::open(dir, options, &s);
  BOOST_REQUIRE_MESSAGE(st, s.message);
  return st;
}

inline std::unique_ptr<store::BlobStore> open_blobs(const std::string& dir) {
  store::Status s;
  auto blobs = store::BlobStore::open(dir, &s);
  BOOST_REQUIRE_MESSAGE(blobs, s.message);
  return blobs;
}

// Runs `fn` in a write transaction of `shard` and commits it.
template <class Fn>
store::Status write(store::Store& st, Fn&& fn, std::uint32_t shard = 0) {
  std::optional<store::WriteTxn> txn;
  store::Status s = st.begin_write(&txn, shard);
  if (!s.ok()) return s;
  s = fn(*txn);
  if (!s.ok()) return s;
  return txn->commit();
}

// Holds a commit queue's writer in a turn of its own (a job that changes
// nothing) from construction until release() or destruction, so that every
// job queued meanwhile is the next turn, whatever the threads' timing.
class WriterHold {
 public:
  explicit WriterHold(store::CommitQueue& queue) {
    auto holding = std::make_shared<std::promise<void>>();
    queue.submit({[holding, released = release_.get_future().share()](store::WriteTxn&) {
                    holding->set_value();
                    released.wait();
                    return store::Status{};
                  },
                  [](const store::Status&) {}});
    holding->get_future().wait();
  }
  ~WriterHold() { release(); }
  WriterHold(const WriterHold&) = delete;
  WriterHold& operator=(const WriterHold&) = delete;

  void release() {
    if (released_) return;
    released_ = true;
    release_.set_value();
  }

 private:
  std::promise<void> release_;
  bool released_ = false;
};

}  // namespace memos::testing
