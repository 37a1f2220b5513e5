// blob_store.h — content-addressed files for payloads too large for LMDB
// records (KV-cache states, adapters).
//
// A blob is named by the SHA-256 of its bytes and lives at
// DIR/ab/cdef... (two hex digits of fan-out). put() follows the durability
// contract: write to DIR/tmp/, fsync, rename into place, fsync the folder;
// only then may an LMDB transaction reference the blob (WriteTxn::blob_ref).
// A blob that is already present is not written again. get() re-hashes what
// it reads, so a damaged file is reported, never returned.
//
// References live in LMDB (store.h); collect_garbage() removes files that no
// committed record references and that are older than a grace period, which
// covers a put whose referencing commit is still on its way.
//
// A blob too large to hold in memory at once (an adapter in an archive)
// arrives in pieces through a BlobUpload, and leaves in pieces through a
// BlobReader (or read_at()) after check().
//
// In cluster mode the store also shares its blobs with the other nodes
// through a SharedBlobs (the log's object store bucket, cluster/blob_bucket.h):
// put() copies a new blob there before it returns, share() copies one that
// came another way, and make_local() fetches one this node lacks (a state
// stored by another node, restored here after a failover). The local files
// stay the only ones read: a fetched blob is checked and kept like one put.
//
// Thread-safety: all methods may be called from any thread; one
// BlobUpload from one thread at a time.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/store.h"

namespace memos::store {

using BlobId = std::array<std::uint8_t, 32>;  // SHA-256

// Lowercase hex, two digits a byte.
std::string to_hex(std::string_view bytes);
std::string to_hex(const BlobId& id);
// Errors: none; returns false if `hex` is not 64 hex digits.
bool from_hex(std::string_view hex, BlobId* out);
BlobId sha256(std::string_view bytes);

// Makes the entries of folder `dir` (files renamed in or out) durable.
// Errors: io, storage_full.
Status fsync_dir(const std::string& dir);

class BlobReader;
class BlobUpload;
class BlobStore;

// Where blobs are shared between nodes: an interface, so that the store
// (memcube) does not depend on the engine that holds them (cluster).
// Implementations are thread-safe.
class SharedBlobs {
 public:
  virtual ~SharedBlobs() = default;
  // Copies blob `id` of `size` bytes, which `from` holds checked, to the
  // shared store unless it is there, reading it through `from.open_reader`;
  // returns once the shared store holds it durably. Errors: unavailable
  // (retryable), io (reading it), corrupt (the file is shorter).
  virtual Status publish(const BlobId& id, std::uint64_t size, const BlobStore& from) = 0;
  // Whether publish() is known to be done for `id` (no round trip): lets a
  // caller on a hot path skip the call.
  virtual bool known_published(const BlobId& id) const = 0;
  // Copies blob `id`, which a record says is `size` bytes, from the shared
  // store into `into` (begin_upload, whose finish() checks its digest); a
  // blob of another size is not taken, so that a hostile shared store
  // cannot make a node fill its disk. Errors: not_found (not shared),
  // unavailable, corrupt (what the shared store holds is not the blob),
  // storage_full, io.
  virtual Status fetch(const BlobId& id, std::uint64_t size, BlobStore& into) = 0;
};

class BlobStore {
 public:
  // Creates DIR (and DIR/tmp) if needed and removes temporary files left by
  // a crash. Errors: io.
  static std::unique_ptr<BlobStore> open(const std::string& dir, Status* status);

