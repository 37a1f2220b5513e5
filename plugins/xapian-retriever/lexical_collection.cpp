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

// Recent documents carry their in-memory layer's tag in this value slot, so
// the MatchDecider, which Xapian hands the document with its docid in its own
// database (not the combined docid), knows which layer's attributes to look
// at. Documents on disk never carry it: a merge takes it off.
constexpr Xapian::valueno kLayerSlot = 0;

// Only two in-memory layers exist at once (recent, and frozen while a merge
// runs), and frozen is always the generation before recent: parity tells
// them apart.
std::string layer_tag(std::uint64_t generation) {
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
// excludes. A document not in its layer's map (deleted on disk but still in
// the committed revision a search reads during a merge) is never admitted.
class LexicalCollection::AdmitDecider final : public Xapian::MatchDecider {
 public:
  AdmitDecider(const Layer& disk, const Layer& frozen, const Layer& recent, std::string frozen_tag,
               const retrieval::FilterSpec& filter)
      : disk_(disk),
        frozen_(frozen),
        recent_(recent),
        frozen_tag_(std::move(frozen_tag)),
        filter_(filter) {}
  bool operator()(const Xapian::Document& doc) const override {
    std::string tag = doc.get_value(kLayerSlot);
    const Layer& layer = tag.empty() ? disk_ : tag == frozen_tag_ ? frozen_ : recent_;
    auto it = layer.entries.find(doc.get_docid());
    return it != layer.entries.end() && retrieval::admits(it->second.attributes, filter_);
  }

 private:
  const Layer& disk_;
  const Layer& frozen_;
  const Layer& recent_;
  const std::string frozen_tag_;
  const retrieval::FilterSpec& filter_;
};

LexicalCollection::LexicalCollection(std::string path, const std::string& language, Bm25Params bm25,
                                     MergeRequest request_merge)
    : path_(std::move(path)),
      language_(canonical_language(language)),
      bm25_(bm25),
      request_merge_(std::move(request_merge)) {
  try {
    Xapian::Stem check(language_);
    stopper_ = stopper_for(language_);
    frozen_.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
    recent_.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
  } catch (const Xapian::Error& e) {
    throw to_error(e, "setting up language " + language_);
  }
  std::lock_guard lock(mutex_);
  open_or_rebuild();
}

LexicalCollection::~LexicalCollection() {
  closing_ = true;
  std::lock_guard merging(merge_mutex_);
  // Closing commits buffered deletions without touching "memos.version" (see
  // merge_locked()), so the database never claims more than it holds.
  try {
    disk_.db.close();
  } catch (const Xapian::Error&) {
  }
}

void LexicalCollection::open_or_rebuild() {
  if (path_.empty()) {
    try {
      disk_.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
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
    disk_.db.close();
  } catch (const Xapian::Error&) {
  }
  disk_.db = Xapian::WritableDatabase();
  disk_.entries.clear();
  locations_.clear();
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
    disk_.db =
        Xapian::WritableDatabase(path_, Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
    disk_.db.set_metadata(kLanguageKey, language_);
    disk_.db.commit();
  } catch (const Xapian::Error& e) {
    throw to_error(e, "creating database " + path_);
  }
  version_ = 0;
}

void LexicalCollection::load() {
  Xapian::WritableDatabase& db = disk_.db;
  db = Xapian::WritableDatabase(path_, Xapian::DB_CREATE_OR_OPEN | Xapian::DB_BACKEND_GLASS);
  std::string language = db.get_metadata(kLanguageKey);
  if (language.empty() && db.get_doccount() == 0) {  // new
    db.set_metadata(kLanguageKey, language_);
    db.commit();
    version_ = 0;
    detail_ = "new database " + path_;
    return;
  }
  if (language != language_) {
    throw Unusable{"it was built for language '" + language + "', not '" + language_ + "'"};
  }
  std::string version = db.get_metadata(kVersionKey);
  version_ = 0;
  if (!version.empty()) {
    auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), version_);
    if (ec != std::errc() || end != version.data() + version.size()) {
      throw Unusable{"its version '" + version + "' is not a number"};
    }
  }
  for (auto it = db.postlist_begin(std::string()); it != db.postlist_end(std::string()); ++it) {
    Xapian::docid docid = *it;
    auto stored = decode_document_data(db.get_document(docid).get_data());
    if (!stored) throw Unusable{"document " + std::to_string(docid) + " has foreign data"};
    if (!locations_.emplace(stored->id, Location{Where::disk, docid}).second) {
      throw Unusable{"item " + std::to_string(stored->id) + " is held twice"};
    }
    disk_.entries.emplace(docid, Entry{stored->id, std::move(stored->attributes)});
  }
  detail_ = "glass database " + path_ + ", " + std::to_string(locations_.size()) +
            " documents at version " + std::to_string(version_);
}

