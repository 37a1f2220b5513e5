#include "plugins/faiss-retriever/snapshot_file.h"

#include <faiss/index_io.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <system_error>
#include <type_traits>

#include "plugins/faiss-retriever/faiss_io.h"
#include "plugins/retriever-common/crc32c.h"
#include "plugins/retriever-common/file_sync.h"

namespace memos::faiss_retriever {

using retrieval::errno_text;
namespace {

constexpr char kMagic[4] = {'M', 'F', 'R', 'S'};
constexpr std::size_t kHeaderSize = 48;
constexpr std::size_t kTrailerSize = 4;
// The checksum of a load gives back the mapped pages in steps of this.
constexpr std::size_t kCrcStep = std::size_t{64} << 20;

// ---- writing: the same code measures a body and writes it ----------------

// A sink that keeps nothing: the length of a body before writing it.
class ByteCounter {
 public:
  void append(const void*, std::size_t size) { size_ += size; }
  const std::string& error() const { return none_; }
  std::uint64_t size() const { return size_; }

 private:
  std::uint64_t size_ = 0;
  std::string none_;
};

template <class Sink, class T>
void put(Sink& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(&value, sizeof(T));
}

template <class Sink>
void put_string(Sink& out, const std::string& s) {
  put(out, static_cast<std::uint32_t>(s.size()));
  out.append(s.data(), s.size());
}

template <class Sink>
void put_attributes(Sink& out, const retrieval::Attributes& a) {
  put(out, static_cast<std::uint32_t>(a.tags.size()));
  for (const auto& t : a.tags) put_string(out, t);
  put(out, static_cast<std::uint32_t>(a.meta.size()));
  for (const auto& [key, value] : a.meta) {
    put_string(out, key);
    put_string(out, value);
  }
  put_string(out, a.tier);
  put_string(out, a.state);
  put(out, a.valid_from_ms);
  put(out, a.valid_to_ms);
  put(out, a.recorded_at_ms);
  put(out, a.expires_at_ms);
  put(out, a.importance);
}

// The body `v` describes. Throws what FAISS throws.
template <class Sink>
void put_body(Sink& out, const SnapshotView& v) {
  for (std::size_t p = 0; p < v.slots; ++p) {
    SnapshotSlotRef slot = v.slot(p);
    put(out, slot.id);
    put(out, static_cast<std::uint8_t>(slot.dead ? 1 : 0));
    if (!slot.dead) put_attributes(out, *slot.attributes);
  }
  put(out, static_cast<std::uint64_t>(v.fresh_ids.size()));
  for (std::size_t i = 0; i < v.fresh_ids.size(); ++i) {
    put(out, v.fresh_ids[i]);
    put_attributes(out, v.fresh_attributes[i]);
  }
  out.append(v.fresh_vectors.data(), v.fresh_vectors.size_bytes());
  if (v.kind == IndexKind::exact) {
    out.append(v.vectors.data(), v.vectors.size_bytes());
  } else {
    SinkIOWriter<Sink> writer(out);
    faiss::write_index(v.faiss_index, &writer);
  }
}

// ---- reading --------------------------------------------------------------

// Reads what put() and put_string() wrote; every read is bounds-checked, and a failed
// one leaves the reader failed, so a caller checks once at the end.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  template <class T>
  T get() {
    T value{};
    if (remaining() < sizeof(T)) {
      ok_ = false;
      p_ = end_;
      return value;
    }
    std::memcpy(&value, p_, sizeof(T));
    p_ += sizeof(T);
    return value;
  }
  std::string get_string() {
    auto size = get<std::uint32_t>();
    if (remaining() < size) {
      ok_ = false;
      p_ = end_;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return s;
  }
  // A count of items each at least `min_bytes` long; refused if the rest of
  // the input cannot hold that many, so a corrupt count cannot make us
  // allocate gigabytes.
  std::uint32_t get_count(std::size_t min_bytes) {
    auto n = get<std::uint32_t>();
    if (static_cast<std::size_t>(n) * min_bytes > remaining()) {
      ok_ = false;
      p_ = end_;
      return 0;
    }
    return n;
  }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  const std::uint8_t* position() const { return p_; }
  void skip(std::size_t n) { p_ += std::min(n, remaining()); }
  bool ok() const { return ok_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  bool ok_ = true;
};

retrieval::Attributes get_attributes(ByteReader& r) {
  retrieval::Attributes a;
  auto tags = r.get_count(4);
  a.tags.reserve(tags);
  for (std::uint32_t i = 0; i < tags && r.ok(); ++i) a.tags.push_back(r.get_string());
  auto meta = r.get_count(8);
  a.meta.reserve(meta);
  for (std::uint32_t i = 0; i < meta && r.ok(); ++i) {
    auto key = r.get_string();
    a.meta.emplace_back(std::move(key), r.get_string());
  }
  a.tier = r.get_string();
  a.state = r.get_string();
  a.valid_from_ms = r.get<std::int64_t>();
  a.valid_to_ms = r.get<std::int64_t>();
  a.recorded_at_ms = r.get<std::int64_t>();
  a.expires_at_ms = r.get<std::int64_t>();
  a.importance = r.get<float>();
  return a;
}

std::string refused(const std::string& why) {
  return "snapshot refused: " + why;
}

// Checks and parses a mapped snapshot file; the index part stays mapped
// (Snapshot::index_bytes). `dimension` 0: the file's own.
std::string decode(MappedFile file, std::uint64_t collection, std::uint32_t dimension,
                   Snapshot* out) {
  auto bytes = file.bytes();
  if (bytes.size() < kHeaderSize + kTrailerSize) {
    return refused("truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  ByteReader h(bytes.data(), kHeaderSize);
  char magic[4];
  for (char& c : magic) c = static_cast<char>(h.get<std::uint8_t>());
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) return refused("bad magic");
  auto format = h.get<std::uint32_t>();
  if (format != 1 && format != kFormatVersion) {
    return refused("format version " + std::to_string(format) + ", this plugin reads 1 to " +
                   std::to_string(kFormatVersion));
  }
  Snapshot s;
  s.collection = h.get<std::uint64_t>();
  s.dimension = h.get<std::uint32_t>();
  auto kind = h.get<std::uint32_t>();
  s.version = h.get<std::uint64_t>();
  auto slots = h.get<std::uint64_t>();
  auto body_size = h.get<std::uint64_t>();
  std::size_t available = bytes.size() - kHeaderSize - kTrailerSize;
  if (body_size > available) return refused("truncated");
  if (body_size < available) return refused("trailing bytes after the checksum");
  std::uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + kHeaderSize + body_size, sizeof(stored_crc));
  // In steps, giving the pages back behind: the whole file need not be
  // resident at once (the parse below reads the slots' pages again).
  std::uint32_t crc = 0;
  std::size_t checked = kHeaderSize + static_cast<std::size_t>(body_size);
  for (std::size_t at = 0; at < checked; at += kCrcStep) {
    std::size_t n = std::min(kCrcStep, checked - at);
    crc = retrieval::crc32c(bytes.data() + at, n, crc);
    file.release(at, at + n);
  }
  if (crc != stored_crc) return refused("checksum mismatch");
  // The content is what was written; now check it is what was asked for.
  if (s.collection != collection) {
    return refused("the file holds collection " + std::to_string(s.collection) + ", not " +
                   std::to_string(collection));
  }
  if (dimension != 0 && s.dimension != dimension) {
    return refused("dimension " + std::to_string(s.dimension) + ", not " +
                   std::to_string(dimension));
  }
  dimension = s.dimension;
  if (kind != static_cast<std::uint32_t>(IndexKind::exact) &&
      kind != static_cast<std::uint32_t>(IndexKind::hnsw)) {
    return refused("unknown index kind " + std::to_string(kind));
  }
  s.kind = static_cast<IndexKind>(kind);

  ByteReader body(bytes.data() + kHeaderSize, static_cast<std::size_t>(body_size));
  constexpr std::size_t kMinSlot = sizeof(std::uint64_t) + 1;
  if (slots > body.remaining() / kMinSlot) return refused("slot count exceeds the body");
  s.slots.resize(static_cast<std::size_t>(slots));
  for (auto& slot : s.slots) {
    slot.id = body.get<std::uint64_t>();
    auto dead = body.get<std::uint8_t>();
    if (dead > 1) return refused("malformed slot");
    slot.dead = dead == 1;
    if (!slot.dead) slot.attributes = get_attributes(body);
    if (!body.ok()) return refused("malformed slot");
  }
  if (format >= 2) {
    auto fresh = body.get<std::uint64_t>();
    // Each is at least an id, its attributes and its vector.
    std::size_t min_size = sizeof(std::uint64_t) + static_cast<std::size_t>(dimension) * 4;
    if (!body.ok() || fresh > body.remaining() / min_size) {
      return refused("buffered count exceeds the body");
    }
    s.fresh.resize(static_cast<std::size_t>(fresh));
    for (auto& doc : s.fresh) {
      doc.id = body.get<std::uint64_t>();
      doc.attributes = get_attributes(body);
      if (!body.ok()) return refused("malformed buffered document");
    }
    std::size_t floats = s.fresh.size() * dimension;
    if (body.remaining() < floats * sizeof(float)) return refused("buffered vectors");
    s.fresh_vectors.resize(floats);
    // memcpy from or to a null pointer is undefined even for 0 bytes.
    if (floats > 0) std::memcpy(s.fresh_vectors.data(), body.position(), floats * sizeof(float));
    body.skip(floats * sizeof(float));
  }
  if (s.kind == IndexKind::exact &&
      body.remaining() != s.slots.size() * dimension * sizeof(float)) {
    return refused("vector section size");
  }
  s.index_offset = static_cast<std::size_t>(body.position() - bytes.data());
  s.index_bytes = {body.position(), body.remaining()};
  file.release(0, s.index_offset);  // the slots are parsed
  s.file = std::move(file);         // the mapping moves; index_bytes stays valid
  *out = std::move(s);
  return "";
}

// ---- moving whole files ----------------------------------------------------

using retrieval::folder_of;

// Writes `source`'s bytes to `to` as a save writes a snapshot (.tmp, fsync,
// rename, the folder's fsync), giving the mapping's pages back in the steps
// a load's checksum takes.
std::string copy_file(const MappedFile& source, const std::string& to) {
  DurableFile copy;
  std::string why = copy.create(folder_of(to), to);
  if (!why.empty()) return why;
  auto bytes = source.bytes();
  for (std::size_t at = 0; at < bytes.size(); at += kCrcStep) {
    std::size_t n = std::min(kCrcStep, bytes.size() - at);
    copy.append(bytes.data() + at, n);
    source.release(at, at + n);
  }
  return copy.commit();
}

// Moves the file at `from`, which must be the one `checked` maps, to `to`:
// fsyncs it, renames it, and checks that `to` then names it (`from` may have
// been replaced in between). Returns "" with *moved set when it did; ""
// with *moved false when a copy of `checked` must do instead (gone,
// replaced, or a rename refused: another file system, a folder memosd
// keeps read-only); else why (an fsync failed: the disk's trouble).
std::string move_checked(const std::string& from, const std::string& to, const MappedFile& checked,
                         bool* moved) {
  *moved = false;
  int fd = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return "";
  std::string why;
  if (checked.same_file(fd)) {
    if (::fsync(fd) != 0) {
      why = errno_text("cannot fsync", from);
    } else if (::rename(from.c_str(), to.c_str()) == 0) {
      int now = ::open(to.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      *moved = now >= 0 && checked.same_file(now);
      if (now >= 0) ::close(now);
    }
  }
  ::close(fd);
  return why;
}

}  // namespace

std::string snapshot_path(const std::string& dir, std::uint64_t collection) {
  return dir + "/" + std::to_string(collection) + ".dense";
}

std::string write_snapshot(const SnapshotView& view, DurableFile& file) {
  try {
    ByteCounter body;
    put_body(body, view);
    file.append(kMagic, sizeof(kMagic));
    put(file, kFormatVersion);
    put(file, view.collection);
    put(file, view.dimension);
    put(file, static_cast<std::uint32_t>(view.kind));
    put(file, view.version);
    put(file, static_cast<std::uint64_t>(view.slots));
    put(file, body.size());
    put_body(file, view);
    // The caller's lock keeps the index still, so this is a bug if it fires:
    // better no snapshot than one whose header lies.
    if (file.error().empty() && file.appended() != kHeaderSize + body.size()) {
      file.fail("the snapshot body changed while it was written");
    }
    put(file, file.crc());
  } catch (const std::exception& e) {
    // A write error FAISS turned into an exception is already recorded.
    file.fail(std::string("cannot write the snapshot: ") + e.what());
  }
  return file.error();
}

std::string read_snapshot_file(const std::string& path, std::uint64_t collection,
                               std::uint32_t dimension, Snapshot* out, bool* missing) {
  MappedFile file;
  bool absent = false;
  std::string why = file.open(path, &absent);
  if (missing) *missing = absent;
  if (!why.empty()) return refused(why);
  return decode(std::move(file), collection, dimension, out);
}

std::string read_snapshot(const std::string& dir, std::uint64_t collection, std::uint32_t dimension,
                          Snapshot* out) {
  std::string path = snapshot_path(dir, collection);
  // A .tmp is a write that never reached its rename: never trust it.
  std::string tmp = path + ".tmp";
  bool had_tmp = ::unlink(tmp.c_str()) == 0;
  bool missing = false;
  std::string why = read_snapshot_file(path, collection, dimension, out, &missing);
  if (missing) {
    return had_tmp ? "no snapshot (removed an unfinished " + tmp + ")" : "no snapshot";
  }
  return why;
}

std::string remove_snapshot(const std::string& dir, std::uint64_t collection) {
  std::string path = snapshot_path(dir, collection);
  ::unlink((path + ".tmp").c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_text("cannot delete", path);
  return "";
}

std::string export_snapshot_file(const std::string& dir, std::uint64_t collection,
                                 const std::string& path) {
  std::string from = snapshot_path(dir, collection);
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a stale one would make the link fail
  if (::link(from.c_str(), tmp.c_str()) != 0) {
    MappedFile source;
    bool missing = false;
    std::string why = source.open(from, &missing);
    if (!why.empty()) return why;
    return copy_file(source, path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text("cannot rename", tmp);
    ::unlink(tmp.c_str());
    return why;
  }
  // A rename between two links to one file changes nothing, the .tmp
  // included (`path` already was this snapshot): it must not stay.
  ::unlink(tmp.c_str());
  return fsync_folder(folder_of(path));
}

std::string install_snapshot_file(const std::string& dir, std::uint64_t collection,
                                  const std::string& path, const Snapshot& checked) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  std::string to = snapshot_path(dir, collection);
  bool moved = false;
  std::string why = move_checked(path, to, checked.file, &moved);
  if (!why.empty()) return why;
  // The copy's commit fsyncs the folder itself.
  if (!moved) return copy_file(checked.file, to);
  return fsync_folder(dir);
}

}  // namespace memos::faiss_retriever
