#include "plugins/faiss-retriever/dense_collection.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <system_error>

#include "plugins/faiss-retriever/snapshot_file.h"

namespace memos::faiss_retriever {
namespace {

// memosd runs calls side by side on its worker threads; OpenMP threads
// inside one search would only compete with them. The setting is per
// thread, so each entry point that reaches FAISS sets it. Graph insertions
// (HnswInserter) name their team size, merge_threads, themselves: they run
// under the exclusive lock, where each thread they get shortens the wait.
void one_openmp_thread() {
  omp_set_num_threads(1);
}

}  // namespace

DenseCollection::DenseCollection(std::uint64_t id, std::uint32_t dimension,
                                 const IndexSettings& settings)
    : id_(id),
      dimension_(dimension),
      settings_(settings),
      index_(std::make_unique<DenseIndex>(dimension, IndexKind::exact, settings)) {}

DenseCollection::~DenseCollection() {
  stop();
}

void DenseCollection::stop() {
  {
    std::unique_lock lock(mutex_);
    stopping_.store(true);
  }
  fresh_changed_.notify_all();
  // Neither is started once stopping_ is set (under the lock), so these
  // objects are no longer written by anyone else.
  if (merger_.joinable()) merger_.join();
  if (worker_.joinable()) worker_.join();
}

std::unique_ptr<DenseCollection> DenseCollection::open(std::uint64_t id, std::uint32_t dimension,
                                                       const IndexSettings& settings,
                                                       const std::string& state_dir,
                                                       std::string* detail,
                                                       std::uint64_t expected_documents) {
  auto collection = std::make_unique<DenseCollection>(id, dimension, settings);
  if (expected_documents > settings.hnsw_threshold) {
    collection->index_ = std::make_unique<DenseIndex>(dimension, IndexKind::hnsw, settings);
  }
  if (state_dir.empty()) {
    *detail = "no state_dir: starts empty";
    return collection;
  }
  Snapshot snapshot;
  std::string why = read_snapshot(state_dir, id, dimension, &snapshot);
  if (!why.empty()) {
    *detail = why;
    return collection;
  }
  std::uint64_t version = snapshot.version;
  auto index = DenseIndex::from_snapshot(std::move(snapshot), settings, &why);
  if (!index) {
    *detail = why;
    return collection;
  }
  *detail = "loaded snapshot";
  std::unique_lock lock(collection->mutex_);
  collection->index_ = std::move(index);
  collection->version_ = version;
  // Settings may have changed since the save (a lower threshold or ratio).
  collection->after_change_locked();
  return collection;
}

std::string DenseCollection::check_vector(std::span<const float> vector) const {
  if (vector.size() != dimension_) {
    return "vector has " + std::to_string(vector.size()) + " values; collection " +
           std::to_string(id_) + " has dimension " + std::to_string(dimension_);
  }
  // NaN or infinity would poison every inner product it meets (and HNSW's
  // graph), so refuse them at the door, in documents and queries alike.
  for (std::size_t i = 0; i < vector.size(); ++i) {
    if (!std::isfinite(vector[i])) return "vector value " + std::to_string(i) + " is not finite";
  }
  return "";
}

std::string DenseCollection::index(std::vector<DocumentChange> changes, std::uint64_t version,
                                   bool no_wait) {
  // Check everything before changing anything: a request applies whole.
  for (const auto& c : changes) {
    if (c.attributes_only) continue;
    std::string why = check_vector(c.vector);
    if (!why.empty()) return "document " + std::to_string(c.id) + ": " + why;
  }
  one_openmp_thread();
  std::unique_lock lock(mutex_);
  if (!no_wait) wait_for_room(lock);
  // Runs of full documents go to FAISS in one add (HNSW batches well);
  // attribute-only changes apply in request order between them.
  std::size_t i = 0;
  while (i < changes.size()) {
    if (changes[i].attributes_only) {
      if (rebuilding_) touched_.insert(changes[i].id);
      index_->set_attributes(changes[i].id, std::move(changes[i].attributes));
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < changes.size() && !changes[end].attributes_only) ++end;
    std::vector<std::uint64_t> ids;
    std::vector<float> vectors;
    std::vector<retrieval::Attributes> attributes;
    ids.reserve(end - i);
    vectors.reserve((end - i) * dimension_);
    attributes.reserve(end - i);
    for (; i < end; ++i) {
      ids.push_back(changes[i].id);
      vectors.insert(vectors.end(), changes[i].vector.begin(), changes[i].vector.end());
      attributes.push_back(std::move(changes[i].attributes));
      if (rebuilding_) touched_.insert(changes[i].id);
    }
    index_->upsert(ids, vectors, std::move(attributes));
  }
  version_ = std::max(version_, version);
  after_change_locked();
  return "";
}

void DenseCollection::remove(std::span<const std::uint64_t> ids, std::uint64_t version) {
  std::unique_lock lock(mutex_);
  for (auto id : ids) {
    if (index_->remove(id) && rebuilding_) touched_.insert(id);
  }
  version_ = std::max(version_, version);
  after_change_locked();
}

std::vector<DenseHit> DenseCollection::search(std::span<const float> query, std::size_t k,
                                              const retrieval::FilterSpec& filter) const {
  one_openmp_thread();
  std::shared_lock lock(mutex_);
  return index_->search(query.data(), k, filter);
}

std::string DenseCollection::save(const std::string& state_dir, CollectionState* state) {
  std::lock_guard save_lock(save_mutex_);
  return save_locked(state_dir, state);
}

std::string DenseCollection::export_to(const std::string& state_dir, const std::string& path,
                                       CollectionState* state) {
  // One hold for both: a save between them would rename another file over
  // the snapshot, and the export would then hold a state *state does not
  // describe.
  std::lock_guard save_lock(save_mutex_);
  std::string why = save_locked(state_dir, state);
  if (!why.empty()) return why;
  return export_snapshot_file(state_dir, id_, path);
}

bool DenseCollection::dropped() const {
  std::lock_guard save_lock(save_mutex_);
  return dropped_;
}

std::string DenseCollection::save_locked(const std::string& state_dir, CollectionState* state) {
  if (dropped_) return "collection " + std::to_string(id_) + " was dropped";
  // Removed again on any failure (its destructor), after the lock below.
  DurableFile file;
  std::string why = file.create(state_dir, snapshot_path(state_dir, id_));
  if (!why.empty()) return why;
  {
    // Straight from the index to the page cache under the shared lock:
    // searches go on, writers wait about as long as a copy of the index
    // would take, and the file matches the version it records.
    std::shared_lock lock(mutex_);
    SnapshotView view = index_->snapshot_view();
    view.collection = id_;
    view.version = version_;
    *state = {version_, index_->documents(), describe_locked()};
    why = write_snapshot(view, file);
  }
  if (!why.empty()) return why;
  // fsync, rename and the folder's fsync: the slow part, without the lock.
  return file.commit();
}

void DenseCollection::mark_dropped() {
  {
    std::lock_guard save_lock(save_mutex_);
    dropped_ = true;
  }
  stop();
}

CollectionState DenseCollection::state() const {
  std::shared_lock lock(mutex_);
  return {version_, index_->documents(), describe_locked()};
}

CollectionStats DenseCollection::stats() const {
  std::shared_lock lock(mutex_);
  CollectionStats s;
  s.kind = index_->kind();
  s.documents = index_->documents();
  s.tombstones = index_->tombstones();
  s.fresh = index_->fresh_documents();
  s.version = version_;
  s.rebuilding = rebuilding_;
  s.rebuilds = rebuilds_;
  s.rebuild_error = rebuild_error_;
  s.merge_error = merge_error_;
  return s;
}

void DenseCollection::wait_for_rebuild() const {
  std::unique_lock lock(mutex_);
  rebuilt_.wait(lock, [&] { return !rebuilding_; });
}

void DenseCollection::wait_for_merge() {
  std::unique_lock lock(mutex_);
  flush_requested_ = true;
  fresh_changed_.notify_all();
  fresh_changed_.wait(lock, [&] {
    return stopping_.load() || index_->fresh_documents() == 0 || !merger_started_ ||
           !merge_error_.empty();
  });
  flush_requested_ = false;
}

std::string DenseCollection::describe_locked() const {
  std::string d = std::string(kind_name(index_->kind())) + ", " +
                  std::to_string(index_->documents()) + " documents, " +
                  std::to_string(index_->tombstones()) + " tombstones";
  if (index_->fresh_documents() > 0) {
    d += ", " + std::to_string(index_->fresh_documents()) + " not in the graph yet";
  }
  if (rebuilding_) d += ", rebuilding";
  if (!rebuild_error_.empty()) d += "; last rebuild failed: " + rebuild_error_;
  if (!merge_error_.empty()) d += "; last merge failed: " + merge_error_;
  return d;
}

void DenseCollection::after_change_locked() {
  if (stopping_.load()) return;
  merge_later_locked();
  if (rebuilding_) return;
  if (auto kind = index_->rebuild_target()) start_rebuild_locked(*kind);
}

void DenseCollection::merge_later_locked() {
  if (index_->fresh_documents() == 0 || stopping_.load()) return;
  if (settings_.fresh_limit > 0 && start_merger_locked()) {
    fresh_changed_.notify_all();
    return;
  }
  // No buffer wanted, or no thread to empty it: insert here, as a request
  // did before the buffer. On failure the documents stay buffered, where
  // searches still find them.
  try {
    index_->merge_fresh(index_->fresh_documents());
    merge_error_.clear();
  } catch (const std::exception& e) {
    merge_error_ = e.what();
  }
}

bool DenseCollection::start_merger_locked() {
  if (merger_started_) return true;
  try {
    merger_ = std::thread(&DenseCollection::run_merger, this);
  } catch (const std::system_error& e) {
    merge_error_ = std::string("cannot start a thread: ") + e.what();
    return false;
  }
  merger_started_ = true;
  return true;
}

void DenseCollection::wait_for_room(std::unique_lock<FairSharedMutex>& lock) {
  // Writes that outrun the merger wait for it: the buffer, which every
  // search scans, stays near fresh_limit. Without a healthy merger nobody
  // would make room, so then the request goes ahead.
  fresh_changed_.wait(lock, [&] {
    return stopping_.load() || settings_.fresh_limit == 0 || !merger_started_ ||
           !merge_error_.empty() || index_->fresh_documents() < settings_.fresh_limit;
  });
}

void DenseCollection::run_merger() {
  one_openmp_thread();
  std::unique_lock lock(mutex_);
  for (;;) {
    fresh_changed_.wait(lock, [&] { return stopping_.load() || index_->fresh_documents() > 0; });
    // memosd sends a burst of commits as several requests: give a batch a
    // moment to gather, unless one has, writers wait for room, or a flush
    // was asked for.
    fresh_changed_.wait_for(lock, settings_.merge_delay, [&] {
      std::size_t n = index_->fresh_documents();
      return stopping_.load() || flush_requested_ || n >= settings_.merge_after ||
             n >= settings_.fresh_limit;
    });
    // Drain the buffer. index_ is read afresh for every batch: a rebuild
    // may have swapped it meanwhile (and caught the new one up). Each of
    // the merge_threads threads inserts merge_batch documents per batch,
    // so a batch holds the lock about as long whatever the thread count.
    const std::size_t batch = std::max<std::size_t>(settings_.merge_batch, 1) *
                              static_cast<std::size_t>(std::max(settings_.merge_threads, 1));
    while (!stopping_.load() && index_->fresh_documents() > 0) {
      try {
        index_->merge_fresh(batch);
        merge_error_.clear();
      } catch (const std::exception& e) {
        merge_error_ = e.what();
        break;
      }
      fresh_changed_.notify_all();  // writers waiting for room
      // Searches and writes waiting for the lock go between batches.
      lock.unlock();
      lock.lock();
    }
    if (stopping_.load()) return;
    fresh_changed_.notify_all();  // wait_for_merge(), writers
    if (!merge_error_.empty()) {
      // Out of memory, most likely: retry later rather than spin. The
      // buffered documents are searched meanwhile, and writers no longer
      // wait for room.
      fresh_changed_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_.load(); });
    }
  }
}

