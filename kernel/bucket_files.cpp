#include "kernel/bucket_files.h"

#include <filesystem>

namespace memos::kernel {

std::unique_ptr<BucketFiles> BucketFiles::open(const cluster::BucketSettings& settings,
                                               cluster::NatsConnection& nats,
                                               const std::string& staging_dir,
                                               std::chrono::milliseconds timeout,
                                               store::Status* status) {
  std::unique_ptr<BucketFiles> files(new BucketFiles());
  std::error_code ignored;
  std::filesystem::remove_all(staging_dir, ignored);
  files->staging_ = store::BlobStore::open(staging_dir, status);
  if (!files->staging_) {
    status->message = "staging folder: " + status->message;
    return nullptr;
  }
  files->bucket_ = cluster::BlobBucket::open(settings, nats, timeout, status);
  if (!files->bucket_) {
    status->message = "bucket " + settings.name + ": " + status->message;
    return nullptr;
  }
  *status = {};
  return files;
}

store::Status BucketFiles::upload(const std::string& path, std::uint64_t max_bytes,
                                  store::BlobId* id, std::uint64_t* bytes) {
  store::Status s = staging_->put_file(path, id, bytes);
  if (!s.ok()) return s;
  return publish_staged(path, max_bytes, *id, *bytes);
}

store::Status BucketFiles::upload_taking(const std::string& path, std::uint64_t max_bytes,
                                         store::BlobId* id, std::uint64_t* bytes) {
  store::Status s = staging_->take_file(path, id, bytes);
  if (!s.ok()) return s;
  return publish_staged(path, max_bytes, *id, *bytes);
}

store::Status BucketFiles::publish_staged(const std::string& path, std::uint64_t max_bytes,
                                          const store::BlobId& id, std::uint64_t bytes) {
  store::Status s;
  if (bytes > max_bytes) s = {store::Errc::io, path + " is larger than a bucket takes"};
  if (s.ok()) s = bucket_->publish(id, bytes, *staging_);
  // Staged only for the upload.
  std::error_code ignored;
  std::filesystem::remove(staging_->path(id), ignored);
  return s;
}

store::Status BucketFiles::fetch(const store::BlobId& id, std::uint64_t bytes,
                                 const std::string& path) {
  // The bucket checks the bytes against the digest and size on the way in.
  store::Status s = bucket_->fetch(id, bytes, *staging_);
  if (s.ok()) s = staging_->move_out(id, path);
  if (!s.ok()) {
    std::error_code ignored;
    std::filesystem::remove(staging_->path(id), ignored);
  }
  return s;
}

}  // namespace memos::kernel
