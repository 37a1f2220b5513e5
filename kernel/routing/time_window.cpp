#include "kernel/routing/time_window.h"

#include <array>
#include <cctype>
#include <vector>

namespace memos::kernel::routing {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;

// ---- the civil calendar (proleptic Gregorian, UTC) ------------------------------
// Days since 1970-01-01, after H. Hinnant's "chrono-compatible low-level
// date algorithms".

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = floor_div(y, 400);
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  std::int64_t year;
  int month, day;
};

Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = floor_div(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2), m, d};
}

int days_in_month(std::int64_t y, int m) {
  return static_cast<int>(days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
                          days_from_civil(y, m, 1));
}

// Monday 0 .. Sunday 6 (1970-01-01 was a Thursday).
int weekday(std::int64_t day) {
  return static_cast<int>(((day + 3) % 7 + 7) % 7);
}

// [from, to) in days.
struct Span {
  std::int64_t from, to;
};

Span month_span(std::int64_t y, int m, int months = 1) {
  const std::int64_t end_index = y * 12 + (m - 1) + months;
  return {days_from_civil(y, m, 1),
          days_from_civil(floor_div(end_index, 12), static_cast<int>(end_index % 12) + 1, 1)};
}
Span year_span(std::int64_t y) {
  return {days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1)};
}
Span week_span(std::int64_t day) {
  const std::int64_t monday = day - weekday(day);
  return {monday, monday + 7};
}
// The month `shift` months from (y, m).
Civil shift_month(std::int64_t y, int m, std::int64_t shift) {
  const std::int64_t index = y * 12 + (m - 1) + shift;
  return {floor_div(index, 12), static_cast<int>(index - floor_div(index, 12) * 12) + 1, 1};
}

// ---- words --------------------------------------------------------------------------

struct Word {
  std::string text;        // lower case; an ordinal's suffix dropped ("8th" -> "8")
  std::size_t begin, end;  // in the query
  int number = -1;         // its value if it is a number (digits or one..twelve)
  bool digits = false;     // written in digits
  std::size_t digit_count = 0;
};

constexpr std::array<const char*, 13> kNumberWords = {"zero", "one",    "two",   "three", "four",
                                                      "five", "six",    "seven", "eight", "nine",
                                                      "ten",  "eleven", "twelve"};

std::vector<Word> split_words(std::string_view q) {
  std::vector<Word> words;
  std::size_t i = 0;
  while (i < q.size()) {
    if (!std::isalnum(static_cast<unsigned char>(q[i]))) {
      ++i;
      continue;
    }
    Word w;
    w.begin = i;
    while (i < q.size() && std::isalnum(static_cast<unsigned char>(q[i]))) {
      w.text.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(q[i]))));
      ++i;
    }
    w.end = i;
    std::size_t digits = 0;
    while (digits < w.text.size() && std::isdigit(static_cast<unsigned char>(w.text[digits])))
      ++digits;
    const std::string tail = w.text.substr(digits);
    if (digits > 0 && digits <= 6 &&
        (tail.empty() || tail == "st" || tail == "nd" || tail == "rd" || tail == "th")) {
      w.text.resize(digits);
      w.number = std::stoi(w.text);
      w.digits = true;
      w.digit_count = digits;
    } else {
      for (std::size_t n = 0; n < kNumberWords.size(); ++n) {
        if (w.text == kNumberWords[n]) w.number = static_cast<int>(n);
      }
    }
    words.push_back(std::move(w));
  }
  return words;
}

int month_of(const std::string& w) {
  static constexpr std::array<std::array<const char*, 2>, 12> kMonths = {{{"january", "jan"},
                                                                          {"february", "feb"},
                                                                          {"march", "mar"},
                                                                          {"april", "apr"},
                                                                          {"may", "may"},
                                                                          {"june", "jun"},
                                                                          {"july", "jul"},
                                                                          {"august", "aug"},
                                                                          {"september", "sep"},
                                                                          {"october", "oct"},
                                                                          {"november", "nov"},
                                                                          {"december", "dec"}}};
  for (std::size_t m = 0; m < kMonths.size(); ++m) {
    if (w == kMonths[m][0] || w == kMonths[m][1]) return static_cast<int>(m) + 1;
  }
  return w == "sept" ? 9 : 0;
}

