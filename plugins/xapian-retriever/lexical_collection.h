// lexical_collection.h — one cube's lexical (BM25) index: Xapian databases
// plus the filter attributes of every document they hold.
//
// Each document is indexed with a TermGenerator (the collection's stemmer,
// stop words skipped entirely, STEM_SOME) and carries:
//   - the boolean term "Q<id>", its unique key (Xapian docids are 32-bit, item
//     ids 64-bit);
//   - its id and retrieval::Attributes, serialized in the document data, so
//     that reopening a database restores them.
// The attributes are also kept in memory, keyed by docid, for the
// MatchDecider that applies retrieval::admits() inside the match.
//
// Layers (with a path; in memory there is only the first): new and replaced
// documents go to a small in-memory database of recent documents, so the
// write path never pays for Glass; merge() moves them into the on-disk Glass
// database and commits there. A search runs over one Xapian::Database
// combining the layers, so BM25 sees the statistics of all of them as if they
// were one. Every id lives in exactly one layer: replacing or removing a
// document deletes its older copy wherever it is (on disk: a buffered delete,
// or, while a merge owns the writer, hidden from searches and deleted by the
// merge). While a merge writes, searches read the on-disk database at its last
// commit, plus the documents being merged still in memory, so each document
// is seen once. The .cpp explains the details.
//
// save() merges everything and records the version it covers in the same
// commit (see merge_locked() for why commits in between are safe).
// export_to() and import_file() move a saved database between nodes as one
// file (transfer_file.h).
//
// Thread-safe: Xapian objects are not, so one mutex guards every use of the
// layers; searches on one collection run one at a time, but never wait for a
// commit. Merges (and saves) run one at a time; a merge holds the mutex only
// briefly at its start and end.
//
// Errors: no Xapian::Error leaves this class. Failures throw lexical::Error,
// which says what kind of failure it is.
#pragma once

