#include "plugins/router-policy/policy_weights.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace memos::router_policy {
namespace {

constexpr std::string_view kMagic = "memos-router-policy 1";
constexpr std::size_t kMaxName = 64;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxName) return false;
  for (char c : s)
    if (!name_char(c)) return false;
  return true;
}

// The next space-separated word of `line`, consumed.
std::string_view next_word(std::string_view* line) {
  std::size_t start = line->find_first_not_of(' ');
  if (start == std::string_view::npos) {
    *line = {};
    return {};
  }
  std::size_t end = line->find(' ', start);
  std::string_view word = line->substr(start, end == std::string_view::npos ? end : end - start);
  *line = end == std::string_view::npos ? std::string_view() : line->substr(end);
  return word;
}

bool read_number(std::string_view word, double* out) {
  if (word.empty()) return false;
  const char* end = word.data() + word.size();
  auto [ptr, ec] = std::from_chars(word.data(), end, *out);
  if (ec != std::errc() || ptr != end || !std::isfinite(*out) || std::fabs(*out) > kMaxMagnitude)
    return false;
  // Weights this small are 0: a subnormal would not write back the same.
  if (std::fabs(*out) < 1e-30) *out = 0;
  return true;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

class Parser {
 public:
  explicit Parser(PolicyWeights* out) : out_(out) {}

  std::string line(std::string_view text) {
    ++number_;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty() || text.front() == '#') return "";
    if (!seen_magic_) {
      if (text != kMagic) return fail("the first line must be '" + std::string(kMagic) + "'");
      seen_magic_ = true;
      return "";
    }
    std::string_view rest = text;
    std::string_view key = next_word(&rest);
    if (key == "note") return once(&seen_note_, key, [&] { return set_note(rest); });
    if (key == "embedder") return once(&seen_embedder_, key, [&] { return embedder(rest); });
    if (key == "features") return once(&seen_features_, key, [&] { return features(rest); });
    if (key == "route") return route(rest);
    if (key == "quality") return quality(rest);
    return fail("unknown keyword '" + std::string(key.substr(0, kMaxName)) + "'");
  }

  std::string finish() {
    if (!seen_magic_) return "empty: no '" + std::string(kMagic) + "' line";
    if (!seen_embedder_ || !seen_features_) return "the embedder and features lines are missing";
    if (out_->routes.empty()) return "no routes";
    if (out_->routes.back().quality.empty())
      return "route " + out_->routes.back().name + " has no quality line";
    return "";
  }

 private:
  std::string fail(std::string why) const { return "line " + std::to_string(number_) + ": " + why; }

  // Reads a line whose keyword may appear once.
  template <class Read>
  std::string once(bool* seen, std::string_view key, Read&& read) {
    if (*seen) return fail(std::string(key) + " given twice");
    *seen = true;
    return read();
  }

  std::string set_note(std::string_view rest) {
    if (rest.size() > 1024) return fail("the note is longer than 1024 bytes");
    const std::size_t start = rest.find_first_not_of(' ');
    out_->note = start == std::string_view::npos ? "" : std::string(rest.substr(start));
    return "";
  }

  std::string embedder(std::string_view rest) {
    std::string_view model = next_word(&rest), dim = next_word(&rest);
    double d = 0;
    if (model.empty() || model.size() > kMaxName || !read_number(dim, &d) || d < 0 ||
        d > kMaxDimension || d != std::floor(d) || !next_word(&rest).empty())
      return fail("embedder must be 'MODEL DIMENSION' with a dimension of 0.." +
                  std::to_string(kMaxDimension));
    out_->embedder = std::string(model);
    out_->dimension = static_cast<std::uint32_t>(d);
    if ((out_->dimension == 0) != (model == "none"))
      return fail("an embedder of dimension 0 is 'none', and 'none' has dimension 0");
    return "";
  }

  std::string features(std::string_view rest) {
    if (!out_->routes.empty()) return fail("features must come before the routes");
    std::set<std::string_view> seen;
    for (std::string_view w = next_word(&rest); !w.empty(); w = next_word(&rest)) {
      if (!valid_name(w)) return fail("feature names are [a-z0-9_]{1,64}");
      if (!seen.insert(w).second) return fail("feature '" + std::string(w) + "' named twice");
      if (out_->features.size() == kMaxFeatures)
        return fail("more than " + std::to_string(kMaxFeatures) + " features");
      out_->features.emplace_back(w);
    }
    return "";
  }

  std::string route(std::string_view rest) {
    if (!seen_embedder_ || !seen_features_)
      return fail("the embedder and features lines come before the routes");
    if (!out_->routes.empty() && out_->routes.back().quality.empty())
      return fail("route " + out_->routes.back().name + " has no quality line");
    if (out_->routes.size() == kMaxRoutes)
      return fail("more than " + std::to_string(kMaxRoutes) + " routes");
    RouteModel r;
    std::string_view name = next_word(&rest);
    if (name.size() > 256 || !split_route(name, &r.tiers))
      return fail("a route is MODULE=TIER,... in [a-z0-9_], each module once");
    r.name = std::string(name);
    for (const auto& other : out_->routes)
      if (other.name == r.name) return fail("route " + r.name + " given twice");
    std::string_view k1 = next_word(&rest), v1 = next_word(&rest);
    std::string_view k2 = next_word(&rest), v2 = next_word(&rest);
    if (k1 != "ms" || k2 != "tokens" || !read_number(v1, &r.ms) || !read_number(v2, &r.tokens) ||
        r.ms < 0 || r.tokens < 0 || !next_word(&rest).empty())
      return fail("a route line ends 'ms N tokens N' (numbers, not negative)");
    out_->routes.push_back(std::move(r));
    return "";
  }

  std::string quality(std::string_view rest) {
    if (out_->routes.empty() || !out_->routes.back().quality.empty())
      return fail("a quality line follows its route line, once");
    std::vector<double> q;
    q.reserve(out_->inputs());
    for (std::string_view w = next_word(&rest); !w.empty(); w = next_word(&rest)) {
      double v = 0;
      if (q.size() == out_->inputs())
        return fail("more than the " + std::to_string(out_->inputs()) + " weights expected");
      if (!read_number(w, &v)) return fail("weights are finite numbers within 1e6");
      q.push_back(v);
    }
    if (q.size() != out_->inputs())
      return fail(std::to_string(q.size()) + " weights where " + std::to_string(out_->inputs()) +
                  " are expected (1 + features + dimension)");
    out_->routes.back().quality = std::move(q);
    return "";
  }

  PolicyWeights* out_;
  std::size_t number_ = 0;
  bool seen_magic_ = false, seen_note_ = false, seen_embedder_ = false, seen_features_ = false;
};

}  // namespace

