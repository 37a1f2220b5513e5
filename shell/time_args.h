// time_args.h — times and durations as memctl reads them on its command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memos::shell {

// "now"; an ISO 8601 date ("2026-11-27", midnight UTC) or date and time
// ("2026-11-27T14:30", seconds and fractions optional, then "Z", "+hh:mm" or
// "-hh:mm"; no zone means UTC); or "@" and Unix seconds. Returns Unix ms.
std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms);

// A number and a unit: s, m, h, d or w ("90s", "12h", "30d"); a bare number
// is seconds. Returns ms; empty if malformed, zero or overflowing.
std::optional<std::int64_t> parse_duration(std::string_view text);

// UTC, ISO 8601 with milliseconds: "2026-11-27T14:30:00.000Z".
std::string format_time(std::int64_t ms);

}  // namespace memos::shell
