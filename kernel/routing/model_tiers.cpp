#include "kernel/routing/model_tiers.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <regex>

namespace memos::kernel::routing {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::uint32_t kWindowTokens = 24;
constexpr std::uint32_t kYesNoTokens = 3;
constexpr std::size_t kQuoted = 40;  // of a model's answer, in a detail

// Days since 1970-01-01 of a real date, else nullopt.
std::optional<std::int64_t> day_number(int year, int month, int day) {
  if (year < 1900 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  const std::time_t t = timegm(&tm);
  std::tm back{};
  if (!gmtime_r(&t, &back) || back.tm_mday != day || back.tm_mon != month - 1) return std::nullopt;
  return static_cast<std::int64_t>(t) / 86400;
}

// The start of a model's answer, for a detail: cut before a UTF-8
// character's first byte (never inside one), control bytes as spaces.
std::string quoted(std::string_view text) {
  std::size_t cut = std::min(kQuoted, text.size());
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  std::string q(text.substr(0, cut));
  for (char& c : q)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return "'" + q + (cut < text.size() ? "...'" : "'");
}

std::string day_text(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  char buf[48];
  if (!gmtime_r(&t, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%d (%A)", &tm) == 0) return "?";
  return buf;
}

}  // namespace

WindowAnswer parse_window_answer(std::string_view text, TimeWindow* out) {
  static const std::regex window(
      R"(FROM\s+(\d{4})-(\d{1,2})-(\d{1,2})\s+TO\s+(\d{4})-(\d{1,2})-(\d{1,2}))",
      std::regex::icase);
  static const std::regex none(R"(^\W*NONE\b)", std::regex::icase);
  const std::string s(text.substr(0, 1024));
  std::smatch m;
  if (std::regex_search(s, m, window)) {
    auto from = day_number(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]));
    auto to = day_number(std::stoi(m[4]), std::stoi(m[5]), std::stoi(m[6]));
    if (!from || !to || *from > *to) return WindowAnswer::unreadable;
    out->from_ms = *from * kDayMs;
    out->to_ms = (*to + 1) * kDayMs;
    out->matched = m.str(0);
    return WindowAnswer::window;
  }
  return std::regex_search(s, none) ? WindowAnswer::none : WindowAnswer::unreadable;
}

std::optional<bool> parse_yes_no(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && !std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
  std::string word;
  for (; i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])); ++i)
    word += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  if (word == "yes") return true;
  if (word == "no") return false;
  return std::nullopt;
}

WindowAnswer model_time_window(ModelReader& model, std::string_view query,
                               std::int64_t reference_ms, TimeWindow* out, std::string* why) {
  const std::string instruction =
      "You read the time a question is about. Today is " + day_text(reference_ms) +
      ". Answer with one line: FROM YYYY-MM-DD TO YYYY-MM-DD, the first and last day it may "
      "mean, or NONE if it names no time.";
  std::string answer;
  if (Status s = model.ask(instruction, query, kWindowTokens, &answer); !s.ok()) {
    *why = "the model failed: " + s.message;
    return WindowAnswer::unreadable;
  }
  WindowAnswer a = parse_window_answer(answer, out);
  if (a == WindowAnswer::unreadable) *why = "the model answered " + quoted(answer);
  return a;
}

std::optional<std::vector<bool>> model_select(ModelReader& model, std::string_view query,
                                              const std::vector<std::string_view>& turns,
                                              std::string* why) {
  const std::string instruction = "Answer yes or no: does the turn help answer the question?";
  std::vector<bool> keep;
  for (std::string_view turn : turns) {
    std::string answer;
    const std::string input = "Question: " + std::string(query) + "\nTurn: " + std::string(turn);
    if (Status s = model.ask(instruction, input, kYesNoTokens, &answer); !s.ok()) {
      *why = "the model failed: " + s.message;
      return std::nullopt;
    }
    std::optional<bool> yes = parse_yes_no(answer);
    if (!yes) {
      *why = "the model answered " + quoted(answer);
      return std::nullopt;
    }
    keep.push_back(*yes);
  }
  return keep;
}

std::size_t model_compress(ModelReader& model, std::string_view query, std::uint32_t budget,
                           std::vector<ContextPiece>* pieces, std::string* why) {
  std::uint64_t total = 0;
  for (const auto& p : *pieces) total += p.tokens;
  if (total <= budget) return 0;
  std::size_t rewritten = 0;
  for (auto& p : *pieces) {
    // Its share of the budget, in words (about three for four tokens).
    const std::uint64_t share = std::max<std::uint64_t>(4, budget * p.tokens / total);
    const std::string instruction =
        "Rewrite the memory to only what bears on the question, in at most " +
        std::to_string(std::max<std::uint64_t>(3, share * 3 / 4)) +
        " words; keep names, dates and numbers. Answer with the rewritten memory only.";
    const std::string input = "Question: " + std::string(query) + "\nMemory: " + p.text;
    std::string answer;
    if (Status s = model.ask(instruction, input, static_cast<std::uint32_t>(share), &answer);
        !s.ok()) {
      *why = "the model failed: " + s.message;
      continue;
    }
    const auto first = answer.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) continue;
    answer = answer.substr(first, answer.find_last_not_of(" \t\r\n") - first + 1);
    if (estimate_tokens(answer) >= p.tokens) continue;  // no shorter: keep the memory
    p.text = std::move(answer);
    p.tokens = estimate_tokens(p.text);
    ++rewritten;
  }
  compress_extractive(query, budget, pieces);
  return rewritten;
}

}  // namespace memos::kernel::routing
