// manifest.h — NAME.plugin.toml: what memosd knows of a plugin before (and
// without) loading it.
//
//   name = "hash-embedder"            # must equal the library's descriptor
//   kinds = ["embedder"]              # embedder, retriever, router, executor
//   abi_major = 1
//   library = "memos-hash-embedder.so"  # a file name beside the manifest
//   isolation = "in-process"          # or "isolated" (memos-plugin-host)
//   [capabilities]                    # free-form, shown by `memctl plugin info`
//   [settings]                        # strings, given to the plugin's create()
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace memos::plugins {

struct Manifest {
  std::string name;
  std::vector<std::string> kinds;
  std::uint32_t kind_bits = 0;  // MEMOS_KIND_*
  int abi_major = 0;
  std::string library;  // absolute path, in the manifest's folder
  bool isolated = false;
  std::map<std::string, std::string> capabilities;
  std::map<std::string, std::string> settings;
  std::string path;  // of the manifest itself
};

// Reads and checks one manifest. Returns "" or an error naming the file (and
// line, for syntax errors): unknown keys, missing or mistyped values, a
// library name with a '/', an unknown kind or isolation.
std::string read_manifest(const std::string& path, Manifest* out);

// Refuses a file or folder that anyone may write, or that is owned by
// neither root nor the daemon's user (a plugin runs with the daemon's
// rights). Returns "" or the reason.
std::string check_trusted(const std::string& path);

struct Listing {
  std::vector<Manifest> plugins;
  std::vector<std::string> problems;  // manifests refused, one line each
};

// Every *.plugin.toml in `folders` and their immediate subfolders, checked
// and trusted, sorted by name; a name seen twice keeps the first.
Listing list_plugins(const std::vector<std::string>& folders);

}  // namespace memos::plugins
