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
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <array>
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

std::string to_hex(const BlobId& id);
// Errors: none; returns false if `hex` is not 64 hex digits.
bool from_hex(std::string_view hex, BlobId* out);
BlobId sha256(std::string_view bytes);

class BlobStore {
 public:
  // Creates DIR (and DIR/tmp) if needed and removes temporary files left by
  // a crash. Errors: io.
  static std::unique_ptr<BlobStore> open(const std::string& dir, Status* status);

  // Stores `bytes` durably; `id` receives its digest.
  // Errors: storage_full (ENOSPC), io.
  Status put(std::string_view bytes, BlobId* id);
  // Reads a blob and checks its digest. Errors: not_found, corrupt, io.
  Status get(const BlobId& id, std::string* bytes) const;
  bool contains(const BlobId& id) const;
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
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string path_of(const BlobId& id) const;
  std::string dir_;
};

}  // namespace memos::store
