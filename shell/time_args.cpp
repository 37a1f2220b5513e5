#include "shell/time_args.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace memos::shell {
namespace {

// Reads exactly `digits` decimal digits at `pos`.
bool read_int(std::string_view s, std::size_t& pos, int digits, int* out) {
  if (pos + static_cast<std::size_t>(digits) > s.size()) return false;
  int v = 0;
  for (int i = 0; i < digits; ++i) {
    char c = s[pos + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += static_cast<std::size_t>(digits);
  *out = v;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

}  // namespace

std::optional<std::int64_t> parse_time(std::string_view s, std::int64_t now_ms) {
  if (s == "now") return now_ms;
  if (!s.empty() && s[0] == '@') {
    std::int64_t secs = 0;
    auto [end, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), secs);
    if (ec != std::errc() || end != s.data() + s.size() || secs < 0 || secs > (1ll << 40)) {
      return std::nullopt;
    }
    return secs * 1000;
  }
  std::size_t pos = 0;
  std::tm tm{};
  int year, month, day, hour = 0, minute = 0, second = 0, millis = 0;
  if (!read_int(s, pos, 4, &year) || !expect(s, pos, '-') || !read_int(s, pos, 2, &month) ||
      !expect(s, pos, '-') || !read_int(s, pos, 2, &day)) {
    return std::nullopt;
  }
  std::int64_t offset_minutes = 0;
  if (pos < s.size()) {
    if (!expect(s, pos, 'T') && !expect(s, pos, ' ')) return std::nullopt;
    if (!read_int(s, pos, 2, &hour) || !expect(s, pos, ':') || !read_int(s, pos, 2, &minute)) {
      return std::nullopt;
    }
    if (expect(s, pos, ':')) {
      if (!read_int(s, pos, 2, &second)) return std::nullopt;
      if (expect(s, pos, '.')) {
        int scale = 100, digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (digits++ < 3) millis += (s[pos] - '0') * scale, scale /= 10;
          ++pos;
        }
        if (digits == 0) return std::nullopt;
      }
    }
    if (expect(s, pos, 'Z')) {
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
      int sign = s[pos++] == '-' ? -1 : 1, oh, om;
      if (!read_int(s, pos, 2, &oh) || !expect(s, pos, ':') || !read_int(s, pos, 2, &om) ||
          oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_minutes = sign * (oh * 60 + om);
    }
    if (pos != s.size()) return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 ||
      year < 1970) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t t = timegm(&tm);
  // timegm normalises 31 February into March: refuse dates that moved.
  std::tm check{};
  gmtime_r(&t, &check);
  if (check.tm_mday != day || check.tm_mon != month - 1) return std::nullopt;
  std::int64_t ms = static_cast<std::int64_t>(t) * 1000 + millis - offset_minutes * 60000;
  if (ms < 0) return std::nullopt;
  return ms;
}

std::optional<std::int64_t> parse_duration(std::string_view s) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n <= 0) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  std::int64_t scale;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else if (unit == "w") {
    scale = 604'800'000;
  } else {
    return std::nullopt;
  }
  if (n > (1ll << 62) / scale) return std::nullopt;
  return n * scale;
}

std::string format_time(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace memos::shell
