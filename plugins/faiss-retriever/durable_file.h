// durable_file.h — a file written next to its final name and moved there
// only once it is complete and on disk.
//
// DurableFile writes <path>.tmp through a buffer, keeping the CRC-32C of
// everything appended, and commit() makes it <path> the crash-safe way:
// fsync, rename over <path>, fsync the folder. A crash at any point leaves
// the old <path> or the new one (plus perhaps a stale .tmp, which readers
// delete). Destroying a DurableFile that was not committed closes and
// removes the .tmp, so every early return of a failed save cleans up.
//
// Small appends gather in a 1 MiB buffer; large ones (a snapshot's vectors,
// a FAISS index's arrays) go from the caller's memory to the file in 1 MiB
// pieces, checksummed piece by piece while they are in cache, never copied
// whole. Write errors are sticky: the first one is kept, later appends do
// nothing, and the caller checks error() once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plugins/retriever-common/file_sync.h"

namespace memos::faiss_retriever {

class DurableFile {
 public:
  DurableFile() = default;
  ~DurableFile();
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  // Creates `dir` if missing and opens <path>.tmp (`path` is in `dir`),
  // replacing any stale one. Returns "" or why.
  std::string create(const std::string& dir, const std::string& path);

  void append(const void* data, std::size_t size);
  std::uint64_t appended() const { return appended_; }
  // The CRC-32C of everything appended so far.
  std::uint32_t crc() const;
  // "" or the first write error.
  const std::string& error() const { return error_; }
  // Records `why` as the error unless there is one already (a caller's own
  // failure midway, e.g. FAISS throwing): commit() then refuses.
  void fail(const std::string& why);

  // Writes out the buffer, fsyncs, renames the .tmp over the final path
  // and fsyncs the folder. Takes no lock of anyone's: call it once the data
  // appended no longer needs one. Returns "" or why (then the .tmp is gone
  // and the old file untouched, unless only the folder's fsync failed).
  std::string commit();

 private:
  void flush();
  void write_out(const std::uint8_t* data, std::size_t size);

  std::string dir_;
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::vector<std::uint8_t> buffer_;
  std::size_t buffered_ = 0;
  std::uint64_t appended_ = 0;
  std::uint32_t crc_ = 0;  // of what left the buffer
  std::string error_;
};

using retrieval::fsync_folder;

}  // namespace memos::faiss_retriever
