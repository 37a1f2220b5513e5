#include "plugins/loader/manifest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <filesystem>
#include <set>

#include "memos/plugin.h"

namespace memos::plugins {
namespace {

std::uint32_t kind_bit(const std::string& kind) {
  if (kind == "embedder") return MEMOS_KIND_EMBEDDER;
  if (kind == "retriever") return MEMOS_KIND_RETRIEVER;
  if (kind == "router") return MEMOS_KIND_ROUTER;
  if (kind == "executor") return MEMOS_KIND_EXECUTOR;
  return 0;
}

std::string table_of_strings(const toml::table& table, std::map<std::string, std::string>* out) {
  for (auto& [key, node] : table) {
    if (auto s = node.value_exact<std::string>()) {
      (*out)[std::string(key.str())] = *s;
    } else if (auto i = node.value_exact<std::int64_t>()) {
      (*out)[std::string(key.str())] = std::to_string(*i);
    } else if (auto b = node.value_exact<bool>()) {
      (*out)[std::string(key.str())] = *b ? "true" : "false";
    } else {
      return std::string(key.str()) + " must be a string, integer or boolean";
    }
  }
  return "";
}

}  // namespace

std::string read_manifest(const std::string& path, Manifest* out) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description());
  }
  static const std::set<std::string> known = {"name",      "kinds",        "abi_major", "library",
                                              "isolation", "capabilities", "settings"};
  for (auto& [key, node] : t) {
    if (!known.contains(std::string(key.str()))) {
      return path + ":" + std::to_string(key.source().begin.line) + ": unknown key '" +
             std::string(key.str()) + "'";
    }
  }
  Manifest m;
  m.path = path;
  auto name = t["name"].value_exact<std::string>();
  auto major = t["abi_major"].value_exact<std::int64_t>();
  auto library = t["library"].value_exact<std::string>();
  if (!name || name->empty()) return path + ": name is missing";
  if (!major) return path + ": abi_major is missing";
  if (!library || library->empty()) return path + ": library is missing";
  // Only a file beside the manifest: no path can point memosd elsewhere.
  if (library->find('/') != std::string::npos) return path + ": library must be a file name";
  m.name = *name;
  m.abi_major = static_cast<int>(*major);
  m.library = (std::filesystem::path(path).parent_path() / *library).string();
  auto* kinds = t["kinds"].as_array();
  if (!kinds || kinds->empty()) return path + ": kinds is missing";
  for (auto& k : *kinds) {
    auto kind = k.value_exact<std::string>();
    if (!kind || kind_bit(*kind) == 0) return path + ": unknown kind in kinds";
    m.kinds.push_back(*kind);
    m.kind_bits |= kind_bit(*kind);
  }
  std::string isolation = t["isolation"].value_or<std::string>("in-process");
  if (isolation != "in-process" && isolation != "isolated") {
    return path + ": isolation must be \"in-process\" or \"isolated\"";
  }
  m.isolated = isolation == "isolated";
  for (auto [section, target] :
       {std::pair{"capabilities", &m.capabilities}, std::pair{"settings", &m.settings}}) {
    if (auto* table = t[section].as_table()) {
      if (std::string err = table_of_strings(*table, target); !err.empty()) {
        return path + ": [" + section + "] " + err;
      }
    } else if (t.contains(section)) {
      return path + ": " + section + " must be a table";
    }
  }
  *out = std::move(m);
  return "";
}

std::string check_trusted(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": cannot stat";
  if (st.st_mode & S_IWOTH) return path + " is writable by anyone";
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return path + " is owned by uid " + std::to_string(st.st_uid) +
           ", neither root nor memosd's user";
  }
  return "";
}

Listing list_plugins(const std::vector<std::string>& folders) {
  namespace fs = std::filesystem;
  Listing listing;
  std::set<std::string> seen;
  for (const auto& folder : folders) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    if (std::string err = check_trusted(folder); !err.empty()) {
      listing.problems.push_back(err);
      continue;
    }
    std::vector<fs::path> candidates;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      if (entry.is_directory(ec)) {
        for (const auto& inner : fs::directory_iterator(entry.path(), ec))
          candidates.push_back(inner.path());
      } else {
        candidates.push_back(entry.path());
      }
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& file : candidates) {
      if (!file.string().ends_with(".plugin.toml")) continue;
      Manifest m;
      std::string err = check_trusted(file.parent_path().string());
      if (err.empty()) err = check_trusted(file.string());
      if (err.empty()) err = read_manifest(file.string(), &m);
      if (err.empty() && fs::exists(m.library, ec)) err = check_trusted(m.library);
      if (!err.empty()) {
        listing.problems.push_back(err);
        continue;
      }
      if (!seen.insert(m.name).second) continue;
      listing.plugins.push_back(std::move(m));
    }
  }
  std::sort(listing.plugins.begin(), listing.plugins.end(),
            [](const Manifest& a, const Manifest& b) { return a.name < b.name; });
  return listing;
}

}  // namespace memos::plugins
