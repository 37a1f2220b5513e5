// small_filesystem.h — a small tmpfs mounted over a folder for a test's
// life, so that a disk really fills (ENOSPC) under memosd. Needs root and a
// kernel that lets it mount: can_mount() is the precondition of such cases
// (preconditions.h), which are then skipped, never passed, elsewhere.
#pragma once

#include <sys/mount.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>

#include "tests/support/memosd_process.h"

namespace memos::testing {

class SmallFilesystem {
 public:
  // Mounts a tmpfs of `size` ("4m") on `path` (created if missing); check
  // mounted(). The destructor unmounts it (lazily, should a file be open).
  SmallFilesystem(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = geteuid() == 0 && mount_with("size=" + size + ",mode=0700", 0);
  }
  ~SmallFilesystem() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;
  bool mounted() const { return mounted_; }
  // Grows (or shrinks) the mounted tmpfs in place, keeping its files: space
  // returning without a restart. Returns whether the kernel allowed it.
  bool resize(const std::string& size) { return mount_with("size=" + size, MS_REMOUNT); }

 private:
  bool mount_with(const std::string& options, unsigned long flags) {
    return mount("tmpfs", path_.c_str(), "tmpfs", flags, options.c_str()) == 0;
  }
  std::string path_;
  bool mounted_ = false;
};

// Whether a SmallFilesystem can be mounted here: root, and no container or
// seccomp profile refusing mount(2).
inline boost::test_tools::assertion_result can_mount(boost::unit_test::test_unit_id) {
  TempDir dir;
  SmallFilesystem fs(dir.path() + "/probe", "64k");
  boost::test_tools::assertion_result r(fs.mounted());
  r.message() << "cannot mount a small tmpfs here"
              << (geteuid() == 0 ? " (mount(2) refused to root)" : " (needs root)");
  return r;
}

}  // namespace memos::testing