// Months whose names are also common verbs: months only in context.
bool ambiguous_month(const std::string& w) {
  return w == "may" || w == "march" || w == "mar";
}

bool month_context(const std::string& w) {
  for (const char* c : {"in",    "on",   "during", "of",      "since", "before", "after",
                        "until", "till", "by",     "early",   "late",  "mid",    "last",
                        "this",  "next", "from",   "between", "and",   "through"}) {
    if (w == c) return true;
  }
  return false;
}

int weekday_of(const std::string& w) {
  static constexpr std::array<const char*, 7> kDays = {
      "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
  for (std::size_t d = 0; d < kDays.size(); ++d) {
    if (w == kDays[d]) return static_cast<int>(d);
  }
  return -1;
}

// The season's first month (northern hemisphere, meteorological seasons).
int season_of(const std::string& w) {
  if (w == "spring") return 3;
  if (w == "summer") return 6;
  if (w == "autumn" || w == "fall") return 9;
  if (w == "winter") return 12;
  return 0;
}

enum class Unit { none, day, week, month, year };

Unit unit_of(const std::string& w) {
  if (w == "day" || w == "days") return Unit::day;
  if (w == "week" || w == "weeks") return Unit::week;
  if (w == "month" || w == "months") return Unit::month;
  if (w == "year" || w == "years") return Unit::year;
  return Unit::none;
}

bool is_year(const Word& w) {
  return w.digits && w.digit_count == 4 && w.number >= 1900 && w.number < 2200;
}
bool is_day_of_month(const Word& w) {
  return w.digits && w.digit_count <= 2 && w.number >= 1 && w.number <= 31;
}

struct Found {
  Span span;
  std::size_t end;  // the word after the expression
};

// Reads expressions from the words, against the reference day.
class Reader {
 public:
  Reader(std::string_view query, std::int64_t reference_ms)
      : query_(query),
        own_words_(split_words(query)),
        words_(own_words_),
        today_(floor_div(reference_ms, kDayMs)),
        now_(civil_from_days(today_)) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  // The same words (borrowed, not copied) read as of another day, for
  // "last Friday before X".
  Reader(const Reader& base, std::int64_t today)
      : query_(base.query_),
        words_(base.words_),
        today_(today),
        now_(civil_from_days(today)),
        re_anchored_(true) {}

  std::optional<TimeWindow> first() const {
    for (std::size_t i = 0; i < words_.size(); ++i) {
      if (words_[i].text == "the") continue;  // read with the words after it
      if (auto found = bounded(i)) {
        TimeWindow w = window(found->span, words_[i].text);
        w.matched = std::string(
            query_.substr(words_[i].begin, words_[found->end - 1].end - words_[i].begin));
        return w;
      }
    }
    return std::nullopt;
  }

 private:
  const std::string& at(std::size_t i) const {
    static const std::string kNone;
    return i < words_.size() ? words_[i].text : kNone;
  }
  const Word* word(std::size_t i) const { return i < words_.size() ? &words_[i] : nullptr; }

  // The window a qualifier makes of a span; "between" has made its own.
  static TimeWindow window(Span s, const std::string& qualifier) {
    TimeWindow w;
    if (qualifier == "before") {
      w.to_ms = s.from * kDayMs;
    } else if (qualifier == "after") {
      w.from_ms = s.to * kDayMs;
    } else if (qualifier == "since") {
      w.from_ms = s.from * kDayMs;
    } else if (qualifier == "until" || qualifier == "till") {
      w.to_ms = s.to * kDayMs;
    } else {
      w.from_ms = s.from * kDayMs;
      w.to_ms = s.to * kDayMs;
    }
    return w;
  }

  // "before|after|since|until X", "between X and Y", or X. A qualified span
  // keeps the qualifier's word first; window() reads it from there.
  std::optional<Found> bounded(std::size_t i) const {
    const std::string& w = at(i);
    if (w == "before" || w == "after" || w == "since" || w == "until" || w == "till") {
      return expression(i + 1);
    }
    if (w == "between") {
      auto first = expression(i + 1);
      if (!first || at(first->end) != "and") return std::nullopt;
      auto second = expression(first->end + 1);
      if (!second) return std::nullopt;
      return Found{{first->span.from, second->span.to}, second->end};
    }
    return expression(i);
  }

  // `anchored`: the time a span is measured or counted back from, which is
  // read as it stands (so a hostile "day before day before ..." or "last
  // week before last week before ..." nests once).
  std::optional<Found> expression(std::size_t i, bool anchored = false) const {
    if (at(i) == "the") ++i;
    if (i >= words_.size()) return std::nullopt;
    for (auto read :
         {&Reader::iso_date, &Reader::measured, &Reader::relative_day, &Reader::span_back,
          &Reader::ago, &Reader::this_last_next, &Reader::day_month, &Reader::month_first,
          &Reader::season, &Reader::weekday_alone, &Reader::year_alone}) {
      // An anchor is read as of today, never anchored itself.
      if (anchored && read == &Reader::measured) continue;
      if (anchored && read == &Reader::this_last_next) read = &Reader::as_of_today;
      if (auto found = (this->*read)(i)) return found;
    }
    return std::nullopt;
  }

  // 2023-05-08: three numbers joined by single dashes.
  std::optional<Found> iso_date(std::size_t i) const {
    const Word *y = word(i), *m = word(i + 1), *d = word(i + 2);
    if (!y || !m || !d || !is_year(*y) || !m->digits || !d->digits) return std::nullopt;
    auto dash = [&](const Word& a, const Word& b) {
      return b.begin == a.end + 1 && query_[a.end] == '-';
    };
    if (!dash(*y, *m) || !dash(*m, *d) || m->number < 1 || m->number > 12 || d->number < 1 ||
        d->number > days_in_month(y->number, m->number)) {
      return std::nullopt;
    }
    const std::int64_t day = days_from_civil(y->number, m->number, d->number);
    return Found{{day, day + 1}, i + 3};
  }

  // "the week before X", "two weeks before X", "3 days after X": a span
  // measured from a time the query names. Uncounted, the unit next to X;
  // counted, a unit's length around the day that far from X.
  std::optional<Found> measured(std::size_t i) const {
    const Word* n = word(i);
    if (!n) return std::nullopt;
    const bool counted = (n->number > 0 && !is_year(*n)) || n->text == "a" || n->text == "an";
    const std::int64_t count = n->number > 0 ? n->number : 1;
    const std::size_t u = counted ? i + 1 : i;
    const Unit unit = unit_of(at(u));
    const std::string& direction = at(u + 1);
    if (unit == Unit::none || (direction != "before" && direction != "after")) return std::nullopt;
    const auto anchor = expression(u + 2, /*anchored=*/true);
    if (!anchor) return std::nullopt;
    const std::int64_t length = unit == Unit::day     ? 1
                                : unit == Unit::week  ? 7
                                : unit == Unit::month ? 30
                                                      : 365;
    const bool before = direction == "before";
    const std::int64_t edge = before ? anchor->span.from : anchor->span.to;
    if (!counted) {
      return Found{before ? Span{edge - length, edge} : Span{edge, edge + length}, anchor->end};
    }
    const std::int64_t day = before ? edge - count * length : edge - 1 + count * length;
    return Found{{day - length / 2, day - length / 2 + length}, anchor->end};
  }

  std::optional<Found> relative_day(std::size_t i) const {
    const std::string& w = at(i);
    std::int64_t shift = 0;
    std::size_t end = i + 1;
    if (w == "today" || w == "tonight") {
      shift = 0;
    } else if (w == "yesterday") {
      shift = -1;
    } else if (w == "tomorrow") {
      shift = 1;
    } else if (w == "last" && at(i + 1) == "night") {
      shift = -1, end = i + 2;
    } else if (w == "this" &&
               (at(i + 1) == "morning" || at(i + 1) == "afternoon" || at(i + 1) == "evening")) {
      end = i + 2;
    } else {
      return std::nullopt;
    }
    return Found{{today_ + shift, today_ + shift + 1}, end};
  }

  // "past|last N units" (N may be left out: "the past week"), up to today.
  std::optional<Found> span_back(std::size_t i) const {
    if (at(i) != "past" && at(i) != "last") return std::nullopt;
    const Word* n = word(i + 1);
    const bool counted = n && n->number > 0 && !is_year(*n);
    const std::size_t u = counted ? i + 2 : i + 1;
    const Unit unit = unit_of(at(u));
    // "last week" without a count is the calendar week (this_last_next).
    if (unit == Unit::none || (!counted && at(i) == "last")) return std::nullopt;
    const std::int64_t count = counted ? n->number : 1;
    return Found{{back(unit, count), today_ + 1}, u + 1};
  }

  // The day `count` units before today.
  std::int64_t back(Unit unit, std::int64_t count) const {
    switch (unit) {
      case Unit::day:
        return today_ - count;
      case Unit::week:
        return today_ - 7 * count;
      case Unit::month: {
        const Civil c = shift_month(now_.year, now_.month, -count);
        return days_from_civil(c.year, c.month, std::min(now_.day, days_in_month(c.year, c.month)));
      }
      case Unit::year:
      case Unit::none:
        break;
    }
    const std::int64_t y = now_.year - count;
    return days_from_civil(y, now_.month, std::min(now_.day, days_in_month(y, now_.month)));
  }

  // "N units ago", "a week ago": the calendar unit that day falls in.
  std::optional<Found> ago(std::size_t i) const {
    const Word* n = word(i);
    if (!n) return std::nullopt;
    const std::int64_t count = (n->text == "a" || n->text == "an") ? 1 : n->number;
    if (count <= 0 || is_year(*n)) return std::nullopt;
    const Unit unit = unit_of(at(i + 1));
    if (unit == Unit::none || at(i + 2) != "ago") return std::nullopt;
    return Found{unit_around(unit, back(unit, count)), i + 3};
  }

  Span unit_around(Unit unit, std::int64_t day) const {
    const Civil c = civil_from_days(day);
    switch (unit) {
      case Unit::week:
        return week_span(day);
      case Unit::month:
        return month_span(c.year, c.month);
      case Unit::year:
        return year_span(c.year);
      case Unit::day:
      case Unit::none:
        break;
    }
    return {day, day + 1};
  }

  // "this|last|next" + week, weekend, month, year, a month's, a season's or
  // a weekday's name.
  // "last weekend before April 10": the last one as of that day.
  std::optional<Found> this_last_next(std::size_t i) const {
    const std::size_t end = i + 2;
    if (at(i) == "last" && !re_anchored_ && at(end) == "before") {
      if (const auto anchor = expression(end + 1, /*anchored=*/true)) {
        if (auto found = Reader(*this, anchor->span.from).as_of_today(i)) {
          return Found{found->span, anchor->end};
        }
      }
    }
    return as_of_today(i);
  }

  std::optional<Found> as_of_today(std::size_t i) const {
    const std::string& w = at(i);
    const int step = w == "last" ? -1 : w == "next" ? 1 : w == "this" ? 0 : 2;
    if (step == 2) return std::nullopt;
    const std::string& what = at(i + 1);
    const std::size_t end = i + 2;
    if (what == "weekend") {
      // This week's Saturday and Sunday; last weekend's end this Monday.
      const std::int64_t saturday = week_span(today_).from + 5 + 7 * std::int64_t{step};
      return Found{{saturday, saturday + 2}, end};
    }
    if (const Unit unit = unit_of(what); unit != Unit::none) {
      switch (unit) {
        case Unit::day:
          return Found{{today_ + step, today_ + step + 1}, end};
        case Unit::week:
          return Found{week_span(today_ + 7 * step), end};
        case Unit::month: {
          const Civil c = shift_month(now_.year, now_.month, step);
          return Found{month_span(c.year, c.month), end};
        }
        case Unit::year:
        case Unit::none:
          break;
      }
      return Found{year_span(now_.year + step), end};
    }
    if (const int m = month_of(what)) return Found{occurrence(m, 1, step), end};
    if (const int s = season_of(what)) return Found{occurrence(s, 3, step), end};
    if (const int d = weekday_of(what); d >= 0) {
      const std::int64_t monday = week_span(today_).from;
      std::int64_t day = monday + d;  // this week's
      if (step == -1) day = day < today_ ? day : day - 7;
      if (step == 1) day = day > today_ ? day : day + 7;
      return Found{{day, day + 1}, end};
    }
    return std::nullopt;
  }

  // The `months` months from month `first` of some year: this year's
  // (step 0), the last one to have ended by today (-1), the next one to
  // start after today (1), or the latest to have started by today (2,
  // "in May").
  Span occurrence(int first, int months, int step) const {
    if (step == 0) return month_span(now_.year, first, months);
    for (std::int64_t y = now_.year + 1; y >= now_.year - 2; --y) {
      const Span s = month_span(y, first, months);
      if (step == -1 && s.to <= today_) return s;
      if (step == 2 && s.from <= today_) return s;
    }
    for (std::int64_t y = now_.year - 1; y <= now_.year + 2; ++y) {
      const Span s = month_span(y, first, months);
      if (step == 1 && s.from > today_) return s;
    }
    return month_span(now_.year, first, months);
  }

  // The latest such date by today, or this year's.
  Span date(std::optional<std::int64_t> year, int month, int day_of_month) const {
    if (year) {
      const std::int64_t d = days_from_civil(*year, month, day_of_month);
      return {d, d + 1};
    }
    for (std::int64_t y = now_.year; y >= now_.year - 1; --y) {
      if (day_of_month > days_in_month(y, month)) continue;
      const std::int64_t d = days_from_civil(y, month, day_of_month);
      if (d <= today_) return {d, d + 1};
    }
    const std::int64_t d = days_from_civil(now_.year, month, day_of_month);
    return {d, d + 1};
  }

  // "8 May [2023]", "the 8th of May".
  std::optional<Found> day_month(std::size_t i) const {
    const Word* d = word(i);
    if (!d || !is_day_of_month(*d)) return std::nullopt;
    std::size_t m = at(i + 1) == "of" ? i + 2 : i + 1;
    const int month = month_of(at(m));
    if (!month) return std::nullopt;
    return with_year(month, d->number, m + 1);
  }

  // "May [8][,] [2023]"; a bare "May" only in context.
  std::optional<Found> month_first(std::size_t i) const {
    const int month = month_of(at(i));
    if (!month) return std::nullopt;
    const Word* next = word(i + 1);
    if (next && is_day_of_month(*next)) return with_year(month, next->number, i + 2);
    if (next && is_year(*next)) return Found{month_span(next->number, month), i + 2};
    if (ambiguous_month(at(i)) && (i == 0 || !month_context(at(i - 1)))) return std::nullopt;
    return Found{occurrence(month, 1, 2), i + 1};
  }

  std::optional<Found> with_year(int month, int day_of_month, std::size_t after) const {
    const Word* y = word(after);
    std::optional<std::int64_t> year;
    if (y && is_year(*y)) year = y->number;
    if (day_of_month > days_in_month(year.value_or(now_.year), month) &&
        !(month == 2 && day_of_month == 29 && !year)) {
      return std::nullopt;
    }
    return Found{date(year, month, day_of_month), year ? after + 1 : after};
  }

  // "summer [2022]": the latest to have started by today.
  std::optional<Found> season(std::size_t i) const {
    const int first = season_of(at(i));
    if (!first) return std::nullopt;
    if (const Word* y = word(i + 1); y && is_year(*y)) {
      return Found{month_span(y->number, first, 3), i + 2};
    }
    return Found{occurrence(first, 3, 2), i + 1};
  }

  // "Friday", "on Friday": the latest by today.
  std::optional<Found> weekday_alone(std::size_t i) const {
    const int d = weekday_of(at(i));
    if (d < 0) return std::nullopt;
    std::int64_t day = week_span(today_).from + d;
    if (day > today_) day -= 7;
    return Found{{day, day + 1}, i + 1};
  }

  std::optional<Found> year_alone(std::size_t i) const {
    const Word* y = word(i);
    if (!y || !is_year(*y)) return std::nullopt;
    return Found{year_span(y->number), i + 1};
  }

  std::string_view query_;
  std::vector<Word> own_words_;     // empty in a re-anchored reader
  const std::vector<Word>& words_;  // its own, or the reader's it was made from
  std::int64_t today_;
  Civil now_;
  bool re_anchored_ = false;
};

}  // namespace

std::optional<TimeWindow> read_time_window(std::string_view query, std::int64_t reference_ms) {
  return Reader(query, reference_ms).first();
}

}  // namespace memos::kernel::routing