void LexicalCollection::check_open() const {
  if (dropped_) throw Error(Error::Kind::invalid, "the collection was dropped");
}

CollectionInfo LexicalCollection::info_locked() const {
  return CollectionInfo{version_, locations_.size(), detail_, rebuilt_};
}

CollectionInfo LexicalCollection::info() const {
  std::lock_guard lock(mutex_);
  return info_locked();
}

LexicalCollection::Layer& LexicalCollection::layer(Where where) {
  switch (where) {
    case Where::disk:
      return disk_;
    case Where::frozen:
      return frozen_;
    default:
      return recent_;
  }
}

// On disk, a deletion normally goes to the writer's buffer, which searches
// read, so BM25's statistics stop counting the document at once. While a
// merge owns the writer (or too many deletions are buffered), the document is
// only hidden: its attributes go, so the MatchDecider never admits it, and
// the next merge deletes it. Until then it still counts in the statistics of
// the committed revision searches read.
void LexicalCollection::unlink_locked(Location at) {
  Layer& from = layer(at.where);
  from.entries.erase(at.docid);
  if (at.where == Where::disk) {
    if (!in_memory() && (merging_ || buffered_deletes_ >= kMaxBufferedDeletes)) {
      pending_deletes_.push_back(at.docid);
      return;
    }
    from.db.delete_document(at.docid);
    ++buffered_deletes_;
    return;
  }
  from.db.delete_document(at.docid);
  // A frozen document's indexed copy belongs to the merge writing it, which
  // deletes what it wrote once it sees the document gone.
  if (at.where == Where::recent) recent_documents_.erase(at.docid);
}

void LexicalCollection::place_locked(std::uint64_t id, Xapian::Document& doc,
                                     retrieval::Attributes attributes) {
  // In memory there is nothing to gain from a second layer: documents go
  // straight into the one database.
  const Where target = in_memory() ? Where::disk : Where::recent;
  Layer& into = layer(target);
  if (target == Where::recent) doc.add_value(kLayerSlot, layer_tag(generation_));
  auto at = locations_.find(id);
  Xapian::docid docid;
  if (at != locations_.end() && at->second.where == target) {
    docid = at->second.docid;
    into.db.replace_document(docid, doc);  // the id's docid is known: no lookup of its Q term
  } else {
    if (at != locations_.end()) unlink_locked(at->second);
    docid = into.db.add_document(doc);
  }
  locations_.insert_or_assign(id, Location{target, docid});
  into.entries.insert_or_assign(docid, Entry{id, std::move(attributes)});
  if (target == Where::recent) recent_documents_.insert_or_assign(docid, std::move(doc));
}

bool LexicalCollection::wants_merge_locked() const {
  if (in_memory() || merge_requested_ || !request_merge_) return false;
  return recent_.entries.size() >= kMergeDocuments ||
         buffered_deletes_ + pending_deletes_.size() >= kMergeDeletes;
}

