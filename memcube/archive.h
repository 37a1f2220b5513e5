// archive.h — the portable cube archive: format, writer and streaming reader.
//
// Format version 2 (all integers little-endian):
//
//   header   8 bytes "MEMOSARC", u32 format version (2), u32 flags (0)
//   frames   u8 kind, u32 payload length, u32 CRC-32C of the payload, payload
//
// Frame kinds, in this order: one manifest (1, records.capnp
// ArchiveManifest); the item versions (2), each a stored item record
// (record_codec.h: its own checksum header, then the Cap'n Proto record),
// grouped by item in ascending id and, within an item, versions 1..n, an
// item's versions preceded by its access statistics and strength (4, a
// 48-byte row: item id, hits, last access ms, strength (f64), weighted
// recalls (f64), last recall ms) when it was ever read; the cube's
// snapshots (3, stored snapshot records); one trailer (9, ArchiveTrailer)
// holding the counts and the CRC-32C of every byte before it. Nothing may
// follow the trailer. Version 1 (no frames of kind 4) is still read.
//
// The writer produces the bytes in pieces so a cube larger than memory is
// exported in chunks; the reader takes them in pieces of any size, checks
// every frame (length against a limit before buffering, checksum, kind and
// order) and the trailer, and refuses anything else: a truncated, corrupt or
// hostile archive yields Errc::corrupt and never a partial result the caller
// has to guess about.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "memcube/store.h"

namespace memos::store {

constexpr std::uint32_t kArchiveFormat = 2;

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
  };
  ArchiveWriter() = default;
  explicit ArchiveWriter(State state) : state_(state) {}

  void header(std::string* out);
  void manifest(const ArchiveManifest& manifest, std::string* out);
  void version(const Item& item, std::string* out);
  // Just before the item's first version.
  void access(ItemId item, const AccessStats& stats, std::string* out);
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
  std::uint64_t versions_ = 0, snapshots_ = 0;
  ItemId last_item_ = 0;
  std::uint32_t last_version_ = 0;
  ItemId announced_ = 0;  // statistics read for this item; its version 1 comes next
};

}  // namespace memos::store
