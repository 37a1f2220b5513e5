// peers_figures.h — one figure of bench-peers: a system's result in one
// phase, as a JSON line of the shape every system prints (memosd's, made in
// C++, and the peers', printed by bench/peers/peers.mjs and read back here
// for the summary). Every line has every key; a figure that does not apply
// is null, so a reader can tabulate the lines without knowing the phase.
#pragma once

#include <cmath>
#include <cstdint>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace memos::bench::peers {

struct Figure {
  std::string system;
  std::string phase;                // add, search, recall or footprint
  std::optional<std::string> mode;  // search and recall: dense, lexical, hybrid, ...
  std::optional<double> items, writers, queries;
  std::optional<double> adds_per_s, p50_us, p99_us, recall_at_10, rss_mb, disk_mb;
  std::string durability;
};

inline constexpr std::string_view kPhases[] = {"add", "search", "recall", "footprint"};

// `value` rounded to `decimals` places (0: an integer), or null.
inline nlohmann::json rounded(const std::optional<double>& value, int decimals) {
  if (!value) return nullptr;
  if (decimals == 0) return static_cast<std::int64_t>(std::llround(*value));  // a count
  double scale = std::pow(10.0, decimals);
  return std::round(*value * scale) / scale;
}

namespace detail {

// A key every line must have: a number or null.
inline std::optional<double> read_number(const nlohmann::json& line, const char* key) {
  auto found = line.find(key);
  if (found == line.end()) throw std::runtime_error(std::string("no \"") + key + "\"");
  if (found->is_null()) return std::nullopt;
  if (!found->is_number()) throw std::runtime_error(std::string("\"") + key + "\" is no number");
  return found->get<double>();
}

inline std::string read_string(const nlohmann::json& line, const char* key) {
  auto found = line.find(key);
  if (found == line.end() || !found->is_string())
    throw std::runtime_error(std::string("\"") + key + "\" is missing or no string");
  return found->get<std::string>();
}

}  // namespace detail

inline nlohmann::json to_json(const Figure& f) {
  return nlohmann::json{{"bench", "peers"},
                        {"system", f.system},
                        {"phase", f.phase},
                        {"mode", f.mode ? nlohmann::json(*f.mode) : nlohmann::json(nullptr)},
                        {"items", rounded(f.items, 0)},
                        {"writers", rounded(f.writers, 0)},
                        {"queries", rounded(f.queries, 0)},
                        {"adds_per_s", rounded(f.adds_per_s, 1)},
                        {"p50_us", rounded(f.p50_us, 1)},
                        {"p99_us", rounded(f.p99_us, 1)},
                        {"recall_at_10", rounded(f.recall_at_10, 4)},
                        {"rss_mb", rounded(f.rss_mb, 1)},
                        {"disk_mb", rounded(f.disk_mb, 1)},
                        {"durability", f.durability}};
}

// Prints the figure as one line of stdout (nlohmann's dump keeps the keys in
// alphabetical order; readers key on names, not positions).
inline void print(const Figure& f) {
  std::cout << to_json(f).dump() << std::endl;
}

// Reads a line a peer's script printed. Throws std::runtime_error naming
// what is wrong: not JSON, another bench, an unknown phase, a missing key.
inline Figure parse_figure(std::string_view text) {
  nlohmann::json line = nlohmann::json::parse(text, nullptr, false);
  if (line.is_discarded() || !line.is_object()) throw std::runtime_error("not a JSON object");
  if (line.value("bench", "") != "peers") throw std::runtime_error("not a bench-peers line");
  Figure f;
  f.system = detail::read_string(line, "system");
  f.phase = detail::read_string(line, "phase");
  bool known = false;
  for (std::string_view phase : kPhases) known = known || f.phase == phase;
  if (!known) throw std::runtime_error("unknown phase \"" + f.phase + "\"");
  auto mode = line.find("mode");
  if (mode == line.end()) throw std::runtime_error("no \"mode\"");
  if (mode->is_string()) f.mode = mode->get<std::string>();
  f.items = detail::read_number(line, "items");
  f.writers = detail::read_number(line, "writers");
  f.queries = detail::read_number(line, "queries");
  f.adds_per_s = detail::read_number(line, "adds_per_s");
  f.p50_us = detail::read_number(line, "p50_us");
  f.p99_us = detail::read_number(line, "p99_us");
  f.recall_at_10 = detail::read_number(line, "recall_at_10");
  f.rss_mb = detail::read_number(line, "rss_mb");
  f.disk_mb = detail::read_number(line, "disk_mb");
  f.durability = detail::read_string(line, "durability");
  return f;
}

}  // namespace memos::bench::peers