  // Stores `bytes` durably (and, when the store shares its blobs, in the
  // shared store too); `id` receives its digest.
  // Errors: storage_full (ENOSPC), io; unavailable (the shared store).
  Status put(std::string_view bytes, BlobId* id);
  // put() for a file too large to hold in memory: copies the regular file
  // at `path` (not through a symbolic link) in one pass, hashing as it
  // goes; `*id` and `*size` receive its digest and length. The file itself
  // is left as it is. Errors: not_found (no such file), storage_full, io
  // (also: a link, or not a regular file); unavailable (the shared store).
  Status put_file(const std::string& path, BlobId* id, std::uint64_t* size);
  // put_file() for a file made only to be stored (a copy of the store on
  // its way to the cluster's bucket): hashes it in one read and renames it
  // into the store, so its bytes are not written a second time (copied as
  // put_file() does where `path` is on another file system). `path` is gone
  // on success, also when the store held those bytes already; on failure it
  // is left where it was. Errors: as put_file().
  Status take_file(const std::string& path, BlobId* id, std::uint64_t* size);
  // Shares this store's blobs through `shared` from now on (nullptr: no
  // longer). `shared` must outlive every call that began while it was set:
  // swap it only while no request runs (the daemon's start and stop).
  void share_with(SharedBlobs* shared) { shared_.store(shared, std::memory_order_release); }
  // Copies blob `id`, which this store holds, to the shared store unless
  // that is known to hold it; success without one. Errors: not_found (no
  // such local blob), unavailable, corrupt, io.
  Status share(const BlobId& id);
  // Makes sure this store holds blob `id` of `size` bytes (as the record
  // that references it says), fetching it from the shared store when it
  // does not. Errors: not_found (neither has it), unavailable, corrupt,
  // storage_full, io.
  Status make_local(const BlobId& id, std::uint64_t size);
  // Reads a blob and checks its digest. Errors: not_found, corrupt, io.
  Status get(const BlobId& id, std::string* bytes) const;
  bool contains(const BlobId& id) const;
  // Re-hashes a blob's file without holding it in memory; `size` receives
  // its length. Errors: not_found, corrupt (it fails its digest), io.
  Status check(const BlobId& id, std::uint64_t* size) const;
  // Up to `max` bytes of a blob from `offset` (fewer at its end; none past
  // it). The bytes are not checked: check() the blob first. Errors:
  // not_found, io.
  Status read_at(const BlobId& id, std::uint64_t offset, std::size_t max, std::string* out) const;
  // Opens blob `id` for reading in pieces: the reader holds its file, so a
  // collection or a discard while it reads does not cut it short. Errors:
  // not_found, io.
  Status open_reader(const BlobId& id, std::unique_ptr<BlobReader>* out) const;
  // Starts receiving blob `id` of `total` bytes in pieces (BlobUpload).
  // Errors: storage_full, io.
  Status begin_upload(const BlobId& id, std::uint64_t total, std::unique_ptr<BlobUpload>* out);
  // Moves blob `id`'s file to `path` (renamed; copied, then removed, where
  // `path` is on another file system), leaving this store without it: for a
  // store that stages files on their way elsewhere. Errors: not_found, io,
  // storage_full.
  Status move_out(const BlobId& id, const std::string& path);
  // Checks a blob's file and removes it if it fails its digest, so that a
  // later put() of the same bytes writes it anew (put() skips a blob that is
  // present). Errors: not_found, corrupt (it was damaged, and is gone), io.
  Status discard_if_damaged(const BlobId& id);

  // Removes every blob file for which `referenced` is false and whose
  // modification time is older than `grace`. `removed` counts them.
  // Errors: io.
  Status collect_garbage(const std::function<bool(const BlobId&)>& referenced,
                         std::chrono::seconds grace, std::size_t* removed);

  const std::string& dir() const { return dir_; }
  // Where the blob's file is (or would be). Readers other than get() must
  // check its digest themselves.
  std::string path(const BlobId& id) const { return path_of(id); }

 private:
  friend class BlobUpload;
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string path_of(const BlobId& id) const;
  // A fresh name in DIR/tmp for a blob on its way in.
  std::string temp_path(const BlobId& id) const;
  // The shared store, unless it is known to hold blob `id` already (or
  // there is none): then nullptr.
  SharedBlobs* not_yet_shared(const BlobId& id) const;
  std::string dir_;
  std::atomic<SharedBlobs*> shared_{nullptr};
};

// One blob's file, open for reading in pieces (BlobStore::open_reader).
// The bytes are not checked: check() the blob first.
class BlobReader {
 public:
  ~BlobReader();
  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;

  // Up to `max` bytes from `offset` (fewer at the end; none past it).
  // Errors: io.
  Status read_at(std::uint64_t offset, std::size_t max, std::string* out) const;

 private:
  friend class BlobStore;
  BlobReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// One blob on its way in, piece by piece: the pieces go to a temporary
// file as they come and are hashed; finish() checks the digest they were
// announced under and puts the blob in place as put() does (fsync, rename,
// fsync the folder), so a blob is never in place with other bytes than its
// name says. A piece that ends at or before what was written is a repeat
// (an import's transaction that runs again feeds the same pieces) and is
// skipped, as is a repeated finish(). Destroying an unfinished upload
// removes its file; a crash leaves it in DIR/tmp, which open() empties.
class BlobUpload {
 public:
  ~BlobUpload();
  BlobUpload(const BlobUpload&) = delete;
  BlobUpload& operator=(const BlobUpload&) = delete;

  // Errors: corrupt (a gap before `offset`, or bytes past the total),
  // storage_full, io.
  Status write(std::uint64_t offset, std::string_view bytes);
  // Errors: corrupt (fewer bytes than the total, or their digest is not
  // the blob's), storage_full, io.
  Status finish();
  const BlobId& id() const { return id_; }
  std::uint64_t total() const { return total_; }
  std::uint64_t written() const { return written_; }
  bool finished() const { return finished_; }

 private:
  friend class BlobStore;
  struct Hasher;
  BlobUpload(const BlobStore& store, const BlobId& id, std::uint64_t total);
  const BlobStore& store_;
  BlobId id_;
  std::uint64_t total_;
  std::uint64_t written_ = 0;
  std::string tmp_path_;
  int fd_ = -1;
  std::unique_ptr<Hasher> hasher_;
  bool finished_ = false;
};

}  // namespace memos::store
