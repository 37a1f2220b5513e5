// scheduler_settings.h — what the scheduler does for one tenant (memos(7),
// "Scheduling"): how memories gain and lose strength, how large a cube's
// working set is, and whether cold memories are archived.
//
// memosd.conf's [scheduler] table sets the defaults (SchedulerSettings);
// a tenant policy's [scheduler] table may override each key
// (SchedulerOverrides), and resolve() merges the two. Both are plain
// values; the parsers check every range, so a resolved value is always
// usable as is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace memos::policies {

// What happens to memories whose retention stays low: nothing, or they move
// to the archived state (out of default searches, still readable; a read
// brings one back). The scheduler never deletes anything.
enum class Forgetting { off, archive };

const char* to_string(Forgetting forgetting);
// "off" or "archive"; nullopt for anything else.
std::optional<Forgetting> parse_forgetting(const std::string& text);
// The unit a retention's elapsed time is counted in: "seconds", "minutes",
// "hours" or "days", as seconds; nullopt for anything else.
std::optional<std::uint64_t> parse_time_unit(const std::string& text);
// The name of a unit parse_time_unit() accepts, else "N seconds".
std::string time_unit_name(std::uint64_t seconds);

struct SchedulerSettings {
  // false: the tenant's cubes get no working set and no background
  // prefill; strengths are still kept.
  bool enabled = true;
  // The working set of a cube with chats: its most retained and important
  // memories, up to about this many tokens (the model's tokens).
  std::uint32_t working_set_tokens = 1024;
  // What one recall adds to a memory's strength S (MemoryBank: S starts at
  // 1, R = exp(-t / S)).
  double strength_gain = 1;
  // A search hit counts as this fraction of a recall: it was shown, not
  // necessarily used (a get or a chat's context counts 1).
  double search_recall_weight = 0.25;
  // The unit of t in R = exp(-t / S): with days, a memory recalled once
  // (S = 2) keeps R = 0.61 a day later.
  std::uint64_t time_unit_s = 86400;
  Forgetting forgetting = Forgetting::off;
  // With forgetting = archive: a memory whose R stays below archive_below
  // for archive_after_s is archived.
  double archive_below = 0.05;
  std::uint64_t archive_after_s = 30 * 86400;
};

// A policy's [scheduler] keys; absent: memosd.conf's.
struct SchedulerOverrides {
  std::optional<bool> enabled;
  std::optional<std::uint32_t> working_set_tokens;
  std::optional<double> strength_gain;
  std::optional<double> search_recall_weight;
  std::optional<std::uint64_t> time_unit_s;
  std::optional<Forgetting> forgetting;
  std::optional<double> archive_below;
  std::optional<std::uint64_t> archive_after_s;

  bool operator==(const SchedulerOverrides&) const = default;
  bool empty() const {
    return !enabled && !working_set_tokens && !strength_gain && !search_recall_weight &&
           !time_unit_s && !forgetting && !archive_below && !archive_after_s;
  }
};

SchedulerSettings resolve(const SchedulerSettings& defaults, const SchedulerOverrides& overrides);

// Ranges, shared by memosd.conf and the policy parser so that both refuse
// the same values.
namespace scheduler_limits {
constexpr std::int64_t kMaxWorkingSetTokens = 1 << 20;
constexpr double kMaxStrengthGain = 1000;
constexpr std::int64_t kMaxArchiveAfterS = 10ll * 366 * 24 * 3600;
}  // namespace scheduler_limits

}  // namespace memos::policies
