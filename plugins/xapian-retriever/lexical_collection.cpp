#include "plugins/xapian-retriever/lexical_collection.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <system_error>
#include <utility>

#include "plugins/xapian-retriever/document_data.h"
#include "plugins/xapian-retriever/stop_words.h"

namespace memos::lexical {
namespace {

const std::string kVersionKey = "memos.version";
const std::string kLanguageKey = "memos.language";

// Natural-language questions, not a query language: no boolean operators
// ("AND", "NOT", brackets), no +/- and no wildcards, and no phrases (the
// index keeps no word positions). CJK text is split into n-grams, the same
// way TermGenerator does.
constexpr unsigned kParserFlags = Xapian::QueryParser::FLAG_CJK_NGRAM;

std::string id_term(std::uint64_t id) {
  return "Q" + std::to_string(id);
}

// A failure the collection found in a database's contents (not Xapian's).
struct Unusable {
  std::string why;
};

std::string describe(const Xapian::Error& e) {
  std::string s = e.get_type();
  s += ": ";
  s += e.get_msg();
  if (!e.get_context().empty()) s += " (" + e.get_context() + ")";
  return s;
}

// Disk and I/O trouble is worth retrying; a bad argument is the caller's; the
// rest is a bug here.
Error to_error(const Xapian::Error& e, const std::string& doing) {
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

std::string available_languages() {
  std::string list = Xapian::Stem::get_available_languages();
  std::replace(list.begin(), list.end(), ' ', ',');
  std::string out;
  for (char c : list) {
    out += c;
    if (c == ',') out += ' ';
  }
  return out;
}

}  // namespace

std::string canonical_language(const std::string& language) {
  try {
    std::string d = Xapian::Stem(language).get_description();  // "Xapian::Stem(english)"
    auto open = d.find('(');
    auto close = d.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close <= open) return language;
    std::string name = d.substr(open + 1, close - open - 1);
    return name.empty() ? "none" : name;
  } catch (const Xapian::Error&) {
    throw Error(Error::Kind::invalid, "unknown language '" + language + "'; Xapian knows: none, " +
                                          available_languages());
  }
}

// Applies the filter inside the match: Xapian asks it about each candidate
// before counting it, so k admitted documents come back whatever the filter
// excludes.
class LexicalCollection::AdmitDecider final : public Xapian::MatchDecider {
 public:
  AdmitDecider(const std::unordered_map<Xapian::docid, Entry>& entries,
               const retrieval::FilterSpec& filter)
      : entries_(entries), filter_(filter) {}
  bool operator()(const Xapian::Document& doc) const override {
    auto it = entries_.find(doc.get_docid());
    return it != entries_.end() && retrieval::admits(it->second.attributes, filter_);
  }

 private:
  const std::unordered_map<Xapian::docid, Entry>& entries_;
  const retrieval::FilterSpec& filter_;
};

LexicalCollection::LexicalCollection(std::string path, const std::string& language, Bm25Params bm25)
    : path_(std::move(path)), language_(canonical_language(language)), bm25_(bm25) {
  try {
    stemmer_ = Xapian::Stem(language_);
    stopper_ = stopper_for(language_);
    configure(generator_);
  } catch (const Xapian::Error& e) {
    throw to_error(e, "setting up language " + language_);
  }
  std::lock_guard lock(mutex_);
  open_or_rebuild();
}

LexicalCollection::~LexicalCollection() {
  // Closing commits buffered changes without touching "memos.version" (see
  // save()), so the database never claims more than it holds.
  try {
    db_.close();
  } catch (const Xapian::Error&) {
  }
}

void LexicalCollection::open_or_rebuild() {
  if (path_.empty()) {
    try {
      db_ = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
    } catch (const Xapian::Error& e) {
      throw to_error(e, "creating an in-memory database");
    }
    detail_ = "in memory (no state_dir): not saved";
    return;
  }
  std::string why;
  try {
    load();
    return;
  } catch (const Xapian::Error& e) {
    why = describe(e);
  } catch (const Unusable& u) {
    why = u.why;
  }
  try {
    db_.close();
  } catch (const Xapian::Error&) {
  }
  db_ = Xapian::WritableDatabase();
  entries_.clear();
  docids_.clear();
  version_ = 0;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) {
    throw Error(Error::Kind::resource,
                "cannot delete unusable database " + path_ + " (" + why + "): " + ec.message());
  }
  create_empty();
  rebuilt_ = true;
  detail_ = "database " + path_ + " was unusable and was rebuilt empty: " + why;
}

