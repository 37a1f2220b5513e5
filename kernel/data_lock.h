// data_lock.h — one memosd per data folder.
//
// Holds an exclusive flock(2) on DATA/LOCK for the daemon's lifetime and
// records the holder's pid there, so a second memosd on the same folder
// refuses to start and says who holds it. The lock dies with the process
// (even on SIGKILL), so a stale LOCK file never blocks a restart.
#pragma once

#include <memory>
#include <string>

namespace memos::kernel {

class DataLock {
 public:
  // Creates `dir` (and parents, mode 0700) if missing, then locks it.
  // Returns null and sets `error` if the folder cannot be created or opened,
  // or another process holds the lock.
  static std::unique_ptr<DataLock> acquire(const std::string& dir, std::string* error);
  ~DataLock();
  DataLock(const DataLock&) = delete;
  DataLock& operator=(const DataLock&) = delete;

 private:
  explicit DataLock(int fd) : fd_(fd) {}
  int fd_;
};

// mkdir -p with `mode` for created folders. Returns "" or an error.
std::string make_dirs(const std::string& dir, unsigned mode);

}  // namespace memos::kernel
