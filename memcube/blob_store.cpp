#include "memcube/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace memos::store {
namespace {

Status errno_status(const std::string& what) {
  int err = errno;
  std::string msg = what + ": " + std::strerror(err);
  return {err == ENOSPC || err == EDQUOT ? Errc::storage_full : Errc::io, msg};
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Holds `fd` instead, closing the one it held.
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // Closes now, reporting the error close() may carry (NFS, quotas).
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Opens the regular file at `path` for reading into `*in`, not through a
// symbolic link. Errors: not_found, io (a link, not a regular file).
Status open_regular(const std::string& path, Fd* in) {
  in->reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in->get() < 0) {
    if (errno == ENOENT) return {Errc::not_found, "no file " + path};
    if (errno == ELOOP) return {Errc::io, path + " is a symbolic link"};
    return errno_status("open " + path);
  }
  struct stat st {};
  if (::fstat(in->get(), &st) != 0) return errno_status("stat " + path);
  if (!S_ISREG(st.st_mode)) return {Errc::io, path + " is not a regular file"};
  return {};
}

// Reads `in` (the file at `path`) to its end in blocks, handing each to
// `piece`, whose error stops it. Errors: io, and `piece`'s.
Status read_blocks(const Fd& in, const std::string& path,
                   const std::function<Status(std::string_view)>& piece) {
  std::string block(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read " + path);
    if (n == 0) return {};
    if (Status s = piece(std::string_view(block.data(), static_cast<std::size_t>(n))); !s.ok())
      return s;
  }
}

Status make_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_status("mkdir " + dir);
  return {};
}

// Why a blob's file did not open: absent is not_found.
Status open_failed(const BlobId& id, const std::string& path) {
  if (errno == ENOENT) return {Errc::not_found, "no blob " + to_hex(id)};
  return errno_status("open " + path);
}

Status write_at(int fd, std::uint64_t offset, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("write " + path);
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

// The durability contract's last steps for a complete temporary file:
// fsync it, rename it to `final_path`, fsync the folder.
Status place(Fd& fd, const std::string& tmp_path, const std::string& final_path) {
  std::string fan_out = final_path.substr(0, final_path.rfind('/'));
  if (Status s = make_dir(fan_out); !s.ok()) return s;
  if (::fsync(fd.get()) != 0 || fd.close() != 0) return errno_status("fsync " + tmp_path);
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return errno_status("rename " + tmp_path);
  }
  return fsync_dir(fan_out);
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string to_hex(const BlobId& id) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

bool from_hex(std::string_view hex, BlobId* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

BlobId sha256(std::string_view bytes) {
  BlobId id{};
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), id.data(), &size, EVP_sha256(), nullptr);
  return id;
}

std::unique_ptr<BlobStore> BlobStore::open(const std::string& dir, Status* status) {
  std::unique_ptr<BlobStore> store(new BlobStore(dir));
  if ((*status = make_dir(dir)); !status->ok()) return nullptr;
  std::string tmp = dir + "/tmp";
  if ((*status = make_dir(tmp)); !status->ok()) return nullptr;
  // A crash between write and rename leaves a temporary file: never
  // referenced by anything committed, so it goes.
  if (DIR* d = ::opendir(tmp.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ::unlink((tmp + "/" + e->d_name).c_str());
    }
    ::closedir(d);
  }
  *status = {};
  return store;
}

