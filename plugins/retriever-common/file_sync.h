// file_sync.h — what the retrievers' file code shares: how a failed system
// call is worded, the folder a path is in, and the folder's fsync that makes
// a rename or link in it survive a power loss.
#pragma once

#include <string>

namespace memos::retrieval {

// "cannot map /path: No such file or directory". Call right after the call
// that failed: it reads errno.
std::string errno_text(const std::string& what, const std::string& path);

// The folder `path` is in ("." for a bare name).
std::string folder_of(const std::string& path);

// fsyncs the folder `dir`. Returns "" or why.
std::string fsync_folder(const std::string& dir);

}  // namespace memos::retrieval