void LexicalCollection::index(const std::vector<LexicalDocument>& documents,
                              std::uint64_t version) {
  // The terms, the costly part, before taking the lock: searches need not
  // wait for them. The stemmer keeps state while it stems, so this call has
  // its own; one per call, not per document.
  std::vector<Xapian::Document> made;
  made.reserve(documents.size());
  try {
    Xapian::Stem stemmer(language_);
    Xapian::TermGenerator generator;
    configure(generator, stemmer);
    for (const auto& d : documents) {
      Xapian::Document& doc = made.emplace_back();
      generator.set_document(doc);
      // No word positions: BM25 does not use them, and they are most of
      // the cost of indexing (queries are read as words, not phrases).
      generator.index_text_without_positions(d.text);
      doc.add_boolean_term(id_term(d.id));
      doc.set_data(encode_document_data(d.id, d.attributes));
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "indexing");
  }
  // A few documents per hold of the lock, so that a search waits for those
  // rather than for a whole batch of hundreds. A search may see part of a
  // batch: each document's change is whole, and memosd's indexer runs
  // behind its writes anyway. The version is recorded with the last part.
  bool ask = false;
  std::size_t first = 0;
  do {
    std::size_t end = std::min(documents.size(), first + kDocumentsPerLock);
    std::lock_guard lock(mutex_);
    check_open();
    try {
      for (std::size_t i = first; i < end; ++i) {
        place_locked(documents[i].id, made[i], documents[i].attributes);
      }
    } catch (const Xapian::Error& e) {
      throw to_error(e, "indexing");
    }
    first = end;
    if (first == documents.size()) {
      version_ = version;
      ask = wants_merge_locked();
      if (ask) merge_requested_ = true;
    }
  } while (first < documents.size());
  if (ask) request_merge_();
}

void LexicalCollection::remove(std::span<const std::uint64_t> ids, std::uint64_t version) {
  bool ask = false;
  {
    std::lock_guard lock(mutex_);
    check_open();
    try {
      for (std::uint64_t id : ids) {
        auto it = locations_.find(id);
        if (it == locations_.end()) continue;
        unlink_locked(it->second);
        locations_.erase(it);
      }
    } catch (const Xapian::Error& e) {
      throw to_error(e, "removing");
    }
    version_ = version;
    ask = wants_merge_locked();
    if (ask) merge_requested_ = true;
  }
  if (ask) request_merge_();
}

void LexicalCollection::merge() {
  if (in_memory()) return;
  std::lock_guard merging(merge_mutex_);
  merge_locked(false);
}

