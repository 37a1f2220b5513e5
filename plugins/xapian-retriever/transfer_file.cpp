#include "plugins/xapian-retriever/transfer_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "plugins/retriever-common/crc32c.h"
#include "plugins/retriever-common/file_sync.h"
#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/lexical_internal.h"

namespace memos::lexical {
namespace {

constexpr char kMagic[4] = {'M', 'X', 'R', 'S'};
constexpr std::size_t kTrailerSize = 20;
constexpr std::size_t kHeadSize = kTrailerSize - sizeof(std::uint32_t);  // before the CRC
// Checksums are read in pieces of this: the file need not fit in memory.
constexpr std::size_t kPiece = std::size_t{1} << 20;

using retrieval::errno_text;
using retrieval::folder_of;
using retrieval::fsync_folder;

Error refused(const std::string& why) {
  return Error(Error::Kind::invalid, "snapshot refused: " + why);
}

Error trouble(const std::string& why) {
  return Error(Error::Kind::resource, why);
}

// Closes a descriptor when it goes out of scope, unless released.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Removes a file when it goes out of scope, unless kept: every failure
// of a write leaves no .tmp.
class Scratch {
 public:
  explicit Scratch(std::string path) : path_(std::move(path)) {}
  ~Scratch() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

bool read_at(int fd, void* data, std::size_t size, std::uint64_t offset) {
  auto* p = static_cast<std::uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or the file shrank under us
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

bool write_at(int fd, const void* data, std::size_t size, std::uint64_t offset) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

// The CRC-32C of the first `size` bytes of the file. False on a read error.
bool checksum(int fd, std::uint64_t size, std::uint32_t* crc) {
  std::vector<std::uint8_t> piece(static_cast<std::size_t>(std::min<std::uint64_t>(size, kPiece)));
  *crc = 0;
  for (std::uint64_t at = 0; at < size; at += piece.size()) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), size - at));
    if (!read_at(fd, piece.data(), n, at)) return false;
    *crc = retrieval::crc32c(piece.data(), n, *crc);
  }
  return true;
}

// The trailer's bytes before its CRC.
std::array<std::uint8_t, kHeadSize> trailer_head(std::uint64_t length) {
  std::array<std::uint8_t, kHeadSize> head{};
  std::memcpy(head.data(), &length, sizeof(length));
  std::memcpy(head.data() + 8, &kTransferFormat, sizeof(kTransferFormat));
  std::memcpy(head.data() + 12, kMagic, sizeof(kMagic));
  return head;
}

// Appends the trailer to the single-file database Xapian wrote at `tmp`,
// and fsyncs it all.
void append_trailer(const std::string& tmp) {
  Descriptor fd(::open(tmp.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw trouble(errno_text("cannot open", tmp));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw trouble(errno_text("cannot stat", tmp));
  auto length = static_cast<std::uint64_t>(st.st_size);
  std::uint32_t crc = 0;
  if (!checksum(fd.get(), length, &crc)) throw trouble(errno_text("cannot read", tmp));
  auto head = trailer_head(length);
  crc = retrieval::crc32c(head.data(), head.size(), crc);
  std::array<std::uint8_t, kTrailerSize> trailer{};
  std::memcpy(trailer.data(), head.data(), head.size());
  std::memcpy(trailer.data() + head.size(), &crc, sizeof(crc));
  if (!write_at(fd.get(), trailer.data(), trailer.size(), length)) {
    throw trouble(errno_text("cannot write", tmp));
  }
  if (::fsync(fd.get()) != 0) throw trouble(errno_text("cannot fsync", tmp));
  if (::close(fd.release()) != 0) throw trouble(errno_text("cannot close", tmp));
}

// Checks the trailer of the open file `fd` (at `path`, of `size` bytes)
// and the checksum it carries.
void check_trailer(int fd, const std::string& path, std::uint64_t size) {
  if (size < kTrailerSize) throw refused("truncated (" + std::to_string(size) + " bytes)");
  std::array<std::uint8_t, kTrailerSize> trailer{};
  if (!read_at(fd, trailer.data(), trailer.size(), size - kTrailerSize)) {
    throw refused(errno_text("cannot read", path));
  }
  std::uint64_t length = 0;
  std::uint32_t format = 0;
  std::uint32_t stored = 0;
  std::memcpy(&length, trailer.data(), sizeof(length));
  std::memcpy(&format, trailer.data() + 8, sizeof(format));
  std::memcpy(&stored, trailer.data() + kHeadSize, sizeof(stored));
  if (std::memcmp(trailer.data() + 12, kMagic, sizeof(kMagic)) != 0) {
    throw refused("no transfer trailer (truncated, or not a transfer file)");
  }
  if (format != kTransferFormat) {
    throw refused("format version " + std::to_string(format) + ", this plugin reads " +
                  std::to_string(kTransferFormat));
  }
  if (length != size - kTrailerSize) {
    throw refused("the trailer says " + std::to_string(length) +
                  " bytes of database, the file has " + std::to_string(size - kTrailerSize));
  }
  std::uint32_t crc = 0;
  if (!checksum(fd, size - sizeof(stored), &crc)) throw refused(errno_text("cannot read", path));
  if (crc != stored) throw refused("checksum mismatch");
}

}  // namespace

Xapian::doccount write_transfer_file(const std::string& database, const std::string& path) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a stale one: Xapian would write into it
  Scratch scratch(tmp);
  Xapian::doccount documents = 0;
  try {
    Xapian::Database db(database, Xapian::DB_BACKEND_GLASS);
    documents = db.get_doccount();
    db.compact(tmp, Xapian::DBCOMPACT_SINGLE_FILE);
  } catch (const Xapian::Error& e) {
    throw trouble("compacting " + database + " into " + tmp + ": " + detail::describe(e));
  }
  append_trailer(tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw trouble(errno_text("cannot rename", tmp));
  scratch.keep();
  // Without this the rename itself may not survive a power loss.
  if (std::string why = fsync_folder(folder_of(path)); !why.empty()) throw trouble(why);
  return documents;
}

Xapian::Database open_transfer_file(const std::string& path) {
  // O_NOFOLLOW: the file is memosd's to hand over, never one a link points
  // at; O_NONBLOCK: a FIFO must not hold the call (it is refused below).
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ELOOP) throw refused(path + " is a symbolic link");
    throw refused(errno_text("cannot open", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw refused(errno_text("cannot stat", path));
  if (!S_ISREG(st.st_mode)) throw refused(path + " is not a regular file");
  check_trailer(fd.get(), path, static_cast<std::uint64_t>(st.st_size));
  // The very file checked (the descriptor, not the path, goes to Xapian),
  // from its start.
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) throw refused(errno_text("cannot seek", path));
  try {
    return Xapian::Database(fd.release());  // Xapian closes it, on failure too
  } catch (const Xapian::Error& e) {
    throw refused(detail::describe(e));
  }
}

}  // namespace memos::lexical
