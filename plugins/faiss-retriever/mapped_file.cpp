#include "plugins/faiss-retriever/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "plugins/faiss-retriever/errno_text.h"

namespace memos::faiss_retriever {

MappedFile::~MappedFile() {
  unmap();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::unmap() {
  if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

std::string MappedFile::open(const std::string& path, bool* missing) {
  unmap();
  *missing = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    return errno_text("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text("cannot stat", path);
    ::close(fd);
    return why;
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
  ::close(fd);  // the mapping keeps the file
  return "";
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