// "memos.version" is written by save() and only there, in the same commit as
// every change it covers, so a committed database never claims a version
// whose changes it lacks. Other commits happen in between: a merge's, the
// commit of buffered deletions a merge starts with, Xapian's own (at close).
// Such a commit carries newer changes (perhaps only some: the deletion half
// of a replacement whose new text is still in memory) while "memos.version"
// still names the last save, an older version than the store's head at that
// point; memosd then finds the snapshot stale at start and rebuilds it from
// the store. So an unsaved state can cost a rebuild but never hide a change.
//
// What a save commits is exactly the state at the version it records: the
// merge takes the recent documents, the pending deletions and the version
// together under the lock, and the writer's buffer (deletions up to then) is
// committed first; changes after that go to a new recent layer and to
// pending deletions that wait for the next commit. A document replaced or
// removed while it is being written keeps its older copy in this commit,
// which is right for the version recorded, and is deleted afterwards.
std::uint64_t LexicalCollection::merge_locked(bool save) {
  std::unordered_map<Xapian::docid, Xapian::Document> documents;
  std::vector<Xapian::docid> deletes;
  std::size_t buffered = 0;
  std::uint64_t version = 0;
  {
    std::lock_guard lock(mutex_);
    check_open();
    version = version_;
    if (!save && recent_.entries.empty() && buffered_deletes_ == 0 && pending_deletes_.empty()) {
      merge_requested_ = false;
      return version;
    }
    // From here until the end the writer is this thread's alone: searches
    // read reader_ (its last commit) and the documents being merged stay
    // searchable in frozen_.
    try {
      if (reader_.size() == 0) {
        reader_ = Xapian::Database(path_, Xapian::DB_BACKEND_GLASS);
      } else {
        reader_.reopen();
      }
    } catch (const Xapian::Error& e) {
      throw to_error(e, "opening " + path_ + " for searches during a merge");
    }
    std::swap(frozen_, recent_);
    recent_.entries.clear();
    recent_.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
    // This thread alone uses the documents now (their handles are not
    // thread-safe): no copy is left behind.
    documents = std::move(recent_documents_);
    recent_documents_.clear();
    ++generation_;
    for (auto& [id, at] : locations_) {
      if (at.where == Where::recent) at.where = Where::frozen;
    }
    deletes = std::move(pending_deletes_);
    pending_deletes_.clear();
    buffered = buffered_deletes_;
    buffered_deletes_ = 0;
    merge_requested_ = false;
    merging_ = true;
  }
  Xapian::WritableDatabase& writer = disk_.db;
  std::vector<std::pair<Xapian::docid, Xapian::docid>> written;  // frozen docid, disk docid
  std::string failure;
  Error::Kind failure_kind = Error::Kind::resource;
  bool in_transaction = false;
  try {
    // A reader stays valid while the writer writes one new revision, not two:
    // commit what was buffered and let searches read that, then write the
    // rest as one transaction (which Xapian never commits on its own).
    if (buffered > 0) {
      writer.commit();
      std::lock_guard lock(mutex_);
      reader_.reopen();
    }
    writer.begin_transaction();
    in_transaction = true;
    for (Xapian::docid d : deletes) writer.delete_document(d);
    // In the order they were indexed, so that documents tied in score keep
    // their order (Xapian breaks ties by docid).
    std::vector<Xapian::docid> order;
    order.reserve(documents.size());
    for (const auto& [frozen_docid, doc] : documents) order.push_back(frozen_docid);
    std::sort(order.begin(), order.end());
    written.reserve(documents.size());
    for (Xapian::docid frozen_docid : order) {
      Xapian::Document& doc = documents.at(frozen_docid);
      if (written.size() % kCloseCheckEvery == 0 && closing_) {
        throw Error(Error::Kind::invalid, "the collection is closing");
      }
      doc.remove_value(kLayerSlot);
      written.emplace_back(frozen_docid, writer.add_document(doc));
    }
    if (save) writer.set_metadata(kVersionKey, std::to_string(version));
    writer.commit_transaction();
    in_transaction = false;
  } catch (const Xapian::Error& e) {
    failure = (save ? "saving " : "merging into ") + path_ + ": " + describe(e);
  } catch (const Error& e) {
    failure = e.what();
    failure_kind = e.kind();
  }
  if (in_transaction) {
    try {
      writer.cancel_transaction();
    } catch (const Xapian::Error&) {
    }
  }

  std::lock_guard lock(mutex_);
  merging_ = false;
  try {
    if (failure.empty()) {
      for (auto [frozen_docid, disk_docid] : written) {
        auto entry = frozen_.entries.find(frozen_docid);
        if (entry == frozen_.entries.end()) {
          // Replaced or removed while it was written.
          writer.delete_document(disk_docid);
          ++buffered_deletes_;
          continue;
        }
        locations_[entry->second.id] = Location{Where::disk, disk_docid};
        disk_.entries.emplace(disk_docid, std::move(entry->second));
      }
    } else {
      // Back to the recent layer, to be merged again; deletions wait again.
      pending_deletes_.insert(pending_deletes_.begin(), deletes.begin(), deletes.end());
      for (auto& [frozen_docid, entry] : frozen_.entries) {
        Xapian::Document& doc = documents.at(frozen_docid);
        doc.add_value(kLayerSlot, layer_tag(generation_));
        Xapian::docid docid = recent_.db.add_document(doc);
        locations_[entry.id] = Location{Where::recent, docid};
        recent_.entries.emplace(docid, std::move(entry));
        recent_documents_.emplace(docid, std::move(doc));
      }
    }
    // Deletions that came while the writer was busy, into its buffer now.
    std::size_t room = kMaxBufferedDeletes - std::min(kMaxBufferedDeletes, buffered_deletes_);
    std::size_t now = std::min(room, pending_deletes_.size());
    for (std::size_t i = 0; i < now; ++i) writer.delete_document(pending_deletes_[i]);
    pending_deletes_.erase(pending_deletes_.begin(), pending_deletes_.begin() + now);
    buffered_deletes_ += now;
  } catch (const Xapian::Error& e) {
    if (failure.empty()) failure = "after merging into " + path_ + ": " + describe(e);
  }
  frozen_.entries.clear();
  frozen_.db = Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY);
  documents.clear();  // under the lock: handles moved back to recent_ may share them
  if (!failure.empty()) throw Error(failure_kind, failure);
  if (save) detail_ = "glass database " + path_ + ", saved at version " + std::to_string(version);
  return version;
}

