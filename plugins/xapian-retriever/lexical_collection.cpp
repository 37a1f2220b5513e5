// lexical_collection.cpp — LexicalCollection's life and its changes:
// opening (or rebuilding) the database, the layers documents live in, index
// and remove. Merging and saving are in lexical_merge.cpp, searching in
// lexical_search.cpp.
#include "plugins/xapian-retriever/lexical_collection.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "plugins/xapian-retriever/document_data.h"
#include "plugins/xapian-retriever/lexical_internal.h"
#include "plugins/xapian-retriever/stop_words.h"

namespace memos::lexical {

using namespace detail;

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

LexicalCollection::LexicalCollection(std::string path, const std::string& language, Bm25Params bm25,
                                     MergeRequest request_merge,
                                     std::optional<std::uint64_t> collection)
    : path_(std::move(path)),
      collection_(collection),
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
  finish_interrupted_import(path_);
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
    record_collection(disk_.db);
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
    record_collection(db);
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
    auto parsed = parse_number(version);
    if (!parsed) throw Unusable{"its version '" + version + "' is not a number"};
    version_ = *parsed;
  }
  // Absent in databases of older plugins: those are taken as they are.
  std::string recorded = db.get_metadata(kCollectionKey);
  if (collection_ && !recorded.empty() && parse_number(recorded) != collection_) {
    throw Unusable{"it holds collection '" + recorded + "', not " + std::to_string(*collection_)};
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

void LexicalCollection::record_collection(Xapian::WritableDatabase& db) const {
  if (collection_) db.set_metadata(kCollectionKey, std::to_string(*collection_));
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
