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
//
// Neither direction holds the whole file in memory. A save streams from the
// index's own memory (SnapshotView) into the file (DurableFile): the body
// is laid out twice by the same code, once into a counter for the length
// the header needs (FAISS's part included: it is serialised into the
// counter, which keeps nothing), once into the file, checksummed as it
// goes. A load maps the file (MappedFile), checks the CRC over the mapping,
// parses the slots from it, and lets FAISS read its part straight from the
// mapping into the index's arrays.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "plugins/faiss-retriever/durable_file.h"
#include "plugins/faiss-retriever/index_settings.h"
#include "plugins/faiss-retriever/mapped_file.h"
#include "plugins/retriever-common/filter.h"

namespace faiss {
struct Index;
}

namespace memos::faiss_retriever {

// Written: 2 (adds the buffered documents). Read: 1 and 2.
inline constexpr std::uint32_t kFormatVersion = 2;

// <dir>/<collection>.dense
std::string snapshot_path(const std::string& dir, std::uint64_t collection);

// ---- writing ----------------------------------------------------------------

struct SnapshotSlotRef {
  std::uint64_t id = 0;
  bool dead = false;                                  // a tombstone
  const retrieval::Attributes* attributes = nullptr;  // read unless dead
};

// What a save writes, by reference into the index: nothing is copied, so
// it is valid only while the lock guarding the index is held.
struct SnapshotView {
  std::uint64_t collection = 0;
  std::uint32_t dimension = 0;
  IndexKind kind = IndexKind::exact;
  std::uint64_t version = 0;
  std::size_t slots = 0;
  // Slot `position` (0 .. slots - 1, FAISS position order).
  std::function<SnapshotSlotRef(std::size_t position)> slot;
  // Documents not in the index yet (HNSW only), in buffer order.
  std::span<const std::uint64_t> fresh_ids;
  std::span<const retrieval::Attributes> fresh_attributes;
  std::span<const float> fresh_vectors;       // fresh_ids.size() * dimension
  std::span<const float> vectors;             // exact: slots * dimension
  const faiss::Index* faiss_index = nullptr;  // hnsw
};

// Writes the snapshot `view` describes into `file` (created at its
// snapshot_path()): header, body, CRC. Fast (page cache, no fsync), so a
// caller holds its lock across it and commits the file after releasing
// it. Returns "" or why (FAISS's exceptions are caught); the file then
// refuses to commit.
std::string write_snapshot(const SnapshotView& view, DurableFile& file);

// ---- reading ----------------------------------------------------------------

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
  // Documents not in the index yet (HNSW only): never dead.
  std::vector<SnapshotSlot> fresh;
  std::vector<float> fresh_vectors;  // fresh.size() * dimension (a copy: few)
  // Exact: slots.size() * dimension floats; HNSW: the faiss::write_index
  // bytes. A range of `file`, where it starts `index_offset` bytes in: not
  // aligned for floats (copy with memcpy), valid while `file` is.
  std::span<const std::uint8_t> index_bytes;
  std::size_t index_offset = 0;
  MappedFile file;
};

// Reads the snapshot file at `path`, wherever it is, which must hold
// `collection` and, unless `dimension` is 0 (an import: any), have
// `dimension`. Returns "" with *out filled, or "snapshot refused: ..."
// (cannot open, a symbolic link or not a regular file, truncated, bad
// magic, format version, checksum mismatch, another collection or
// dimension, malformed body); sets *missing, if given, when nothing is at
// `path`. Never throws on bad content.
std::string read_snapshot_file(const std::string& path, std::uint64_t collection,
                               std::uint32_t dimension, Snapshot* out, bool* missing = nullptr);

// Reads the snapshot of `collection` in `dir` (read_snapshot_file()), which
// must have `dimension`. Returns "" with *out filled, or why there is none
// to use: "no snapshot", or "snapshot refused: ...". Removes a stale .tmp
// left by an interrupted write (saying so in the reason when no snapshot
// remains). Never throws on bad content.
std::string read_snapshot(const std::string& dir, std::uint64_t collection, std::uint32_t dimension,
                          Snapshot* out);

// Deletes the snapshot of `collection` and any stale .tmp. Returns "" or why.
std::string remove_snapshot(const std::string& dir, std::uint64_t collection);

// ---- moving snapshots between nodes (exportSnapshot, importSnapshot) ---------

// Makes `path` hold the snapshot of `collection` in `dir`, whole: a hard
// link to it (snapshots are replaced by rename, never rewritten in place,
// so the link keeps this one intact), else (another file system, or one
// without hard links) a copy. Either is made as <path>.tmp and renamed
// over `path`, then path's folder is fsynced, so `path` is never half
// written. The caller keeps the snapshot from being replaced meanwhile.
// Returns "" or why; then `path` is as it was and no .tmp is left.
std::string export_snapshot_file(const std::string& dir, std::uint64_t collection,
                                 const std::string& path);

// Makes the file at `path`, which read_snapshot_file() accepted as
// `checked`, the snapshot of `collection` in `dir`, durably, replacing any
// there: fsynced and renamed into place when it can be, else (another file
// system, a folder it cannot be moved from, or `path` no longer names the
// file checked) `checked`'s bytes are copied there as a save writes (.tmp,
// fsync, rename); then `dir` is fsynced. So the snapshot installed is
// always the one checked. Returns "" or why (then the previous snapshot, if
// any, is untouched unless only an fsync failed).
std::string install_snapshot_file(const std::string& dir, std::uint64_t collection,
                                  const std::string& path, const Snapshot& checked);

}  // namespace memos::faiss_retriever
