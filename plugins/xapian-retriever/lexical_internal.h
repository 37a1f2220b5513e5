// lexical_internal.h — what the files of LexicalCollection share: the
// metadata keys, the layer tags, the merge thresholds, and how Xapian's
// errors become this plugin's. Not for other code.
#pragma once

#include <xapian.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "plugins/xapian-retriever/lexical_collection.h"

namespace memos::lexical::detail {

inline const std::string kVersionKey = "memos.version";
inline const std::string kLanguageKey = "memos.language";
// The collection (cube) id, written when a database is created and at each
// save, so that an imported file or a database under another name is not
// taken for another collection's. Databases of older plugins lack it.
inline const std::string kCollectionKey = "memos.collection";

// The number `text` holds, or nothing. An empty text is nothing too.
inline std::optional<std::uint64_t> parse_number(const std::string& text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Natural-language questions, not a query language: no boolean operators
// ("AND", "NOT", brackets), no +/- and no wildcards, and no phrases (the
// index keeps no word positions). CJK text is split into n-grams, the same
// way TermGenerator does.
constexpr unsigned kParserFlags = Xapian::QueryParser::FLAG_CJK_NGRAM;

inline std::string id_term(std::uint64_t id) {
  return "Q" + std::to_string(id);
}

// Recent documents carry their in-memory layer's tag in this value slot, so
// the MatchDecider, which Xapian hands the document with its docid in its own
// database (not the combined docid), knows which layer's attributes to look
// at. Documents on disk never carry it: a merge takes it off.
constexpr Xapian::valueno kLayerSlot = 0;

// Only two in-memory layers exist at once (recent, and frozen while a merge
// runs), and frozen is always the generation before recent: parity tells
// them apart.
inline std::string layer_tag(std::uint64_t generation) {
  return generation % 2 == 0 ? "0" : "1";
}

// A merge is asked for at this many recent documents: enough to spread the
// commit's fixed cost, few enough that the in-memory layer stays small.
constexpr std::size_t kMergeDocuments = 4096;
// ... or this many deletions waiting on disk.
constexpr std::size_t kMergeDeletes = 1024;
// Xapian's Glass commits on its own at 10000 buffered changes (under our
// lock, a stall for searches); deletions past this many wait for the merge.
constexpr std::size_t kMaxBufferedDeletes = 4096;
// index() adds this many documents per hold of the lock searches take (an
// in-memory add costs tens of microseconds).
constexpr std::size_t kDocumentsPerLock = 32;
// A merge that is asked to give up checks every this many documents.
constexpr std::size_t kCloseCheckEvery = 256;

// A failure the collection found in a database's contents (not Xapian's).
struct Unusable {
  std::string why;
};

inline std::string describe(const Xapian::Error& e) {
  std::string s = e.get_type();
  s += ": ";
  s += e.get_msg();
  if (!e.get_context().empty()) s += " (" + e.get_context() + ")";
  return s;
}

// Disk and I/O trouble is worth retrying; a bad argument is the caller's; the
// rest is a bug here.
inline Error to_error(const Xapian::Error& e, const std::string& doing) {
  // Xapian::Error is not polymorphic: its subclass is known by name only.
  std::string_view type = e.get_type();
  Error::Kind kind = Error::Kind::internal;
  if (type == "DatabaseClosedError" || type == "InvalidArgumentError" ||
      type == "QueryParserError") {
    kind = Error::Kind::invalid;
  } else if (type.starts_with("Database")) {  // I/O, corruption, locks, disk full
    kind = Error::Kind::resource;
  }
  return Error(kind, doing + ": " + describe(e));
}

inline std::string available_languages() {
  std::string list = Xapian::Stem::get_available_languages();
  std::replace(list.begin(), list.end(), ' ', ',');
  std::string out;
  for (char c : list) {
    out += c;
    if (c == ',') out += ' ';
  }
  return out;
}

}  // namespace memos::lexical::detail
