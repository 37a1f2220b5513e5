// policy_parser.h — one policy file's parse (policy_file.cpp): where its
// diagnostics go and how they say where, and the typed readers every
// table's keys go through. Each reader checks type and range, reports what
// it expected at the value's line and column, and returns nullopt then: a
// file is read whole, every error reported, never only the first.
// Internal to policies/.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policies/policy_file.h"

namespace memos::policies::file_parse {

inline constexpr std::int64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
// Bounds no real tenant reaches, so that arithmetic on them cannot wrap
// (a byte count of 2^40 MiB fits in 64 bits).
inline constexpr std::int64_t kMaxCount = std::int64_t{1} << 40;
inline constexpr std::int64_t kTenYears = 10ll * 366 * 24 * 3600;
inline constexpr std::size_t kMaxUids = 65536;
inline constexpr std::size_t kMaxNames = 4096;
inline constexpr std::size_t kMaxNameBytes = 128;
inline constexpr std::size_t kMaxPathBytes = 4096;

// One file's parse: where diagnostics go, and how to say where.
class Parser {
 public:
  Parser(const std::string& path, const UserDirectory& users, std::vector<Diagnostic>* out)
      : path_(path), users_(users), out_(out) {}

  void error(const toml::source_region& at, std::string message) {
    out_->push_back({where(at), std::move(message), false});
    failed_ = true;
  }
  void warn(const toml::source_region& at, std::string message) {
    out_->push_back({where(at), std::move(message), true});
  }
  bool failed() const { return failed_; }

  std::string where(const toml::source_region& at) const {
    std::ostringstream s;
    s << path_ << ":" << std::max<std::uint32_t>(at.begin.line, 1) << ":"
      << std::max<std::uint32_t>(at.begin.column, 1);
    return s.str();
  }

  std::optional<bool> boolean(const std::string& key, const toml::node& node) {
    if (auto v = node.value_exact<bool>()) return *v;
    error(node.source(), key + ": expected true or false");
    return std::nullopt;
  }

  std::optional<std::int64_t> integer(const std::string& key, const toml::node& node,
                                      std::int64_t lo, std::int64_t hi) {
    auto v = node.value_exact<std::int64_t>();
    if (!v) {
      error(node.source(), key + ": expected an integer");
      return std::nullopt;
    }
    if (*v < lo || *v > hi) {
      error(node.source(), key + ": " + std::to_string(*v) + " is out of range (" +
                               std::to_string(lo) + " to " + std::to_string(hi) + ")");
      return std::nullopt;
    }
    return *v;
  }

  // An integer or a float, finite, within [lo, hi].
  std::optional<double> number(const std::string& key, const toml::node& node, double lo,
                               double hi) {
    std::optional<double> v;
    if (auto i = node.value_exact<std::int64_t>()) v = static_cast<double>(*i);
    if (auto f = node.value_exact<double>()) v = *f;
    if (!v) {
      error(node.source(), key + ": expected a number");
      return std::nullopt;
    }
    if (!std::isfinite(*v) || *v < lo || *v > hi) {
      std::ostringstream s;
      s << key << ": " << *v << " is out of range (" << lo << " to " << hi << ")";
      error(node.source(), s.str());
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> string(const std::string& key, const toml::node& node,
                                    std::size_t max_bytes) {
    auto v = node.value_exact<std::string>();
    if (!v) {
      error(node.source(), key + ": expected a string");
      return std::nullopt;
    }
    if (v->empty()) {
      error(node.source(), key + ": must not be empty");
      return std::nullopt;
    }
    if (v->size() > max_bytes) {
      error(node.source(), key + ": longer than " + std::to_string(max_bytes) + " bytes");
      return std::nullopt;
    }
    if (v->find('\0') != std::string::npos) {
      error(node.source(), key + ": must not contain NUL");
      return std::nullopt;
    }
    return v;
  }

  // An array of `what` (each read by `one`, which reports its own errors).
  template <class T, class One>
  std::optional<std::vector<T>> array(const std::string& key, const toml::node& node,
                                      std::size_t max_items, One one) {
    const toml::array* a = node.as_array();
    if (!a) {
      error(node.source(), key + ": expected an array");
      return std::nullopt;
    }
    if (a->size() > max_items) {
      error(node.source(), key + ": more than " + std::to_string(max_items) + " entries");
      return std::nullopt;
    }
    std::vector<T> out;
    bool ok = true;
    for (std::size_t i = 0; i < a->size(); ++i) {
      std::optional<T> v = one(key + "[" + std::to_string(i) + "]", (*a)[i]);
      if (!v) {
        ok = false;
        continue;
      }
      out.push_back(std::move(*v));
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // A plugin, user or group name: printable ASCII without '/' or spaces.
  std::optional<std::string> name(const std::string& key, const toml::node& node) {
    auto v = string(key, node, kMaxNameBytes);
    if (!v) return std::nullopt;
    for (char c : *v) {
      if (c <= ' ' || c > '~' || c == '/') {
        error(node.source(), key + ": '" + *v + "' is not a name (printable ASCII, no '/')");
        return std::nullopt;
      }
    }
    return v;
  }

  std::optional<std::vector<std::string>> names(const std::string& key, const toml::node& node) {
    auto v = array<std::string>(
        key, node, kMaxNames,
        [this](const std::string& k, const toml::node& n) { return name(k, n); });
    if (v) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    return v;
  }

  const UserDirectory& users() const { return users_; }
  const std::string& path() const { return path_; }

 private:
  const std::string& path_;
  const UserDirectory& users_;
  std::vector<Diagnostic>* out_;
  bool failed_ = false;
};

}  // namespace memos::policies::file_parse
