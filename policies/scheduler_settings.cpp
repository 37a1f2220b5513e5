#include "policies/scheduler_settings.h"

#include <array>
#include <utility>

namespace memos::policies {
namespace {

constexpr std::array<std::pair<const char*, std::uint64_t>, 4> kUnits = {{
    {"seconds", 1},
    {"minutes", 60},
    {"hours", 3600},
    {"days", 86400},
}};

}  // namespace

const char* to_string(Forgetting forgetting) {
  return forgetting == Forgetting::archive ? "archive" : "off";
}

std::optional<Forgetting> parse_forgetting(const std::string& text) {
  if (text == "off") return Forgetting::off;
  if (text == "archive") return Forgetting::archive;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_time_unit(const std::string& text) {
  for (const auto& [name, seconds] : kUnits) {
    if (text == name) return seconds;
  }
  return std::nullopt;
}

std::string time_unit_name(std::uint64_t seconds) {
  for (const auto& [name, s] : kUnits) {
    if (s == seconds) return name;
  }
  return std::to_string(seconds) + " seconds";
}

SchedulerSettings resolve(const SchedulerSettings& defaults, const SchedulerOverrides& o) {
  SchedulerSettings s = defaults;
  if (o.enabled) s.enabled = *o.enabled;
  if (o.working_set_tokens) s.working_set_tokens = *o.working_set_tokens;
  if (o.strength_gain) s.strength_gain = *o.strength_gain;
  if (o.search_recall_weight) s.search_recall_weight = *o.search_recall_weight;
  if (o.time_unit_s) s.time_unit_s = *o.time_unit_s;
  if (o.forgetting) s.forgetting = *o.forgetting;
  if (o.archive_below) s.archive_below = *o.archive_below;
  if (o.archive_after_s) s.archive_after_s = *o.archive_after_s;
  return s;
}

}  // namespace memos::policies