CollectionInfo LexicalCollection::save() {
  if (in_memory()) {
    std::lock_guard lock(mutex_);
    check_open();
    throw Error(Error::Kind::unsupported,
                "the collection is in memory (no state_dir): there is nothing to save it to");
  }
  std::lock_guard merging(merge_mutex_);
  std::uint64_t version = merge_locked(true);
  std::lock_guard lock(mutex_);
  CollectionInfo info = info_locked();
  info.version = version;  // what the snapshot covers; later changes are not in it
  return info;
}

void LexicalCollection::configure(Xapian::TermGenerator& generator,
                                  const Xapian::Stem& stemmer) const {
  generator.set_stemmer(stemmer);
  generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
  generator.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
  if (stopper_) {
    generator.set_stopper(stopper_.get());
    generator.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
  }
}

// Runs without the collection's lock, so it has its own stemmer (a stemmer
// keeps state while it stems).
Xapian::Query LexicalCollection::parse(std::string_view query) const {
  std::string text(query);
  Xapian::Stem stemmer(language_);
  Xapian::QueryParser parser;
  parser.set_stemmer(stemmer);
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
  configure(generator, stemmer);
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
  std::vector<LexicalHit> hits;
  if (k == 0) {
    std::lock_guard lock(mutex_);
    check_open();
    return hits;
  }
  try {
    Xapian::Query q = parse(query);  // without the lock
    std::lock_guard lock(mutex_);
    check_open();
    if (locations_.empty() || q.empty()) return hits;
    // One database over the layers, so BM25's statistics (document count,
    // average length, term frequencies) are those of all of them. Its docids
    // interleave theirs: combined = (docid - 1) * 3 + layer + 1.
    Xapian::Database all(merging_ ? reader_ : Xapian::Database(disk_.db));
    all.add_database(frozen_.db);
    all.add_database(recent_.db);
    const Layer* layers[] = {&disk_, &frozen_, &recent_};
    constexpr Xapian::docid kLayers = std::size(layers);
    Xapian::Enquire enquire(all);
    enquire.set_query(q);
    // Xapian's defaults for k2 (0), k3 (1) and min_normlen (0.5).
    enquire.set_weighting_scheme(Xapian::BM25Weight(bm25_.k1, 0, 1, bm25_.b, 0.5));
    AdmitDecider decider(disk_, frozen_, recent_, layer_tag(generation_ - 1), filter);
    auto want = static_cast<Xapian::doccount>(std::min<std::size_t>(k, locations_.size()));
    Xapian::MSet mset = enquire.get_mset(0, want, nullptr, &decider);
    hits.reserve(mset.size());
    for (auto it = mset.begin(); it != mset.end(); ++it) {
      const Layer& layer = *layers[(*it - 1) % kLayers];
      auto entry = layer.entries.find((*it - 1) / kLayers + 1);
      if (entry == layer.entries.end()) continue;  // cannot happen: the decider admitted it
      hits.push_back(LexicalHit{entry->second.id, it.get_weight()});
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "searching");
  }
  return hits;
}

void LexicalCollection::drop() {
  closing_ = true;  // a merge in progress gives up
  std::lock_guard merging(merge_mutex_);
  std::lock_guard lock(mutex_);
  if (dropped_) return;
  dropped_ = true;
  try {
    disk_.db.close();
  } catch (const Xapian::Error&) {
  }
  for (Layer* l : {&disk_, &frozen_, &recent_}) l->entries.clear();
  recent_documents_.clear();
  locations_.clear();
  pending_deletes_.clear();
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) throw Error(Error::Kind::resource, "cannot delete " + path_ + ": " + ec.message());
}

}  // namespace memos::lexical
