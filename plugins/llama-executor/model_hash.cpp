#include "plugins/llama-executor/model_hash.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace memos::llama_exec {

namespace {

struct FileIdentity {
  unsigned long long size = 0, mtime_ns = 0, inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

FileIdentity identity_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::runtime_error("cannot stat " + path + ": " + std::strerror(errno));
  }
  FileIdentity id;
  id.size = static_cast<unsigned long long>(st.st_size);
  id.mtime_ns = static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                static_cast<unsigned long long>(st.st_mtim.tv_nsec);
  id.inode = static_cast<unsigned long long>(st.st_ino);
  return id;
}

struct Entry {
  std::string hex;
  FileIdentity id;
  std::string path;
};

std::vector<Entry> read_entries(const std::string& file) {
  std::vector<Entry> entries;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Entry e;
    if (!(fields >> e.hex >> e.id.size >> e.id.mtime_ns >> e.id.inode)) continue;
    fields.get();  // the one space before the path, which may itself hold spaces
    std::getline(fields, e.path);
    Digest ignored;
    if (!e.path.empty() && from_hex(e.hex, &ignored)) entries.push_back(std::move(e));
  }
  return entries;
}

// Best effort: a cache that cannot be written costs a re-hash next time.
void write_entries(const std::string& file, const std::vector<Entry>& entries) {
  const std::string tmp = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const Entry& e : entries) {
      out << e.hex << ' ' << e.id.size << ' ' << e.id.mtime_ns << ' ' << e.id.inode << ' ' << e.path
          << '\n';
    }
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace

ModelHash model_content_hash(const std::string& model_path, const std::string& state_dir) {
  ModelHash result;
  if (state_dir.empty()) {
    result.digest = sha256_file(model_path);
    return result;
  }
  std::error_code ec;
  const std::string path = std::filesystem::absolute(model_path, ec).string();
  const FileIdentity id = identity_of(path);
  const std::string file = state_dir + "/model-hashes";
  std::vector<Entry> entries = read_entries(file);
  for (const Entry& e : entries) {
    if (e.path == path && e.id == id && from_hex(e.hex, &result.digest)) {
      result.from_cache = true;
      return result;
    }
  }
  result.digest = sha256_file(path);
  // The file may have changed while it was read: remember the hash only if
  // it did not.
  if (identity_of(path) == id) {
    std::erase_if(entries, [&](const Entry& e) { return e.path == path; });
    entries.push_back(Entry{to_hex(result.digest), id, path});
    std::filesystem::create_directories(state_dir, ec);
    write_entries(file, entries);
  }
  return result;
}

}  // namespace memos::llama_exec
