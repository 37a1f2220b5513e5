// snapshot_file.h — the on-disk form of one dense collection.
//
// <state_dir>/<collection>.dense holds everything needed to serve the
// collection again without rebuilding it: the slots of the FAISS index in
// position order (id, tombstone flag, filter attributes), and either the raw
// vectors (exact index) or the FAISS HNSW index as faiss::write_index wrote
// it (its storage holds the vectors, so they are not written twice), and
// the documents an HNSW index still held in its buffer (FreshBuffer).
//
// Layout (host byte order, little-endian on every platform memosd ships for):
//   header, 48 bytes:
//     "MFRS"  magic
//     u32     format version (kFormatVersion)
//     u64     collection id
//     u32     dimension
//     u32     index kind (IndexKind)
//     u64     covered version (the cube version the contents reach)
//     u64     slot count
//     u64     body length in bytes
//   body:
//     per slot: u64 id, u8 dead; a live slot then has its attributes:
//       u32 tag count, tags; u32 meta count, (key, value) pairs; tier; state
//       (each string: u32 length, bytes); i64 valid_from, valid_to,
//       recorded_at, expires_at (ms); f32 importance
//     (format 2) u64 buffered count; per buffered document: u64 id, its
//       attributes as above; then buffered count * dimension f32
//     exact: slot count * dimension f32
//     hnsw:  the faiss::write_index bytes (to the end of the body)
//   u32 CRC-32C of header and body
//
// A snapshot is derived data (memosd resends every item when it is missing
// or stale), so a reader refuses anything doubtful rather than repairing it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plugins/faiss-retriever/index_settings.h"
#include "plugins/retriever-common/filter.h"

namespace memos::faiss_retriever {

// Written: 2 (adds the buffered documents). Read: 1 and 2.
inline constexpr std::uint32_t kFormatVersion = 2;

struct SnapshotSlot {
  std::uint64_t id = 0;
  bool dead = false;  // a tombstone: attributes are empty
  retrieval::Attributes attributes;
};

struct Snapshot {
  std::uint64_t collection = 0;
  std::uint32_t dimension = 0;
  IndexKind kind = IndexKind::exact;
  std::uint64_t version = 0;
  std::vector<SnapshotSlot> slots;
  std::vector<float> vectors;             // exact: slots.size() * dimension
  std::vector<std::uint8_t> faiss_index;  // hnsw: faiss::write_index bytes
  // Documents not in the index yet (HNSW only): never dead.
  std::vector<SnapshotSlot> fresh;
  std::vector<float> fresh_vectors;  // fresh.size() * dimension
};

// <dir>/<collection>.dense
std::string snapshot_path(const std::string& dir, std::uint64_t collection);

// Writes `snapshot` durably: to <path>.tmp, fsync, rename over <path>, fsync
// the folder (created if missing). A crash at any point leaves either the
// old snapshot or the new one, plus perhaps a stale .tmp. Returns "" or why
// it failed (the old snapshot is then untouched).
std::string write_snapshot(const std::string& dir, const Snapshot& snapshot);

// Reads the snapshot of `collection`, which must have `dimension`. Returns
// "" with *out filled, or why there is none to use: "no snapshot", or
// "snapshot refused: ..." (truncated, bad magic, format version, checksum
// mismatch, another collection or dimension, malformed body). Removes a
// stale .tmp left by an interrupted write (saying so in the reason when no
// snapshot remains). Never throws on bad content.
std::string read_snapshot(const std::string& dir, std::uint64_t collection, std::uint32_t dimension,
                          Snapshot* out);

// Deletes the snapshot of `collection` and any stale .tmp. Returns "" or why.
std::string remove_snapshot(const std::string& dir, std::uint64_t collection);

}  // namespace memos::faiss_retriever