bool split_route(std::string_view route, std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  if (route.empty()) return false;
  while (true) {
    std::size_t comma = route.find(',');
    std::string_view pair = route.substr(0, comma);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view module = pair.substr(0, eq), tier = pair.substr(eq + 1);
    if (!valid_name(module) || !valid_name(tier)) return false;
    for (const auto& [m, t] : *out)
      if (m == module) return false;
    out->emplace_back(module, tier);
    if (comma == std::string_view::npos) return true;
    route.remove_prefix(comma + 1);
  }
}

std::string parse_weights(std::string_view text, PolicyWeights* out) {
  *out = {};
  if (text.size() > kMaxWeightsBytes)
    return "larger than " + std::to_string(kMaxWeightsBytes >> 20) + " MiB";
  if (text.find('\0') != std::string_view::npos) return "holds a NUL byte: not a text file";
  Parser parser(out);
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (std::string err = parser.line(line); !err.empty()) return err;
  }
  return parser.finish();
}

std::string read_weights_file(const std::string& path, PolicyWeights* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return path + ": " + std::strerror(errno);
  struct stat st {};
  std::string text, why;
  if (::fstat(fd, &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    why = "others may write it (chmod go-w)";
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxWeightsBytes) {
    why = "larger than " + std::to_string(kMaxWeightsBytes >> 20) + " MiB";
  } else {
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        why = n < 0 ? std::strerror(errno) : "shorter than its size";
        break;
      }
      done += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (why.empty()) why = parse_weights(text, out);
  return why.empty() ? "" : path + ": " + why;
}

std::string format_weights(const PolicyWeights& w) {
  std::string out(kMagic);
  out += "\n";
  if (!w.note.empty()) out += "note " + w.note + "\n";
  out += "embedder " + w.embedder + " " + std::to_string(w.dimension) + "\n";
  out += "features";
  for (const auto& f : w.features) out += " " + f;
  out += "\n";
  for (const auto& r : w.routes) {
    out += "route " + r.name + " ms " + number_text(r.ms) + " tokens " + number_text(r.tokens) +
           "\nquality";
    for (double v : r.quality) out += " " + number_text(v);
    out += "\n";
  }
  return out;
}

}  // namespace memos::router_policy
