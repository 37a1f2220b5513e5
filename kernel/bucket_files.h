// bucket_files.h — whole files moved through one of the cluster's object
// store buckets (cluster/blob_bucket.h), passing through a blob store of
// their own on the way: the index snapshots' bucket
// (cluster_index_sharing.h) and the store snapshots' (cluster_store_snapshots.h).
// An upload is staged (copied in one pass and hashed) and the staged copy
// goes once the bucket holds it; a fetch lands in the staging store, checked
// against its digest and size, before it is moved to the path asked for.
//
// Thread-safety: every method may be called from any thread.
//
// Errors (store::Status): unavailable — JetStream cannot answer now;
// not_found, corrupt — as cluster::BlobBucket; io, storage_full — the local
// files.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cluster/blob_bucket.h"
#include "memcube/blob_store.h"

namespace memos::kernel {

class BucketFiles {
 public:
  // Empties `staging_dir` (files only pass through: what a crash left there
  // is stale) and opens a blob store there (its parent must exist), then
  // makes sure the bucket exists. Null, with `*status`, on failure: the
  // staging store's errors prefixed "staging folder", the bucket's
  // prefixed with its name.
  static std::unique_ptr<BucketFiles> open(const cluster::BucketSettings& settings,
                                           cluster::NatsConnection& nats,
                                           const std::string& staging_dir,
                                           std::chrono::milliseconds timeout,
                                           store::Status* status);

  // Uploads the regular file at `path` (not through a link), of at most
  // `max_bytes`; `*id` and `*bytes` get what it is. The file is left as it
  // is. Errors: not_found (no such file), io (a link, not a regular file,
  // larger than `max_bytes`), storage_full, unavailable.
  store::Status upload(const std::string& path, std::uint64_t max_bytes, store::BlobId* id,
                       std::uint64_t* bytes);
  // upload() of a file made only for it (a copy of the store), which it
  // moves into the staging store rather than copies (BlobStore::take_file):
  // `path` is gone once it is staged, whatever the upload's outcome; a
  // failure before (unreadable, a link) leaves it. Errors: upload()'s.
  store::Status upload_taking(const std::string& path, std::uint64_t max_bytes, store::BlobId* id,
                              std::uint64_t* bytes);
  // Fetches blob `id`, which must be `bytes` long, to `path`; nothing is
  // written there unless it passed its checks. Errors: not_found, corrupt,
  // unavailable, io, storage_full.
  store::Status fetch(const store::BlobId& id, std::uint64_t bytes, const std::string& path);

  cluster::BlobBucket& bucket() { return *bucket_; }

 private:
  BucketFiles() = default;
  // Uploads staged blob `id` (from `path`, which errors name), then drops
  // it from the staging store.
  store::Status publish_staged(const std::string& path, std::uint64_t max_bytes,
                               const store::BlobId& id, std::uint64_t bytes);

  std::unique_ptr<store::BlobStore> staging_;
  std::unique_ptr<cluster::BlobBucket> bucket_;
};

}  // namespace memos::kernel
