// lexical_merge.cpp — LexicalCollection's merges: the in-memory layer of
// recent documents moved to the database on disk in the background, and
// save(), the merge that records the version it covers.
#include <filesystem>
#include <utility>

#include "plugins/xapian-retriever/document_data.h"
#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/lexical_internal.h"

namespace memos::lexical {

using namespace detail;

// "memos.version" is written by save() and only there, in the same commit as
// every change it covers, so a committed database never claims a version
// whose changes it lacks. Other commits happen in between: a merge's, the
// commit of buffered deletions a merge starts with, Xapian's own (at close).
// Such a commit carries newer changes (perhaps only some: the deletion half
// of a replacement whose new text is still in memory) while "memos.version"
// still names the last save, an older version than the store's head at that
// point; memosd then finds the snapshot behind at start and sends every
// item changed after that version again (an index replaces by id, a removal
// of an absent id is ignored), which converges on the head whatever part of
// those changes the commit held. So an unsaved state costs a catch-up but
// never hides a change.
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
    if (save) {
      writer.set_metadata(kVersionKey, std::to_string(version));
      record_collection(writer);  // databases of older plugins get it here
    }
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

}  // namespace memos::lexical
