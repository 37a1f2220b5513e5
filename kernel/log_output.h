// log_output.h — how memosd writes its log on stderr.
//
// text (the default): one line per message, "2026-12-02T15:30:00.123Z info
// message", the time in UTC (Z: offset zero), the level coloured on a
// terminal.
// json (log_format = "json", for collectors): one JSON object per line:
// {"ts": "2026-12-02T15:30:00.123Z", "level": "info", "msg": "...",
// "thread": 1234}, and "file", "line" where the message has a source
// location. Text that is not valid UTF-8 is replaced (U+FFFD).
//
// Under systemd, when stderr is the journal (JOURNAL_STREAM names it,
// systemd.exec(5)), each line starts with its sd-daemon(3) priority, <3>
// for an error, <4> a warning, <6> info, <7> debug and trace, <2> critical,
// so that `journalctl -p err` selects by level; journald strips the prefix.
// The text format then carries no time or level (the journal records both);
// json keeps its fields, for whatever reads the journal's messages.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>

#include "kernel/config.h"

namespace memos::kernel {

// True when stderr is the stream JOURNAL_STREAM ("DEVICE:INODE", decimal)
// names: systemd connected it to the journal, and nothing redirected it.
bool stderr_is_journal();

class LogFormatter final : public spdlog::formatter {
 public:
  LogFormatter(LogFormat format, bool journal) : format_(format), journal_(journal) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  LogFormat format_;
  bool journal_;
};

// Makes the "memosd" logger on stderr the default one, at `level` (a
// log_level value), in `format`.
void set_up_logging(const std::string& level, LogFormat format);

// Changes the default logger's format (a SIGHUP reload); safe while other
// threads log (each sink swaps its formatter under its lock).
void set_log_format(LogFormat format);

}  // namespace memos::kernel