void LexicalCollection::create_empty() {
  try {
    db_ =
        Xapian::WritableDatabase(path_, Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
    db_.set_metadata(kLanguageKey, language_);
    db_.commit();
  } catch (const Xapian::Error& e) {
    throw to_error(e, "creating database " + path_);
  }
  version_ = 0;
}

void LexicalCollection::load() {
  db_ = Xapian::WritableDatabase(path_, Xapian::DB_CREATE_OR_OPEN | Xapian::DB_BACKEND_GLASS);
  std::string language = db_.get_metadata(kLanguageKey);
  if (language.empty() && db_.get_doccount() == 0) {  // new
    db_.set_metadata(kLanguageKey, language_);
    db_.commit();
    version_ = 0;
    detail_ = "new database " + path_;
    return;
  }
  if (language != language_) {
    throw Unusable{"it was built for language '" + language + "', not '" + language_ + "'"};
  }
  std::string version = db_.get_metadata(kVersionKey);
  version_ = 0;
  if (!version.empty()) {
    auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), version_);
    if (ec != std::errc() || end != version.data() + version.size()) {
      throw Unusable{"its version '" + version + "' is not a number"};
    }
  }
  for (auto it = db_.postlist_begin(std::string()); it != db_.postlist_end(std::string()); ++it) {
    Xapian::docid docid = *it;
    auto stored = decode_document_data(db_.get_document(docid).get_data());
    if (!stored) throw Unusable{"document " + std::to_string(docid) + " has foreign data"};
    if (!docids_.emplace(stored->id, docid).second) {
      throw Unusable{"item " + std::to_string(stored->id) + " is held twice"};
    }
    entries_.emplace(docid, Entry{stored->id, std::move(stored->attributes)});
  }
  detail_ = "glass database " + path_ + ", " + std::to_string(entries_.size()) +
            " documents at version " + std::to_string(version_);
}

void LexicalCollection::check_open() const {
  if (dropped_) throw Error(Error::Kind::invalid, "the collection was dropped");
}

CollectionInfo LexicalCollection::info_locked() const {
  return CollectionInfo{version_, entries_.size(), detail_, rebuilt_};
}

CollectionInfo LexicalCollection::info() const {
  std::lock_guard lock(mutex_);
  return info_locked();
}

void LexicalCollection::index(const std::vector<LexicalDocument>& documents,
                              std::uint64_t version) {
  std::lock_guard lock(mutex_);
  check_open();
  try {
    for (const auto& d : documents) {
      Xapian::Document doc;
      generator_.set_document(doc);
      // No word positions: BM25 does not use them, and they are most of
      // the cost of indexing (queries are read as words, not phrases).
      generator_.index_text_without_positions(d.text);
      doc.add_boolean_term(id_term(d.id));
      doc.set_data(encode_document_data(d.id, d.attributes));
      // The id's docid is known from memory: no lookup of its Q term.
      Xapian::docid docid;
      if (auto known = docids_.find(d.id); known != docids_.end()) {
        docid = known->second;
        db_.replace_document(docid, doc);
      } else {
        docid = db_.add_document(doc);
      }
      docids_[d.id] = docid;
      entries_.insert_or_assign(docid, Entry{d.id, d.attributes});
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "indexing");
  }
  version_ = version;
}

void LexicalCollection::remove(std::span<const std::uint64_t> ids, std::uint64_t version) {
  std::lock_guard lock(mutex_);
  check_open();
  try {
    for (std::uint64_t id : ids) {
      auto it = docids_.find(id);
      if (it == docids_.end()) continue;
      db_.delete_document(id_term(id));
      entries_.erase(it->second);
      docids_.erase(it);
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "removing");
  }
  version_ = version;
}

