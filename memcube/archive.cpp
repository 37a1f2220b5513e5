#include "memcube/archive.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "memcube/crc32c.h"
#include "memcube/le_bytes.h"
#include "memcube/record_codec.h"
#include "memcube/schema/records.capnp.h"

namespace memos::store {
namespace {

constexpr char kMagic[8] = {'M', 'E', 'M', 'O', 'S', 'A', 'R', 'C'};
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kFrameHeaderBytes = 9;
enum : std::uint8_t {
  kManifest = 1,
  kVersion = 2,
  kSnapshot = 3,
  kAccess = 4,
  kBlobPiece = 5,
  kTrailer = 9
};
constexpr std::size_t kAccessBytes = 48;
constexpr std::size_t kBlobPieceHeader = 32 + 8 + 8;

std::string message_bytes(capnp::MallocMessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Reads a small Cap'n Proto payload with tight limits.
template <class Root, class Fill>
bool read_message(std::string_view payload, Fill&& fill) {
  if (payload.empty() || payload.size() % sizeof(capnp::word) != 0) return false;
  std::vector<capnp::word> words(payload.size() / sizeof(capnp::word));
  std::memcpy(words.data(), payload.data(), payload.size());
  std::uint32_t count_minus_one;
  std::memcpy(&count_minus_one, words.data(), 4);
  if (count_minus_one >= 16) return false;
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 2 + 64;
  options.nestingLimit = 8;
  bool ok = true;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()), options);
    ok = reader.getEnd() == words.data() + words.size();
    fill(reader.getRoot<Root>());
  });
  return ok && failure == nullptr;
}

}  // namespace

// ---- writer -------------------------------------------------------------------

void ArchiveWriter::append(std::string_view bytes, std::string* out) {
  state_.crc = crc32c(bytes.data(), bytes.size(), state_.crc);
  out->append(bytes);
}

void ArchiveWriter::frame(std::uint8_t kind, std::string_view payload, std::string* out) {
  std::string head;
  head.push_back(static_cast<char>(kind));
  put_le(&head, payload.size(), 4);
  put_le(&head, crc32c(payload.data(), payload.size()), 4);
  append(head, out);
  append(payload, out);
}

void ArchiveWriter::header(std::string* out) {
  std::string head(kMagic, sizeof(kMagic));
  put_le(&head, kArchiveFormat, 4);
  put_le(&head, 0, 4);
  append(head, out);
}

void ArchiveWriter::manifest(const ArchiveManifest& m, std::string* out) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ArchiveManifest>();
  r.setCubeName(capnp::Text::Reader(m.cube_name.data(), m.cube_name.size()));
  r.setEmbedder(capnp::Text::Reader(m.embedder.data(), m.embedder.size()));
  r.setDimension(m.dimension);
  r.setCreatedAtMs(m.created_at_ms);
  r.setHeadVersion(m.head_version);
  r.setExportedAtMs(m.exported_at_ms);
  r.setLiveItems(m.live_items);
  r.setDefaultRetriever(
      capnp::Text::Reader(m.default_retriever.data(), m.default_retriever.size()));
  r.setLanguage(capnp::Text::Reader(m.language.data(), m.language.size()));
  frame(kManifest, message_bytes(message), out);
}

void ArchiveWriter::version(const Item& item, std::string* out) {
  frame(kVersion, encode_item(item), out);
  ++state_.versions;
}

void ArchiveWriter::access(ItemId item, const AccessStats& stats, std::string* out) {
  std::string row;
  put_le(&row, item, 8);
  put_le(&row, stats.hits, 8);
  put_le(&row, static_cast<std::uint64_t>(std::max<std::int64_t>(stats.last_access_ms, 0)), 8);
  put_le(&row, std::bit_cast<std::uint64_t>(stats.strength), 8);
  put_le(&row, std::bit_cast<std::uint64_t>(stats.recalls), 8);
  put_le(&row, static_cast<std::uint64_t>(std::max<std::int64_t>(stats.last_recall_ms, 0)), 8);
  frame(kAccess, row, out);
}

void ArchiveWriter::blob_piece(const BlobPiece& piece, std::string* out) {
  std::string payload(piece.digest.begin(), piece.digest.end());
  put_le(&payload, piece.offset, 8);
  put_le(&payload, piece.total, 8);
  payload.append(piece.bytes);
  frame(kBlobPiece, payload, out);
  if (piece.offset + piece.bytes.size() == piece.total) ++state_.blobs;
}

void ArchiveWriter::snapshot(const Snapshot& snapshot, std::string* out) {
  frame(kSnapshot, encode_snapshot(snapshot), out);
  ++state_.snapshots;
}

void ArchiveWriter::trailer(std::string* out) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ArchiveTrailer>();
  r.setVersions(state_.versions);
  r.setSnapshots(state_.snapshots);
  r.setCrc(state_.crc);
  r.setBlobs(state_.blobs);
  frame(kTrailer, message_bytes(message), out);
}

// ---- reader -------------------------------------------------------------------

