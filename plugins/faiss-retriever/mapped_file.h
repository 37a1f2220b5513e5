// mapped_file.h — a whole file mapped read-only, for reading a snapshot
// without copying it into memory first.
//
// The pages are the page cache's own (MAP_PRIVATE, never written), so a
// snapshot costs no second copy while it is checked and parsed. Touched
// pages still count in the process's RSS until unmapped, so readers
// release() what they are done with as they go: loading a collection then
// takes about the collection's own size, not that plus the file's.
//
// Snapshots are replaced by rename, never rewritten in place, so the file
// mapped does not shrink under us (which would raise SIGBUS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace memos::faiss_retriever {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps `path`. Returns "" or why; sets *missing when it does not exist.
  // An empty file maps as no bytes. Only a regular file is mapped: a
  // symbolic link (not followed), a folder or a FIFO is refused, since a
  // snapshot may come from elsewhere (an import).
  std::string open(const std::string& path, bool* missing);

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

  // Whether `fd` is open on the file mapped (the same device and inode):
  // what an import checks before and after it moves the file it read.
  bool same_file(int fd) const;

  // Gives back the pages from the one holding offset `from` to the last
  // one wholly before `to`: their contents stay valid, and are read back
  // from the page cache if touched again. A hint: costs a system call.
  void release(std::size_t from, std::size_t to) const;

 private:
  void unmap();

  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
};

}  // namespace memos::faiss_retriever
