#include "kernel/log_output.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

namespace memos::kernel {
namespace {

// sd-daemon(3): SD_CRIT 2, SD_ERR 3, SD_WARNING 4, SD_INFO 6, SD_DEBUG 7.
char journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return '2';
    case spdlog::level::err:
      return '3';
    case spdlog::level::warn:
      return '4';
    case spdlog::level::info:
      return '6';
    default:
      return '7';
  }
}

// RFC 3339 in UTC, to the millisecond: 2026-12-02T15:30:00.123Z.
std::string utc_time(spdlog::log_clock::time_point time) {
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  std::time_t t = seconds.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis.count()));
  return text;
}

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

}  // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long device = 0, inode = 0;
  char extra = 0;
  if (std::sscanf(stream, "%llu:%llu%c", &device, &inode, &extra) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

void LogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string_view text(msg.payload.data(), msg.payload.size());
  const char prefix[] = {'<', journal_priority(msg.level), '>'};
  if (journal_) append(dest, std::string_view(prefix, 3));
  if (format_ == LogFormat::json) {
    nlohmann::ordered_json line;
    line["ts"] = utc_time(msg.time);
    auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string_view(level.data(), level.size());
    line["msg"] = text;
    line["thread"] = msg.thread_id;
    if (!msg.source.empty()) {
      line["file"] = msg.source.filename;
      line["line"] = msg.source.line;
    }
    append(dest, line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    append(dest, "\n");
    return;
  }
  if (!journal_) {
    append(dest, utc_time(msg.time));
    append(dest, " ");
    msg.color_range_start = dest.size();
    auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    msg.color_range_end = dest.size();
    append(dest, " ");
  }
  // journald reads each line on its own: every line of a message carries
  // its priority, not only the first.
  for (std::size_t start = 0;;) {
    std::size_t end = text.find('\n', start);
    append(dest, text.substr(start, end - start));
    append(dest, "\n");
    if (end == std::string_view::npos || end + 1 == text.size()) break;
    start = end + 1;
    if (journal_) append(dest, std::string_view(prefix, 3));
  }
}

std::unique_ptr<spdlog::formatter> LogFormatter::clone() const {
  return std::make_unique<LogFormatter>(format_, journal_);
}

void set_up_logging(const std::string& level, LogFormat format) {
  auto logger = spdlog::stderr_color_mt("memosd");
  logger->set_formatter(std::make_unique<LogFormatter>(format, stderr_is_journal()));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

void set_log_format(LogFormat format) {
  spdlog::default_logger()->set_formatter(
      std::make_unique<LogFormatter>(format, stderr_is_journal()));
}

}  // namespace memos::kernel