#include <xapian.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // Called when enough recent documents or deletions have piled up that
  // merge() is worth calling soon, from another thread (it is called from
  // index() and remove(), outside the collection's lock; at most once until
  // the next merge starts).
  using MergeRequest = std::function<void()>;

  // Opens the Glass database at `path`, or creates it; an empty path keeps an
  // in-memory database (save() then fails, merge() does nothing). A database
  // that cannot be used (corrupt, locked, made for another language or
  // another collection, foreign data) is deleted and replaced by an empty
  // one at version 0: that is not an error, info().detail says why. Throws
  // Error for an unknown language (invalid) or when no database can be
  // created at all (resource). `collection`: the id the database records
  // (kCollectionKey) when it is created and saved, and must record if it
  // records one; none (tests): neither.
  LexicalCollection(std::string path, const std::string& language, Bm25Params bm25,
                    MergeRequest request_merge = {},
                    std::optional<std::uint64_t> collection = std::nullopt);
  // Waits for a merge in progress to give up; recent documents not merged
  // are lost (the version saved does not cover them).
  ~LexicalCollection();
  LexicalCollection(const LexicalCollection&) = delete;
  LexicalCollection& operator=(const LexicalCollection&) = delete;

  CollectionInfo info() const;
  const std::string& language() const { return language_; }
  bool in_memory() const { return path_.empty(); }

  // Adds or replaces documents (by id) and records `version`. The terms are
  // made before taking the lock. Error(invalid) once dropped; resource or
  // internal from Xapian.
  void index(const std::vector<LexicalDocument>& documents, std::uint64_t version);
  // Removes documents; ids not held are ignored. Records `version`. Errors as
  // index().
  void remove(std::span<const std::uint64_t> ids, std::uint64_t version);
  // Moves the recent documents to disk and commits (without touching the
  // saved version); searches go on meanwhile. Nothing to do in memory.
  // Error(resource) when the disk fails: the documents stay searchable in
  // memory and a later merge tries again; Error(invalid) once dropped.
  void merge();
  // Merges everything and commits it with the version it covers, and answers
  // that version. Error(unsupported) in memory, Error(resource) on disk
  // failure (the snapshot on disk keeps its older version), invalid once
  // dropped.
  CollectionInfo save();
  // Saves as save() does, then, before any other commit can happen, writes
  // that commit as a transfer file at `file` (write_transfer_file()), and
  // answers the version and the documents the file holds. Errors as save(),
  // and Error(resource) when the file cannot be written (`file` is then as
  // it was).
  CollectionInfo export_to(const std::string& file);
  // Makes the transfer file `file` the database at `path` (a folder) of
  // `collection`, which must not be open: checks it as opening checks a
  // database (its checksum, that Xapian opens it, its version, the
  // collection it records if it records one, its language, each document's
  // data), compacts it into <path>.import, fsyncs that, and swaps it in for
  // any database at `path`. Answers its version and documents; the next
  // collection opened at `path` with that language loads it. Error(invalid)
  // when the file is refused (nothing changed), Error(resource) when the
  // new database cannot be written or swapped in (the old one may then be
  // gone: a collection opens empty, and memosd rebuilds it).
  static CollectionInfo import_file(const std::string& file, const std::string& path,
                                    std::uint64_t collection);
  // What an import a crash cut short left beside the database at `path`
  // (import_file()), dealt with as the collection opens: <path>.import goes
  // (never swapped in), and <path>.old goes once <path> is there, or comes
  // back as <path> when the crash fell between the two renames (memosd then
  // catches it up from its version). No errors: what cannot be removed stays
  // for the next import.
  static void finish_interrupted_import(const std::string& path);
  // The k best documents for `query` (natural language, OR of its terms)
  // among those `filter` admits, best first. An empty or all-stop-word query,
  // or k == 0, gives no hits. Error(invalid) for a query over kMaxQueryBytes
  // or once dropped; resource or internal from Xapian.
  std::vector<LexicalHit> search(std::string_view query, std::uint32_t k,
                                 const retrieval::FilterSpec& filter) const;
  // Closes the database and deletes its folder; every later call fails.
  // Waits for a merge in progress to give up. Error(resource) when the folder
  // cannot be deleted.
  void drop();

 private:
  struct Entry {
    std::uint64_t id;
    retrieval::Attributes attributes;
  };
  // One database of the combination searches use, with the attributes of its
  // documents by docid (docids are per database).
  struct Layer {
    Xapian::WritableDatabase db;
    std::unordered_map<Xapian::docid, Entry> entries;
  };
  enum class Where : std::uint8_t { disk, frozen, recent };
  struct Location {
    Where where;
    Xapian::docid docid;
  };
  class AdmitDecider;

  void open_or_rebuild();
  void load();
  void create_empty();
  // Stemming, stop words and CJK n-grams as the collection's language
  // wants: documents and fallback queries are split into terms alike.
  void configure(Xapian::TermGenerator& generator, const Xapian::Stem& stemmer) const;
  Xapian::Query parse(std::string_view query) const;
  void check_open() const;
  // Sets kCollectionKey in `db` (not committed), when the id is known.
  void record_collection(Xapian::WritableDatabase& db) const;
  CollectionInfo info_locked() const;
  Layer& layer(Where where);
  // Deletes the document at `at` from its layer (see the .cpp for disk).
  void unlink_locked(Location at);
  void place_locked(std::uint64_t id, Xapian::Document& doc, retrieval::Attributes attributes);
  bool wants_merge_locked() const;
  // The merge, with merge_mutex_ held; a save also records the version it
  // covers in the same commit. Answers that version.
  std::uint64_t merge_locked(bool save);

  const std::string path_;
  const std::optional<std::uint64_t> collection_;
  const std::string language_;
  const Bm25Params bm25_;
  std::unique_ptr<Xapian::SimpleStopper> stopper_;  // null: no stop words; read-only
  const MergeRequest request_merge_;

  std::mutex merge_mutex_;            // one merge or save at a time; taken before mutex_
  std::atomic<bool> closing_{false};  // a merge in progress should give up
  mutable std::mutex mutex_;          // guards everything below
  // The on-disk database (in memory without a path). Used under mutex_,
  // except by a merge while merging_ is set: then searches use reader_.
  Layer disk_;
  Xapian::Database reader_;  // disk_ at its last commit, for searches while merging
  Layer frozen_;             // recent documents a merge is writing to disk
  Layer recent_;             // new and replaced documents since the last merge
  // The documents of recent_ as indexed, what a merge writes (it takes them).
  std::unordered_map<Xapian::docid, Xapian::Document> recent_documents_;
  std::unordered_map<std::uint64_t, Location> locations_;  // every id held
  std::uint64_t generation_ = 0;                           // of recent_: its documents' layer tag
  bool merging_ = false;
  bool merge_requested_ = false;
  std::size_t buffered_deletes_ = 0;            // in disk_'s writer, uncommitted
  std::vector<Xapian::docid> pending_deletes_;  // hidden on disk, to delete there
  bool dropped_ = false;
  std::uint64_t version_ = 0;
  std::string detail_;
  bool rebuilt_ = false;
};

}  // namespace memos::lexical
