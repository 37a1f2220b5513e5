// lexical_collection.h — one cube's lexical (BM25) index: a Xapian database
// plus the filter attributes of every document it holds.
//
// Each document is indexed with a TermGenerator (the collection's stemmer,
// stop words skipped entirely, STEM_SOME) and carries:
//   - the boolean term "Q<id>", its unique key (Xapian docids are 32-bit, item
//     ids 64-bit), so replace and delete go by term;
//   - its id and retrieval::Attributes, serialized in the document data, so
//     that reopening a database restores them.
// The attributes are also kept in memory, keyed by docid, for the
// MatchDecider that applies retrieval::admits() inside the match.
//
// Changes are buffered in the WritableDatabase and only committed by save(),
// which also records the version they cover (see save() in the .cpp for why an
// automatic flush in between is safe). Searches see unsaved changes.
//
// Thread-safe: Xapian objects are not, so one mutex guards every use of the
// database; searches on one collection run one at a time.
//
// Errors: no Xapian::Error leaves this class. Failures throw lexical::Error,
// which says what kind of failure it is.
#pragma once

#include <xapian.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plugins/retriever-common/filter.h"

namespace memos::lexical {

class Error : public std::runtime_error {
 public:
  enum class Kind { invalid, unsupported, resource, internal };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct Bm25Params {
  double k1 = 1.2;
  double b = 0.75;
};

struct LexicalDocument {
  std::uint64_t id = 0;
  std::string text;
  retrieval::Attributes attributes;
};

struct LexicalHit {
  std::uint64_t id = 0;
  double score = 0;  // BM25 weight
};

struct CollectionInfo {
  std::uint64_t version = 0;    // the cube version the contents cover
  std::uint64_t documents = 0;  // documents held
  std::string detail;
  bool rebuilt = false;  // the database on disk was unusable and replaced by an empty one
};

// Xapian's own name for `language` ("en" -> "english"; "none", or "": no
// stemming; the plugin maps "" to its default_language before calling this).
// Throws Error(invalid) naming the language and listing the known ones.
std::string canonical_language(const std::string& language);

// Queries longer than this are refused (Error(invalid)).
inline constexpr std::size_t kMaxQueryBytes = 64 * 1024;

class LexicalCollection {
 public:
  // Opens the Glass database at `path`, or creates it; an empty path keeps an
  // in-memory database (save() then fails). A database that cannot be used
  // (corrupt, locked, made for another language, foreign data) is deleted and
  // replaced by an empty one at version 0: that is not an error, info().detail
  // says why. Throws Error for an unknown language (invalid) or when no
  // database can be created at all (resource).
  LexicalCollection(std::string path, const std::string& language, Bm25Params bm25);
  ~LexicalCollection();
  LexicalCollection(const LexicalCollection&) = delete;
  LexicalCollection& operator=(const LexicalCollection&) = delete;

  CollectionInfo info() const;
  const std::string& language() const { return language_; }
  bool in_memory() const { return path_.empty(); }

  // Adds or replaces documents (by id) and records `version`.
  void index(const std::vector<LexicalDocument>& documents, std::uint64_t version);
  // Removes documents; ids not held are ignored. Records `version`.
  void remove(std::span<const std::uint64_t> ids, std::uint64_t version);
  // Commits every change and the version it covers. Error(unsupported) in memory.
  CollectionInfo save();
  // The k best documents for `query` (natural language, OR of its terms)
  // among those `filter` admits, best first. An empty or all-stop-word query,
  // or k == 0, gives no hits.
  std::vector<LexicalHit> search(std::string_view query, std::uint32_t k,
                                 const retrieval::FilterSpec& filter) const;
  // Closes the database and deletes its folder; every later call fails.
  void drop();

 private:
  struct Entry {
    std::uint64_t id;
    retrieval::Attributes attributes;
  };
  class AdmitDecider;

  void open_or_rebuild();
  void load();
  void create_empty();
  // Stemming, stop words and CJK n-grams as the collection's language
  // wants: documents and fallback queries are split into terms alike.
  void configure(Xapian::TermGenerator& generator) const;
  Xapian::Query parse(std::string_view query) const;
  void check_open() const;
  CollectionInfo info_locked() const;

  std::string path_;
  std::string language_;
  Bm25Params bm25_;
  Xapian::Stem stemmer_;
  std::unique_ptr<Xapian::SimpleStopper> stopper_;  // null: no stop words

  mutable std::mutex mutex_;  // guards everything below
  Xapian::WritableDatabase db_;
  Xapian::TermGenerator generator_;
  bool dropped_ = false;
  std::uint64_t version_ = 0;
  std::string detail_;
  bool rebuilt_ = false;
  std::unordered_map<Xapian::docid, Entry> entries_;
  std::unordered_map<std::uint64_t, Xapian::docid> docids_;
};

}  // namespace memos::lexical