std::string BlobStore::path_of(const BlobId& id) const {
  std::string hex = to_hex(id);
  return dir_ + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

bool BlobStore::contains(const BlobId& id) const {
  struct stat st {};
  return ::stat(path_of(id).c_str(), &st) == 0;
}

Status BlobStore::put(std::string_view bytes, BlobId* id) {
  *id = sha256(bytes);
  // Content-addressed: the same bytes may be there already. Shared in any
  // case: a blob put before a failed share, or before cluster mode, is
  // shared when it is put again.
  if (!contains(*id)) {
    std::string tmp_path = temp_path(*id);
    Fd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return errno_status("create " + tmp_path);
    Status s = write_at(fd.get(), 0, bytes, tmp_path);
    if (s.ok()) s = place(fd, tmp_path, path_of(*id));
    if (!s.ok()) {
      ::unlink(tmp_path.c_str());
      return s;
    }
  }
  // Not checked before it leaves, unlike share(): these bytes were just
  // hashed, and a file found there already is trusted as above (a fetch
  // checks the digest in any case).
  if (SharedBlobs* shared = not_yet_shared(*id)) return shared->publish(*id, bytes.size(), *this);
  return {};
}

Status BlobStore::share(const BlobId& id) {
  SharedBlobs* shared = not_yet_shared(id);
  if (!shared) return {};
  // Checked before it leaves: a damaged file is not spread to every node.
  std::uint64_t size = 0;
  if (Status s = check(id, &size); !s.ok()) return s;
  return shared->publish(id, size, *this);
}

SharedBlobs* BlobStore::not_yet_shared(const BlobId& id) const {
  SharedBlobs* shared = shared_.load(std::memory_order_acquire);
  return shared && !shared->known_published(id) ? shared : nullptr;
}

Status BlobStore::make_local(const BlobId& id, std::uint64_t size) {
  if (contains(id)) return {};
  SharedBlobs* shared = shared_.load(std::memory_order_acquire);
  if (!shared) return {Errc::not_found, "no blob " + to_hex(id)};
  return shared->fetch(id, size, *this);
}

std::string BlobStore::temp_path(const BlobId& id) const {
  static std::atomic<std::uint64_t> counter{0};
  return dir_ + "/tmp/" + to_hex(id).substr(0, 16) + "." + std::to_string(::getpid()) + "." +
         std::to_string(counter++);
}

Status BlobStore::get(const BlobId& id, std::string* bytes) const {
  std::string path = path_of(id);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return open_failed(id, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status("stat " + path);
  bytes->resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes->size()) {
    ssize_t n = ::read(fd.get(), bytes->data() + done, bytes->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read " + path);
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  bytes->resize(done);
  if (sha256(*bytes) != id) return {Errc::corrupt, "blob " + to_hex(id) + " fails its digest"};
  return {};
}

// The SHA-256 of bytes that come in pieces (an upload, a check()).
struct BlobUpload::Hasher {
  Hasher() : ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view bytes) { EVP_DigestUpdate(ctx, bytes.data(), bytes.size()); }
  BlobId digest() {
    BlobId id{};
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx, id.data(), &size);
    return id;
  }
  EVP_MD_CTX* ctx;
};

Status BlobStore::check(const BlobId& id, std::uint64_t* size) const {
  std::string path = path_of(id);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return open_failed(id, path);
  BlobUpload::Hasher hash;
  std::string block(1 << 20, '\0');
  *size = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read " + path);
    if (n == 0) break;
    hash.update(std::string_view(block.data(), static_cast<std::size_t>(n)));
    *size += static_cast<std::uint64_t>(n);
  }
  if (hash.digest() != id) return {Errc::corrupt, "blob " + to_hex(id) + " fails its digest"};
  return {};
}

Status fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_status("open " + dir);
  if (::fsync(fd.get()) != 0) return errno_status("fsync " + dir);
  return {};
}

Status BlobStore::move_out(const BlobId& id, const std::string& path) {
  const std::string from = path_of(id);
  if (::rename(from.c_str(), path.c_str()) == 0) return {};
  if (errno == ENOENT) return {Errc::not_found, "no blob " + to_hex(id) + " in " + dir_};
  if (errno != EXDEV) return errno_status("rename " + from + " to " + path);
  std::error_code ec;
  std::filesystem::copy_file(from, path, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    if (ec == std::errc::no_space_on_device)
      return {Errc::storage_full, "copying " + from + " to " + path + ": " + ec.message()};
    return {Errc::io, "copying " + from + " to " + path + ": " + ec.message()};
  }
  ::unlink(from.c_str());
  return {};
}