void DenseCollection::start_rebuild_locked(IndexKind kind) {
  // The previous worker cleared rebuilding_ as its last locked step, so
  // this join waits at most for it to free the index it retired.
  if (worker_.joinable()) worker_.join();
  LiveDocuments documents = index_->live_documents();
  touched_.clear();
  rebuilding_ = true;
  try {
    worker_ = std::thread(&DenseCollection::run_rebuild, this, std::move(documents), kind);
  } catch (const std::system_error& e) {
    rebuilding_ = false;
    rebuild_error_ = std::string("cannot start a thread: ") + e.what();
  }
}

void DenseCollection::run_rebuild(LiveDocuments documents, IndexKind kind) {
  one_openmp_thread();
  std::unique_ptr<DenseIndex> rebuilt;
  std::unique_ptr<DenseIndex> retired;
  std::string error;
  try {
    rebuilt = DenseIndex::build(dimension_, kind, settings_, std::move(documents), stopping_);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  {
    std::unique_lock lock(mutex_);
    if (rebuilt && !stopping_.load()) {
      try {
        // Catch up with what changed while building: the current index
        // (graph and buffer) holds the truth for each touched id. What the
        // merger moved from buffer to graph meanwhile did not change, and
        // the copy the build started from had it. Replaced vectors go to
        // the rebuilt index's buffer (HNSW), so the swap stays quick.
        std::vector<std::uint64_t> ids;
        std::vector<float> vectors;
        std::vector<retrieval::Attributes> attributes;
        for (auto id : touched_) {
          const float* now = index_->vector_of(id);
          if (!now) {
            rebuilt->remove(id);
            continue;
          }
          const float* built = rebuilt->vector_of(id);
          if (built && std::memcmp(built, now, dimension_ * sizeof(float)) == 0) {
            rebuilt->set_attributes(id, *index_->attributes_of(id));  // attributes-only change
            continue;
          }
          ids.push_back(id);
          vectors.insert(vectors.end(), now, now + dimension_);
          attributes.push_back(*index_->attributes_of(id));
        }
        rebuilt->upsert_buffered(ids, vectors, std::move(attributes));
        retired = std::move(index_);
        index_ = std::move(rebuilt);
        ++rebuilds_;
        error.clear();
        merge_later_locked();
        fresh_changed_.notify_all();  // the buffer may be smaller now
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    rebuild_error_ = error;
    touched_.clear();
    rebuilding_ = false;
  }
  rebuilt_.notify_all();
  // `retired` (or an unused `rebuilt`) is freed here, outside the lock.
}

}  // namespace memos::faiss_retriever
