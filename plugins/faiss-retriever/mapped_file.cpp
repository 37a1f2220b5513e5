#include "plugins/faiss-retriever/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "plugins/retriever-common/file_sync.h"

namespace memos::faiss_retriever {

using retrieval::errno_text;

MappedFile::~MappedFile() {
  unmap();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      device_(std::exchange(other.device_, 0)),
      inode_(std::exchange(other.inode_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, 0);
    inode_ = std::exchange(other.inode_, 0);
  }
  return *this;
}

void MappedFile::unmap() {
  if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  device_ = 0;
  inode_ = 0;
}

std::string MappedFile::open(const std::string& path, bool* missing) {
  unmap();
  *missing = false;
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then
  // refused below); it changes nothing for a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    if (errno == ELOOP) return "cannot open " + path + ": it is a symbolic link";
    return errno_text("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text("cannot stat", path);
    ::close(fd);
    return why;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return "cannot map " + path + ": not a regular file";
  }
  auto size = static_cast<std::size_t>(st.st_size);
  if (size > 0) {  // mmap refuses a length of 0
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text("cannot map", path);
      ::close(fd);
      return why;
    }
    // Read front to back, twice (checksum, then parse): read ahead.
    ::madvise(p, size, MADV_SEQUENTIAL);
    data_ = static_cast<const std::uint8_t*>(p);
    size_ = size;
  }
  device_ = st.st_dev;
  inode_ = st.st_ino;
  ::close(fd);  // the mapping keeps the file
  return "";
}

bool MappedFile::same_file(int fd) const {
  struct stat st {};
  return inode_ != 0 && ::fstat(fd, &st) == 0 && st.st_dev == device_ && st.st_ino == inode_;
}

void MappedFile::release(std::size_t from, std::size_t to) const {
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  to = std::min(to, size_);
  // The mapping starts on a page boundary.
  std::size_t first = from / page * page;
  std::size_t last = to / page * page;
  if (!data_ || last <= first) return;
  // On a read-only private mapping this drops our page table entries, not
  // the data: the page cache still has it.
  ::madvise(const_cast<std::uint8_t*>(data_) + first, last - first, MADV_DONTNEED);
}

}  // namespace memos::faiss_retriever