Status ArchiveReader::fail(const std::string& why) {
  stage_ = Stage::failed;
  pending_.clear();
  return {Errc::corrupt, "archive " + why};
}

Status ArchiveReader::feed(std::string_view bytes, const Sink& sink) {
  if (stage_ == Stage::failed) return {Errc::corrupt, "archive reader already failed"};
  if (stage_ == Stage::done) {
    return bytes.empty() ? Status{} : fail("has bytes after its trailer");
  }
  pending_.append(bytes);
  std::size_t at = 0;
  Status result;
  while (result.ok() && stage_ != Stage::done) {
    std::string_view rest(pending_.data() + at, pending_.size() - at);
    if (stage_ == Stage::header) {
      if (rest.size() < kHeaderBytes) break;
      if (std::memcmp(rest.data(), kMagic, sizeof(kMagic)) != 0)
        return fail("is not a memosd archive");
      format_ = static_cast<std::uint32_t>(get_le(rest.data() + 8, 4));
      if (format_ < 1 || format_ > kArchiveFormat) {
        return fail("has format version " + std::to_string(format_) +
                    "; this memosd reads versions 1 to " + std::to_string(kArchiveFormat));
      }
      if (get_le(rest.data() + 12, 4) != 0) return fail("has unknown flags");
      crc_ = crc32c(rest.data(), kHeaderBytes, crc_);
      at += kHeaderBytes;
      stage_ = Stage::manifest;
      continue;
    }
    if (rest.size() < kFrameHeaderBytes) break;
    auto kind = static_cast<std::uint8_t>(rest[0]);
    std::uint64_t length = get_le(rest.data() + 1, 4);
    if (length > max_frame_bytes_) return fail("has a frame larger than the limit");
    if (rest.size() < kFrameHeaderBytes + length) break;
    std::string_view payload = rest.substr(kFrameHeaderBytes, length);
    if (crc32c(payload.data(), payload.size()) != get_le(rest.data() + 5, 4)) {
      return fail("has a frame that fails its checksum");
    }
    result = take_frame(kind, payload, sink);
    if (stage_ == Stage::failed) return result;
    if (kind != kTrailer) crc_ = crc32c(rest.data(), kFrameHeaderBytes + length, crc_);
    at += kFrameHeaderBytes + length;
  }
  if (!result.ok()) {
    stage_ = Stage::failed;
    pending_.clear();
    return result;
  }
  if (stage_ == Stage::done && at != pending_.size()) return fail("has bytes after its trailer");
  pending_.erase(0, at);
  return {};
}

