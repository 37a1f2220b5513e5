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
// inside one FAISS call would only compete with them (and a background
// rebuild should not take every core from searches). The setting is per
// thread, so each entry point that reaches FAISS sets it.
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
  stopping_.store(true);
  if (worker_.joinable()) worker_.join();
}

std::unique_ptr<DenseCollection> DenseCollection::open(std::uint64_t id, std::uint32_t dimension,
                                                       const IndexSettings& settings,
                                                       const std::string& state_dir,
                                                       std::string* detail) {
  auto collection = std::make_unique<DenseCollection>(id, dimension, settings);
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

std::string DenseCollection::index(std::vector<DocumentChange> changes, std::uint64_t version) {
  // Check everything before changing anything: a request applies whole.
  for (const auto& c : changes) {
    if (c.attributes_only) continue;
    std::string why = check_vector(c.vector);
    if (!why.empty()) return "document " + std::to_string(c.id) + ": " + why;
  }
  one_openmp_thread();
  std::unique_lock lock(mutex_);
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
  if (dropped_) return "collection " + std::to_string(id_) + " was dropped";
  Snapshot snapshot;
  {
    std::shared_lock lock(mutex_);
    index_->to_snapshot(&snapshot);
    snapshot.collection = id_;
    snapshot.version = version_;
    *state = {version_, index_->documents(), describe_locked()};
  }
  return write_snapshot(state_dir, snapshot);
}

void DenseCollection::mark_dropped() {
  std::lock_guard save_lock(save_mutex_);
  dropped_ = true;
}

CollectionState DenseCollection::state() const {
  std::shared_lock lock(mutex_);
  return {version_, index_->documents(), describe_locked()};
}

CollectionStats DenseCollection::stats() const {
  std::shared_lock lock(mutex_);
  return {index_->kind(), index_->documents(), index_->tombstones(), version_,
          rebuilding_,    rebuilds_,           rebuild_error_};
}

void DenseCollection::wait_for_rebuild() const {
  std::unique_lock lock(mutex_);
  rebuilt_.wait(lock, [&] { return !rebuilding_; });
}

std::string DenseCollection::describe_locked() const {
  std::string d = std::string(kind_name(index_->kind())) + ", " +
                  std::to_string(index_->documents()) + " documents, " +
                  std::to_string(index_->tombstones()) + " tombstones";
  if (rebuilding_) d += ", rebuilding";
  if (!rebuild_error_.empty()) d += "; last rebuild failed: " + rebuild_error_;
  return d;
}

void DenseCollection::after_change_locked() {
  if (rebuilding_ || stopping_.load()) return;
  if (auto kind = index_->rebuild_target()) start_rebuild_locked(*kind);
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
  std::unique_ptr<DenseIndex> fresh;
  std::unique_ptr<DenseIndex> retired;
  std::string error;
  try {
    fresh = DenseIndex::build(dimension_, kind, settings_, std::move(documents), stopping_);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  {
    std::unique_lock lock(mutex_);
    if (fresh && !stopping_.load()) {
      try {
        // Catch up with what changed while building: the current index
        // holds the truth for each touched id.
        std::vector<std::uint64_t> ids;
        std::vector<float> vectors;
        std::vector<retrieval::Attributes> attributes;
        for (auto id : touched_) {
          const float* now = index_->vector_of(id);
          if (!now) {
            fresh->remove(id);
            continue;
          }
          const float* built = fresh->vector_of(id);
          if (built && std::memcmp(built, now, dimension_ * sizeof(float)) == 0) {
            fresh->set_attributes(id, *index_->attributes_of(id));  // attributes-only change
            continue;
          }
          ids.push_back(id);
          vectors.insert(vectors.end(), now, now + dimension_);
          attributes.push_back(*index_->attributes_of(id));
        }
        fresh->upsert(ids, vectors, std::move(attributes));
        retired = std::move(index_);
        index_ = std::move(fresh);
        ++rebuilds_;
        error.clear();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    rebuild_error_ = error;
    touched_.clear();
    rebuilding_ = false;
  }
  rebuilt_.notify_all();
  // `retired` (or an unused `fresh`) is freed here, outside the lock.
}

}  // namespace memos::faiss_retriever
