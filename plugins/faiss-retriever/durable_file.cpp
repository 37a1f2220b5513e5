#include "plugins/faiss-retriever/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "plugins/retriever-common/crc32c.h"
#include "plugins/retriever-common/file_sync.h"

namespace memos::faiss_retriever {

using retrieval::errno_text;
namespace {

// Large enough that write() and the checksum run at memory speed, small
// enough to stay in cache between the two and to cost nothing to hold.
constexpr std::size_t kPiece = std::size_t{1} << 20;

}  // namespace

DurableFile::~DurableFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

std::string DurableFile::create(const std::string& dir, const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  dir_ = dir;
  path_ = path;
  std::string tmp = path + ".tmp";
  fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) return errno_text("cannot create", tmp);
  tmp_ = tmp;  // ours to remove from here on
  buffer_.resize(kPiece);
  return "";
}

void DurableFile::fail(const std::string& why) {
  if (error_.empty()) error_ = why;
}

void DurableFile::append(const void* data, std::size_t size) {
  if (size == 0 || !error_.empty()) return;
  if (fd_ < 0) return fail("snapshot file not created");
  const auto* p = static_cast<const std::uint8_t*>(data);
  appended_ += size;
  if (size < buffer_.size() - buffered_) {
    std::memcpy(buffer_.data() + buffered_, p, size);
    buffered_ += size;
    return;
  }
  // Large: what is buffered goes first, then this straight from its memory.
  flush();
  if (size < buffer_.size()) {
    std::memcpy(buffer_.data(), p, size);
    buffered_ = size;
    return;
  }
  write_out(p, size);
}

std::uint32_t DurableFile::crc() const {
  return retrieval::crc32c(buffer_.data(), buffered_, crc_);
}

void DurableFile::flush() {
  write_out(buffer_.data(), buffered_);
  buffered_ = 0;
}

void DurableFile::write_out(const std::uint8_t* data, std::size_t size) {
  while (size > 0 && error_.empty()) {
    std::size_t piece = std::min(size, kPiece);
    crc_ = retrieval::crc32c(data, piece, crc_);
    std::size_t done = 0;
    while (done < piece) {
      ssize_t n = ::write(fd_, data + done, piece - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(errno_text("cannot write", tmp_));
      done += static_cast<std::size_t>(n);
    }
    data += piece;
    size -= piece;
  }
}

std::string DurableFile::commit() {
  if (fd_ < 0 && error_.empty()) fail("snapshot file not created");
  if (error_.empty()) flush();
  if (error_.empty() && ::fsync(fd_) != 0) fail(errno_text("cannot fsync", tmp_));
  if (fd_ >= 0 && ::close(fd_) != 0) fail(errno_text("cannot close", tmp_));
  fd_ = -1;
  if (error_.empty() && ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    fail(errno_text("cannot rename", tmp_));
  }
  if (!error_.empty()) return error_;  // the destructor removes the .tmp
  committed_ = true;
  // Without this the rename itself may not survive a power loss.
  return fsync_folder(dir_);
}

}  // namespace memos::faiss_retriever