Status ArchiveReader::take_frame(std::uint8_t kind, std::string_view payload, const Sink& sink) {
  switch (kind) {
    case kManifest: {
      if (stage_ != Stage::manifest) return fail("has a manifest out of place");
      ArchiveManifest m;
      if (!read_message<records::ArchiveManifest>(payload, [&](auto r) {
            m.cube_name = std::string(r.getCubeName().cStr(), r.getCubeName().size());
            m.embedder = std::string(r.getEmbedder().cStr(), r.getEmbedder().size());
            m.dimension = r.getDimension();
            m.created_at_ms = r.getCreatedAtMs();
            m.head_version = r.getHeadVersion();
            m.exported_at_ms = r.getExportedAtMs();
            m.live_items = r.getLiveItems();
            m.default_retriever =
                std::string(r.getDefaultRetriever().cStr(), r.getDefaultRetriever().size());
            m.language = std::string(r.getLanguage().cStr(), r.getLanguage().size());
          })) {
        return fail("has a manifest that does not decode");
      }
      stage_ = Stage::versions;
      return sink.manifest(m);
    }
    case kVersion: {
      if (stage_ != Stage::versions) return fail("has an item version out of place");
      Item item;
      if (Status s = decode_item(payload, &item); !s.ok())
        return fail("item version: " + s.message);
      if (Status s = check_order(item); !s.ok()) return s;
      ++versions_;
      return sink.version(std::move(item));
    }
    case kBlobPiece: {
      if (format_ < 3 || stage_ != Stage::versions || announced_ != 0)
        return fail("has a blob piece out of place");
      if (payload.size() <= kBlobPieceHeader) return fail("has a blob piece of a bad length");
      BlobPiece piece;
      std::memcpy(piece.digest.data(), payload.data(), piece.digest.size());
      piece.offset = get_le(payload.data() + 32, 8);
      piece.total = get_le(payload.data() + 40, 8);
      piece.bytes = payload.substr(kBlobPieceHeader);
      // The pieces of one blob come together, in order, and end at its size.
      const bool continues = blob_ && blob_received_ < blob_->total &&
                             piece.digest == blob_->digest && piece.total == blob_->total &&
                             piece.offset == blob_received_;
      const bool starts = !blob_ && piece.offset == 0;
      if (!continues && !starts) return fail("has blob pieces out of order");
      if (piece.bytes.size() > piece.total - piece.offset)
        return fail("has a blob piece past its blob's size");
      if (starts) blob_ = BlobPiece{piece.digest, 0, piece.total, {}};
      blob_received_ = piece.offset + piece.bytes.size();
      if (blob_received_ == piece.total) ++blobs_;
      return sink.blob ? sink.blob(piece) : Status{};
    }
    case kAccess: {
      if (stage_ != Stage::versions || announced_ != 0)
        return fail("has access statistics out of place");
      if (payload.size() != kAccessBytes) return fail("has access statistics of a bad length");
      const ItemId id = get_le(payload.data(), 8);
      if (id <= last_item_ || parametric_ || blob_)
        return fail("has access statistics out of order");
      AccessStats a;
      a.hits = get_le(payload.data() + 8, 8);
      a.last_access_ms = static_cast<std::int64_t>(get_le(payload.data() + 16, 8));
      a.strength = std::bit_cast<double>(get_le(payload.data() + 24, 8));
      a.recalls = std::bit_cast<double>(get_le(payload.data() + 32, 8));
      a.last_recall_ms = static_cast<std::int64_t>(get_le(payload.data() + 40, 8));
      if (!std::isfinite(a.strength) || a.strength < 1 || !std::isfinite(a.recalls) ||
          a.recalls < 0 || a.last_access_ms < 0 || a.last_recall_ms < 0) {
        return fail("has an impossible strength");
      }
      announced_ = id;
      return sink.access ? sink.access(id, a) : Status{};
    }
    case kSnapshot: {
      if (stage_ != Stage::versions && stage_ != Stage::snapshots) {
        return fail("has a snapshot out of place");
      }
      if (announced_ != 0) return fail("has access statistics of no item");
      if (blob_) return fail("has a blob no version names");
      stage_ = Stage::snapshots;
      Snapshot snap;
      if (Status s = decode_snapshot(payload, &snap); !s.ok())
        return fail("snapshot: " + s.message);
      ++snapshots_;
      return sink.snapshot(std::move(snap));
    }
    case kTrailer: {
      if (stage_ != Stage::versions && stage_ != Stage::snapshots) {
        return fail("has a trailer out of place");
      }
      if (announced_ != 0) return fail("has access statistics of no item");
      if (blob_) return fail("has a blob no version names");
      std::uint64_t versions = 0, snapshots = 0, blobs = 0;
      std::uint32_t crc = 0;
      if (!read_message<records::ArchiveTrailer>(payload, [&](auto r) {
            versions = r.getVersions();
            snapshots = r.getSnapshots();
            crc = r.getCrc();
            blobs = r.getBlobs();
          })) {
        return fail("has a trailer that does not decode");
      }
      if (versions != versions_ || snapshots != snapshots_ || blobs != blobs_)
        return fail("is missing frames");
      if (crc != crc_) return fail("fails its whole-file checksum");
      stage_ = Stage::done;
      return {};
    }
    default:
      return fail("has a frame of unknown kind " + std::to_string(kind));
  }
}

Status ArchiveReader::check_order(const Item& item) {
  const bool is_parametric = item.tier == Tier::parametric;
  if (is_parametric != item.param.has_value()) return fail("has an item of a muddled tier");
  if (item.tier == Tier::activation) return fail("has an activation item");
  if (is_parametric && format_ < 3) return fail("has an adapter in a format without them");
  // Versions come grouped by item, versions 1..n, plaintext items in
  // ascending id and then parametric ones in ascending id.
  if (is_parametric && !parametric_) {
    parametric_ = true;
    last_item_ = 0;
    last_version_ = 0;
  }
  if (!is_parametric && parametric_) return fail("has a plaintext item after the adapters");
  const bool next_of_same = item.id == last_item_ && item.version == last_version_ + 1;
  const bool first_of_next = item.id > last_item_ && item.version == 1;
  if (!next_of_same && !first_of_next) return fail("has item versions out of order");
  if (announced_ != 0 && (item.id != announced_ || item.version != 1 || is_parametric))
    return fail("has access statistics of another item");
  // A parametric version names the file just received whole, or the one
  // its item's previous version named; nothing else.
  if (blob_ && (blob_received_ < blob_->total || !is_parametric))
    return fail("has an item version inside a blob");
  if (is_parametric) {
    if (blob_) {
      if (item.param->blob != blob_->digest || item.param->size != blob_->total)
        return fail("has an adapter that names another file than the one before it");
    } else if (!next_of_same || item.param->blob != last_blob_ ||
               item.param->size != last_blob_size_) {
      return fail("has an adapter version whose file it does not carry");
    }
    last_blob_ = item.param->blob;
    last_blob_size_ = item.param->size;
    blob_.reset();
    blob_received_ = 0;
  }
  announced_ = 0;
  last_item_ = item.id;
  last_version_ = item.version;
  return {};
}

Status ArchiveReader::finish() const {
  if (stage_ == Stage::done) return {};
  if (stage_ == Stage::failed) return {Errc::corrupt, "archive reader already failed"};
  return {Errc::corrupt, "archive is truncated (it ends before its trailer)"};
}

}  // namespace memos::store