Status BlobStore::put_file(const std::string& path, BlobId* id, std::uint64_t* size) {
  Fd in(-1);
  if (Status s = open_regular(path, &in); !s.ok()) return s;
  // Named before its digest is known: the name is only for people.
  const std::string tmp_path = temp_path(BlobId{});
  Fd out(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) return errno_status("create " + tmp_path);
  BlobUpload::Hasher hash;
  *size = 0;
  Status s = read_blocks(in, path, [&](std::string_view piece) {
    if (Status w = write_at(out.get(), *size, piece, tmp_path); !w.ok()) return w;
    hash.update(piece);
    *size += piece.size();
    return Status{};
  });
  if (s.ok()) {
    *id = hash.digest();
    // Content-addressed: the same bytes may be there already.
    if (contains(*id)) {
      ::unlink(tmp_path.c_str());
    } else {
      s = place(out, tmp_path, path_of(*id));
    }
  }
  if (!s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  if (SharedBlobs* shared = not_yet_shared(*id)) return shared->publish(*id, *size, *this);
  return {};
}

Status BlobStore::take_file(const std::string& path, BlobId* id, std::uint64_t* size) {
  Fd in(-1);
  if (Status s = open_regular(path, &in); !s.ok()) return s;
  BlobUpload::Hasher hash;
  *size = 0;
  if (Status s = read_blocks(in, path,
                             [&](std::string_view piece) {
                               hash.update(piece);
                               *size += piece.size();
                               return Status{};
                             });
      !s.ok())
    return s;
  *id = hash.digest();
  if (contains(*id)) {
    // Content-addressed: the same bytes are there already.
    ::unlink(path.c_str());
  } else {
    const std::string final_path = path_of(*id);
    const std::string fan_out = final_path.substr(0, final_path.rfind('/'));
    if (Status s = make_dir(fan_out); !s.ok()) return s;
    // A blob's file is its owner's alone, as put() makes it; durable before
    // its name says it is whole.
    if (::fchmod(in.get(), 0600) != 0) return errno_status("chmod " + path);
    if (::fsync(in.get()) != 0 || in.close() != 0) return errno_status("fsync " + path);
    if (::rename(path.c_str(), final_path.c_str()) != 0) {
      if (errno != EXDEV) return errno_status("rename " + path);
      // Another file system: copied as put_file() copies (which shares it),
      // then removed.
      if (Status s = put_file(path, id, size); !s.ok()) return s;
      ::unlink(path.c_str());
      return {};
    }
    if (Status s = fsync_dir(fan_out); !s.ok()) return s;
  }
  if (SharedBlobs* shared = not_yet_shared(*id)) return shared->publish(*id, *size, *this);
  return {};
}

Status BlobStore::read_at(const BlobId& id, std::uint64_t offset, std::size_t max,
                          std::string* out) const {
  std::unique_ptr<BlobReader> reader;
  if (Status s = open_reader(id, &reader); !s.ok()) return s;
  return reader->read_at(offset, max, out);
}

Status BlobStore::open_reader(const BlobId& id, std::unique_ptr<BlobReader>* out) const {
  std::string path = path_of(id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return open_failed(id, path);
  out->reset(new BlobReader(fd, std::move(path)));
  return {};
}

BlobReader::~BlobReader() {
  ::close(fd_);
}

Status BlobReader::read_at(std::uint64_t offset, std::size_t max, std::string* out) const {
  out->resize(max);
  std::size_t done = 0;
  while (done < max) {
    ssize_t n = ::pread(fd_, out->data() + done, max - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read " + path_);
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out->resize(done);
  return {};
}

Status BlobStore::begin_upload(const BlobId& id, std::uint64_t total,
                               std::unique_ptr<BlobUpload>* out) {
  std::unique_ptr<BlobUpload> upload(new BlobUpload(*this, id, total));
  upload->tmp_path_ = temp_path(id);
  upload->fd_ = ::open(upload->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (upload->fd_ < 0) return errno_status("create " + upload->tmp_path_);
  *out = std::move(upload);
  return {};
}

BlobUpload::BlobUpload(const BlobStore& store, const BlobId& id, std::uint64_t total)
    : store_(store), id_(id), total_(total), hasher_(std::make_unique<Hasher>()) {}

BlobUpload::~BlobUpload() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status BlobUpload::write(std::uint64_t offset, std::string_view bytes) {
  if (finished_) return {};
  if (offset > written_) return {Errc::corrupt, "blob " + to_hex(id_) + " has a gap"};
  const std::uint64_t repeat = written_ - offset;
  if (repeat >= bytes.size()) return {};
  bytes.remove_prefix(static_cast<std::size_t>(repeat));
  if (bytes.size() > total_ - written_) {
    return {Errc::corrupt, "blob " + to_hex(id_) + " has more bytes than its size"};
  }
  if (Status s = write_at(fd_, written_, bytes, tmp_path_); !s.ok()) return s;
  hasher_->update(bytes);
  written_ += bytes.size();
  // Start writing back now, so finish()'s fsync of a large blob is short
  // (it runs in the writer thread).
  ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
  return {};
}

Status BlobUpload::finish() {
  if (finished_) return {};
  if (written_ != total_) {
    return {Errc::corrupt, "blob " + to_hex(id_) + " ends after " + std::to_string(written_) +
                               " of its " + std::to_string(total_) + " bytes"};
  }
  if (hasher_->digest() != id_) {
    return {Errc::corrupt, "blob " + to_hex(id_) + ": its bytes do not match its digest"};
  }
  // Renamed over a copy already in place too: its modification time is
  // then fresh, so garbage collection (which spares young files) cannot
  // take it before the record that references it commits.
  Fd fd(fd_);
  fd_ = -1;
  Status s = place(fd, tmp_path_, store_.path_of(id_));
  if (!s.ok()) return s;
  finished_ = true;
  return {};
}

Status BlobStore::discard_if_damaged(const BlobId& id) {
  std::uint64_t size = 0;
  Status s = check(id, &size);
  if (s.code != Errc::corrupt) return s;
  std::string path = path_of(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status("unlink " + path);
  return {Errc::corrupt, "blob " + to_hex(id) + " failed its digest and was removed"};
}

Status BlobStore::collect_garbage(const std::function<bool(const BlobId&)>& referenced,
                                  std::chrono::seconds grace, std::size_t* removed) {
  *removed = 0;
  const std::time_t cutoff = std::time(nullptr) - static_cast<std::time_t>(grace.count());
  DIR* top = ::opendir(dir_.c_str());
  if (!top) return errno_status("open " + dir_);
  std::vector<std::string> fan_outs;
  while (dirent* e = ::readdir(top)) {
    std::string name = e->d_name;
    if (name.size() == 2 && name != "..") fan_outs.push_back(name);
  }
  ::closedir(top);
  for (const auto& prefix : fan_outs) {
    std::string sub = dir_ + "/" + prefix;
    DIR* d = ::opendir(sub.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      BlobId id;
      if (!from_hex(prefix + e->d_name, &id) || referenced(id)) continue;
      std::string path = sub + "/" + e->d_name;
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || st.st_mtime > cutoff) continue;
      if (::unlink(path.c_str()) == 0) ++*removed;
    }
    ::closedir(d);
  }
  return {};
}

}  // namespace memos::store
