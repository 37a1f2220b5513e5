// file_input.h — fuzz inputs for parsers that read a file by path (the
// configuration, plugin manifests): the bytes are written to one file in a
// private folder, rewritten for every input.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace memos::fuzz {

class FileInput {
 public:
  // The file is `name` in a new folder under /dev/shm (memory, no disk
  // writes per input) or /tmp; the folder goes at exit.
  explicit FileInput(const std::string& name) {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string templ = base + "/memos-fuzz-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    dir_ = templ;
    path_ = dir_ + "/" + name;
  }
  ~FileInput() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;

  // Replaces the file's contents; returns its path.
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (std::size_t at = 0; ok && at < size;) {
      ssize_t n = ::write(fd, data + at, size - at);
      ok = n > 0;
      at += ok ? static_cast<std::size_t>(n) : 0;
    }
    if (fd >= 0) ::close(fd);
    if (!ok) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, path_;
};

}  // namespace memos::fuzz
