// errno_text.h — how the plugin's file code words a failed system call:
// "cannot map /path: No such file or directory". Read errno right after
// the call that failed.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace memos::faiss_retriever {

inline std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace memos::faiss_retriever
