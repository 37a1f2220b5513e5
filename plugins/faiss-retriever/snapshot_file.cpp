#include "plugins/faiss-retriever/snapshot_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "plugins/faiss-retriever/crc32c.h"

namespace memos::faiss_retriever {
namespace {

constexpr char kMagic[4] = {'M', 'F', 'R', 'S'};
constexpr std::size_t kHeaderSize = 48;
constexpr std::size_t kTrailerSize = 4;

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Appends fixed-size values and length-prefixed strings to a byte buffer.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  void put_bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    put_bytes(s.data(), s.size());
  }

 private:
  std::vector<std::uint8_t>& out_;
};

// Reads what ByteWriter wrote; every read is bounds-checked, and a failed
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

void put_attributes(ByteWriter& w, const retrieval::Attributes& a) {
  w.put(static_cast<std::uint32_t>(a.tags.size()));
  for (const auto& t : a.tags) w.put_string(t);
  w.put(static_cast<std::uint32_t>(a.meta.size()));
  for (const auto& [key, value] : a.meta) {
    w.put_string(key);
    w.put_string(value);
  }
  w.put_string(a.tier);
  w.put_string(a.state);
  w.put(a.valid_from_ms);
  w.put(a.valid_to_ms);
  w.put(a.recorded_at_ms);
  w.put(a.expires_at_ms);
  w.put(a.importance);
}

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

std::vector<std::uint8_t> encode(const Snapshot& s) {
  std::vector<std::uint8_t> bytes(kHeaderSize);
  ByteWriter body(bytes);
  for (const auto& slot : s.slots) {
    body.put(slot.id);
    body.put(static_cast<std::uint8_t>(slot.dead ? 1 : 0));
    if (!slot.dead) put_attributes(body, slot.attributes);
  }
  body.put(static_cast<std::uint64_t>(s.fresh.size()));
  for (const auto& doc : s.fresh) {
    body.put(doc.id);
    put_attributes(body, doc.attributes);
  }
  body.put_bytes(s.fresh_vectors.data(), s.fresh_vectors.size() * sizeof(float));
  if (s.kind == IndexKind::exact) {
    body.put_bytes(s.vectors.data(), s.vectors.size() * sizeof(float));
  } else {
    body.put_bytes(s.faiss_index.data(), s.faiss_index.size());
  }
  std::uint64_t body_size = bytes.size() - kHeaderSize;

  std::vector<std::uint8_t> header;
  ByteWriter h(header);
  h.put_bytes(kMagic, sizeof(kMagic));
  h.put(kFormatVersion);
  h.put(s.collection);
  h.put(s.dimension);
  h.put(static_cast<std::uint32_t>(s.kind));
  h.put(s.version);
  h.put(static_cast<std::uint64_t>(s.slots.size()));
  h.put(body_size);
  std::memcpy(bytes.data(), header.data(), kHeaderSize);

  ByteWriter trailer(bytes);
  trailer.put(crc32c(bytes.data(), bytes.size()));
  return bytes;
}

std::string write_all(int fd, const std::vector<std::uint8_t>& bytes, const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_text("cannot write", path);
    done += static_cast<std::size_t>(n);
  }
  return "";
}

std::string fsync_folder(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_text("cannot open folder", dir);
  int rc = ::fsync(fd);
  std::string why = rc == 0 ? "" : errno_text("cannot fsync folder", dir);
  ::close(fd);
  return why;
}

// Reads a whole file. Returns "" or why; sets *missing when it does not exist.
std::string read_file(const std::string& path, std::vector<std::uint8_t>* out, bool* missing) {
  *missing = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    return errno_text("cannot open", path);
  }
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = errno_text("cannot read", path);
      ::close(fd);
      return why;
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  ::close(fd);
  *out = std::move(bytes);
  return "";
}

std::string refused(const std::string& why) {
  return "snapshot refused: " + why;
}

// Decodes a whole snapshot file already read into memory.
std::string decode(const std::vector<std::uint8_t>& bytes, std::uint64_t collection,
                   std::uint32_t dimension, Snapshot* out) {
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
  if (crc32c(bytes.data(), kHeaderSize + body_size) != stored_crc) {
    return refused("checksum mismatch");
  }
  // The content is what was written; now check it is what was asked for.
  if (s.collection != collection) {
    return refused("the file holds collection " + std::to_string(s.collection) + ", not " +
                   std::to_string(collection));
  }
  if (s.dimension != dimension) {
    return refused("dimension " + std::to_string(s.dimension) + ", not " +
                   std::to_string(dimension));
  }
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
    if (floats > 0) std::memcpy(s.fresh_vectors.data(), body.position(), floats * sizeof(float));
    body.skip(floats * sizeof(float));
  }
  if (s.kind == IndexKind::exact) {
    std::size_t floats = s.slots.size() * dimension;
    if (body.remaining() != floats * sizeof(float)) return refused("vector section size");
    s.vectors.resize(floats);
    // An empty collection's vectors are an empty vector: memcpy from or to a
    // null pointer is undefined even for 0 bytes (UBSan, a cube made while the
    // disk was full).
    if (floats > 0) std::memcpy(s.vectors.data(), body.position(), floats * sizeof(float));
  } else {
    s.faiss_index.assign(body.position(), body.position() + body.remaining());
  }
  *out = std::move(s);
  return "";
}

}  // namespace

std::string snapshot_path(const std::string& dir, std::uint64_t collection) {
  return dir + "/" + std::to_string(collection) + ".dense";
}

std::string write_snapshot(const std::string& dir, const Snapshot& snapshot) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  std::string path = snapshot_path(dir, snapshot.collection);
  std::string tmp = path + ".tmp";
  auto bytes = encode(snapshot);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_text("cannot create", tmp);
  std::string why = write_all(fd, bytes, tmp);
  if (why.empty() && ::fsync(fd) != 0) why = errno_text("cannot fsync", tmp);
  if (::close(fd) != 0 && why.empty()) why = errno_text("cannot close", tmp);
  if (why.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    why = errno_text("cannot rename", tmp);
  }
  if (!why.empty()) {
    ::unlink(tmp.c_str());
    return why;
  }
  // Without this the rename itself may not survive a power loss.
  return fsync_folder(dir);
}

std::string read_snapshot(const std::string& dir, std::uint64_t collection, std::uint32_t dimension,
                          Snapshot* out) {
  std::string path = snapshot_path(dir, collection);
  // A .tmp is a write that never reached its rename: never trust it.
  std::string tmp = path + ".tmp";
  bool had_tmp = ::unlink(tmp.c_str()) == 0;
  std::vector<std::uint8_t> bytes;
  bool missing = false;
  std::string why = read_file(path, &bytes, &missing);
  if (missing) {
    return had_tmp ? "no snapshot (removed an unfinished " + tmp + ")" : "no snapshot";
  }
  if (!why.empty()) return refused(why);
  return decode(bytes, collection, dimension, out);
}

std::string remove_snapshot(const std::string& dir, std::uint64_t collection) {
  std::string path = snapshot_path(dir, collection);
  ::unlink((path + ".tmp").c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_text("cannot delete", path);
  return "";
}

}  // namespace memos::faiss_retriever
