// archive.h — the portable cube archive: format, writer and streaming reader.
//
// Format version 3 (all integers little-endian):
//
//   header   8 bytes "MEMOSARC", u32 format version (3), u32 flags (0)
//   frames   u8 kind, u32 payload length, u32 CRC-32C of the payload, payload
//
// Frame kinds, in this order: one manifest (1, records.capnp
// ArchiveManifest); the item versions (2), each a stored item record
// (record_codec.h: its own checksum header, then the Cap'n Proto record),
// grouped by item, and within an item versions 1..n: first the plaintext
// items in ascending id, then the parametric ones (adapters) in ascending
// id, so that an adapter's sources (the memories it was distilled from) are
// known when it is read. A plaintext item's versions are preceded by its
// access statistics and strength (4, a 48-byte row: item id, hits, last
// access ms, strength (f64), weighted recalls (f64), last recall ms) when it
// was ever read. A parametric version is preceded by its adapter's file
// (blob pieces, 5: SHA-256 (32 bytes), u64 offset, u64 total size, then
// bytes; in order, the pieces of one blob together) unless the item's
// previous version names the same file. Then the cube's snapshots (3,
// stored snapshot records); one trailer (9, ArchiveTrailer) holding the
// counts and the CRC-32C of every byte before it. Nothing may follow the
// trailer. Versions 1 (no kind 4) and 2 (no parametric items, no kind 5)
// are still read.
//
// The writer produces the bytes in pieces so a cube larger than memory is
// exported in chunks, a large adapter file included; the reader takes them
// in pieces of any size, checks every frame (length against a limit before
// buffering, checksum, kind and order) and the trailer, and refuses
// anything else: a truncated, corrupt or hostile archive yields
// Errc::corrupt and never a partial result the caller has to guess about.
// The reader does not hash blob bytes: the blob store checks a blob against
// its digest as it takes it in (BlobUpload), the one place that does.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "memcube/store.h"

namespace memos::store {

constexpr std::uint32_t kArchiveFormat = 3;

// A piece of a blob (an adapter's GGUF) on its way into or out of an archive.
struct BlobPiece {
  std::array<std::uint8_t, 32> digest{};  // SHA-256 of the whole blob
  std::uint64_t offset = 0;
  std::uint64_t total = 0;  // the blob's size
  std::string_view bytes;
};

struct ArchiveManifest {
  std::string cube_name;
  std::string embedder;
  std::uint32_t dimension = 0;
  std::int64_t created_at_ms = 0;
  std::uint64_t head_version = 0;
  std::int64_t exported_at_ms = 0;
  std::uint64_t live_items = 0;
  std::string default_retriever;
  std::string language;
};

// Appends archive bytes to a caller's buffer; its state (running checksum
// and counts) can be saved and restored between chunks.
class ArchiveWriter {
 public:
  struct State {
    std::uint32_t crc = 0;
    std::uint64_t versions = 0;
    std::uint64_t snapshots = 0;
    std::uint64_t blobs = 0;
  };
  ArchiveWriter() = default;
  explicit ArchiveWriter(State state) : state_(state) {}

  void header(std::string* out);
  void manifest(const ArchiveManifest& manifest, std::string* out);
  void version(const Item& item, std::string* out);
  // Just before the item's first version.
  void access(ItemId item, const AccessStats& stats, std::string* out);
  // Just before the parametric version that first names the blob; pieces
  // in order, each with at least one byte.
  void blob_piece(const BlobPiece& piece, std::string* out);
  void snapshot(const Snapshot& snapshot, std::string* out);
  void trailer(std::string* out);
  const State& state() const { return state_; }

 private:
  void frame(std::uint8_t kind, std::string_view payload, std::string* out);
  void append(std::string_view bytes, std::string* out);
  State state_;
};

class ArchiveReader {
 public:
  // What the reader hands over, in archive order. A callback's error stops
  // the reader and is returned by feed().
  struct Sink {
    std::function<Status(const ArchiveManifest&)> manifest;
    std::function<Status(Item)> version;
    std::function<Status(Snapshot)> snapshot;
    // The next item's statistics, ahead of its versions (may be empty:
    // they are skipped).
    std::function<Status(ItemId, const AccessStats&)> access;
    // A piece of the file the next parametric version names (may be
    // empty: they are skipped).
    std::function<Status(const BlobPiece&)> blob;
  };

  // Frames larger than `max_frame_bytes` are refused before buffering.
  // A reader is a value: copy it to keep a state to resume from.
  explicit ArchiveReader(std::size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Errors: corrupt (bad header, frame, checksum, order, or bytes after the
  // trailer); whatever a sink callback returns. After an error the reader
  // is spent.
  Status feed(std::string_view bytes, const Sink& sink);
  // Errors: corrupt if the archive ended before its trailer.
  Status finish() const;
  bool complete() const { return stage_ == Stage::done; }

 private:
  enum class Stage { header, manifest, versions, snapshots, done, failed };
  Status take_frame(std::uint8_t kind, std::string_view payload, const Sink& sink);
  Status fail(const std::string& why);

  std::size_t max_frame_bytes_;
  Stage stage_ = Stage::header;
  std::string pending_;    // bytes of the header or frame being received
  std::uint32_t crc_ = 0;  // of everything before the current frame
  // Checks a version's place: its item and version after the last, its
  // tier's group, and the blob a parametric one names.
  Status check_order(const Item& item);

  std::uint32_t format_ = 0;
  std::uint64_t versions_ = 0, snapshots_ = 0, blobs_ = 0;
  ItemId last_item_ = 0;
  std::uint32_t last_version_ = 0;
  bool parametric_ = false;  // in the parametric items' group
  ItemId announced_ = 0;     // statistics read for this item; its version 1 comes next
  // The blob being received, or received whole and not yet named by the
  // version that must follow it (blob_received_ == blob_.total).
  std::optional<BlobPiece> blob_;
  std::uint64_t blob_received_ = 0;
  std::array<std::uint8_t, 32> last_blob_{};  // named by the item's last version
  std::uint64_t last_blob_size_ = 0;
};

}  // namespace memos::store