// "memos.version" is written here and only here, in the same commit as the
// changes it covers, so a committed database never claims a version whose
// changes it lacks. Xapian may also commit on its own in between: every
// XAPIAN_FLUSH_THRESHOLD (10000) changed documents, and when the database is
// closed. Such a commit carries newer documents while "memos.version" still
// names the last save, an older version than the store's head at that point;
// memosd then finds the snapshot stale at start and rebuilds it from the
// store. So an unsaved state can cost a rebuild but never hide a change.
CollectionInfo LexicalCollection::save() {
  std::lock_guard lock(mutex_);
  check_open();
  if (path_.empty()) {
    throw Error(Error::Kind::unsupported,
                "the collection is in memory (no state_dir): there is nothing to save it to");
  }
  try {
    db_.set_metadata(kVersionKey, std::to_string(version_));
    db_.commit();
  } catch (const Xapian::Error& e) {
    throw to_error(e, "saving " + path_);
  }
  detail_ = "glass database " + path_ + ", saved at version " + std::to_string(version_);
  return info_locked();
}

void LexicalCollection::configure(Xapian::TermGenerator& generator) const {
  generator.set_stemmer(stemmer_);
  generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
  generator.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
  if (stopper_) {
    generator.set_stopper(stopper_.get());
    generator.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
  }
}

Xapian::Query LexicalCollection::parse(std::string_view query) const {
  std::string text(query);
  Xapian::QueryParser parser;
  parser.set_stemmer(stemmer_);
  parser.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
  if (stopper_) parser.set_stopper(stopper_.get());
  parser.set_default_op(Xapian::Query::OP_OR);
  try {
    return parser.parse_query(text, kParserFlags);
  } catch (const Xapian::QueryParserError&) {
    // Odd syntax: fall back to the OR of the words' stems, made the same way
    // as at indexing.
  }
  Xapian::Document doc;
  Xapian::TermGenerator generator;
  configure(generator);
  generator.set_document(doc);
  generator.index_text_without_positions(text);
  std::vector<std::string> stems, words;  // stems: "Z" terms; none without a stemmer
  for (auto it = doc.termlist_begin(); it != doc.termlist_end(); ++it) {
    std::string term = *it;
    (term.starts_with('Z') ? stems : words).push_back(std::move(term));
  }
  const auto& terms = stems.empty() ? words : stems;
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

std::vector<LexicalHit> LexicalCollection::search(std::string_view query, std::uint32_t k,
                                                  const retrieval::FilterSpec& filter) const {
  if (query.size() > kMaxQueryBytes) {
    throw Error(Error::Kind::invalid, "the query is " + std::to_string(query.size()) +
                                          " bytes; at most " + std::to_string(kMaxQueryBytes));
  }
  std::lock_guard lock(mutex_);
  check_open();
  std::vector<LexicalHit> hits;
  if (k == 0 || entries_.empty()) return hits;
  try {
    Xapian::Query q = parse(query);
    if (q.empty()) return hits;
    Xapian::Enquire enquire(db_);
    enquire.set_query(q);
    // Xapian's defaults for k2 (0), k3 (1) and min_normlen (0.5).
    enquire.set_weighting_scheme(Xapian::BM25Weight(bm25_.k1, 0, 1, bm25_.b, 0.5));
    AdmitDecider decider(entries_, filter);
    auto want = static_cast<Xapian::doccount>(std::min<std::size_t>(k, entries_.size()));
    Xapian::MSet mset = enquire.get_mset(0, want, nullptr, &decider);
    hits.reserve(mset.size());
    for (auto it = mset.begin(); it != mset.end(); ++it) {
      auto entry = entries_.find(*it);
      if (entry == entries_.end()) continue;  // cannot happen: the decider admitted it
      hits.push_back(LexicalHit{entry->second.id, it.get_weight()});
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "searching");
  }
  return hits;
}

void LexicalCollection::drop() {
  std::lock_guard lock(mutex_);
  if (dropped_) return;
  dropped_ = true;
  try {
    db_.close();
  } catch (const Xapian::Error&) {
  }
  entries_.clear();
  docids_.clear();
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) throw Error(Error::Kind::resource, "cannot delete " + path_ + ": " + ec.message());
}

}  // namespace memos::lexical
