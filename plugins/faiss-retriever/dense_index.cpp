#include "plugins/faiss-retriever/dense_index.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <iterator>
#include <unordered_set>

#include "plugins/faiss-retriever/faiss_io.h"

namespace memos::faiss_retriever {
namespace {

// Documents added to FAISS per call during a rebuild: large enough for
// FAISS to batch well, small enough to notice a stop request soon.
constexpr std::size_t kBuildChunk = 4096;

std::unique_ptr<faiss::Index> make_index(std::uint32_t dimension, IndexKind kind,
                                         const IndexSettings& settings) {
  auto d = static_cast<FaissId>(dimension);
  if (kind == IndexKind::exact) return std::make_unique<faiss::IndexFlatIP>(d);
  auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dimension), settings.hnsw_m,
                                                     faiss::METRIC_INNER_PRODUCT);
  hnsw->hnsw.efConstruction = settings.ef_construction;
  hnsw->hnsw.efSearch = settings.ef_search;
  return hnsw;
}

faiss::IndexFlat* flat_of(faiss::Index* index) {
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index)) {
    return dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
  }
  return dynamic_cast<faiss::IndexFlat*>(index);
}

}  // namespace

const char* kind_name(IndexKind kind) {
  return kind == IndexKind::hnsw ? "hnsw" : "exact";
}

// Evaluated by FAISS for each candidate position: live and admitted.
class DenseIndex::Selector final : public faiss::IDSelector {
 public:
  Selector(const DenseIndex& index, const retrieval::FilterSpec& filter)
      : index_(index), filter_(filter) {}
  bool is_member(FaissId position) const override {
    const Slot& slot = index_.slots_[static_cast<std::size_t>(position)];
    return !slot.dead && retrieval::admits(slot.attributes, filter_);
  }

 private:
  const DenseIndex& index_;
  const retrieval::FilterSpec& filter_;
};

DenseIndex::DenseIndex(std::uint32_t dimension, IndexKind kind, const IndexSettings& settings)
    : dimension_(dimension),
      kind_(kind),
      settings_(settings),
      index_(make_index(dimension, kind, settings)),
      flat_(flat_of(index_.get())),
      fresh_(dimension) {}

std::unique_ptr<DenseIndex> DenseIndex::build(std::uint32_t dimension, IndexKind kind,
                                              const IndexSettings& settings,
                                              LiveDocuments documents,
                                              const std::atomic<bool>& stop) {
  auto index = std::make_unique<DenseIndex>(dimension, kind, settings);
  std::size_t n = documents.ids.size();
  for (std::size_t start = 0; start < n; start += kBuildChunk) {
    if (stop.load()) return nullptr;
    std::size_t count = std::min(kBuildChunk, n - start);
    auto first = documents.attributes.begin() + static_cast<std::ptrdiff_t>(start);
    std::vector<retrieval::Attributes> attributes(
        std::make_move_iterator(first),
        std::make_move_iterator(first + static_cast<std::ptrdiff_t>(count)));
    index->insert(std::span(documents.ids).subspan(start, count),
                  std::span(documents.vectors).subspan(start * dimension, count * dimension),
                  std::move(attributes));
  }
  return index;
}

std::unique_ptr<DenseIndex> DenseIndex::from_snapshot(Snapshot snapshot,
                                                      const IndexSettings& settings,
                                                      std::string* why) {
  auto index = std::make_unique<DenseIndex>(snapshot.dimension, snapshot.kind, settings);
  auto n = static_cast<FaissId>(snapshot.slots.size());
  if (snapshot.kind == IndexKind::exact) {
    // read_snapshot checked the length. IndexFlat::add copies with memcpy,
    // so the mapped floats need not be aligned; n = 0 reads nothing.
    index->index_->add(n, reinterpret_cast<const float*>(snapshot.index_bytes.data()));
  } else {
    std::unique_ptr<faiss::Index> loaded;
    try {
      MappedIOReader reader(snapshot.file, snapshot.index_offset, snapshot.index_bytes.size());
      loaded.reset(faiss::read_index(&reader));
    } catch (const std::exception& e) {
      *why = std::string("snapshot refused: the FAISS index does not load: ") + e.what();
      return nullptr;
    }
    auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(loaded.get());
    faiss::IndexFlat* storage = hnsw ? flat_of(hnsw) : nullptr;
    if (!storage || hnsw->d != static_cast<FaissId>(snapshot.dimension) ||
        hnsw->metric_type != faiss::METRIC_INNER_PRODUCT || hnsw->ntotal != n) {
      *why = "snapshot refused: the FAISS index does not match its slots";
      return nullptr;
    }
    // Settings may have changed since the save; new additions follow them.
    hnsw->hnsw.efConstruction = settings.ef_construction;
    hnsw->hnsw.efSearch = settings.ef_search;
    index->index_ = std::move(loaded);
    index->flat_ = storage;
  }
  index->slots_.reserve(snapshot.slots.size());
  for (auto& s : snapshot.slots) {
    std::size_t position = index->slots_.size();
    Slot& slot = index->slots_.emplace_back();
    slot.id = s.id;
    slot.dead = s.dead;
    if (slot.dead) {
      ++index->tombstones_;
      continue;
    }
    if (!index->positions_.emplace(s.id, position).second) {
      *why = "snapshot refused: document " + std::to_string(s.id) + " appears twice";
      return nullptr;
    }
    slot.attributes = std::move(s.attributes);
    index->note_attributes(slot);
  }
  // Buffered documents go back to the buffer (an exact index has none).
  std::vector<std::uint64_t> fresh_ids;
  std::vector<retrieval::Attributes> fresh_attributes;
  std::unordered_set<std::uint64_t> seen;
  for (auto& s : snapshot.fresh) {
    if (s.dead || index->positions_.count(s.id) != 0 || !seen.insert(s.id).second) {
      *why = "snapshot refused: buffered document " + std::to_string(s.id) + " is not unique";
      return nullptr;
    }
    fresh_ids.push_back(s.id);
    fresh_attributes.push_back(std::move(s.attributes));
  }
  if (!fresh_ids.empty() && snapshot.kind == IndexKind::exact) {
    *why = "snapshot refused: an exact index with buffered documents";
    return nullptr;
  }
  index->upsert(fresh_ids, snapshot.fresh_vectors, std::move(fresh_attributes));
  return index;
}

SnapshotView DenseIndex::snapshot_view() const {
  SnapshotView v;
  v.dimension = dimension_;
  v.kind = kind_;
  v.slots = slots_.size();
  v.slot = [this](std::size_t position) {
    const Slot& slot = slots_[position];
    return SnapshotSlotRef{slot.id, slot.dead, &slot.attributes};
  };
  v.fresh_ids = fresh_.ids();
  v.fresh_attributes = fresh_.attributes();
  v.fresh_vectors = fresh_.vectors();
  if (kind_ == IndexKind::exact) {
    v.vectors = {flat_->get_xb(), slots_.size() * dimension_};
  } else {
    v.faiss_index = index_.get();
  }
  return v;
}

void DenseIndex::upsert(std::span<const std::uint64_t> ids, std::span<const float> vectors,
                        std::vector<retrieval::Attributes> attributes) {
  if (kind_ == IndexKind::exact) {
    insert(ids, vectors, std::move(attributes));
    return;
  }
  // A bulk load (a rebuild from the store, an import) with nothing waiting
  // in the buffer goes into the graph at once, every merge thread
  // inserting: through the buffer it would only wait for the merger.
  if (ids.size() >= settings_.bulk_min && fresh_.size() == 0) {
    insert(ids, vectors, std::move(attributes));
    return;
  }
  upsert_buffered(ids, vectors, std::move(attributes));
}

void DenseIndex::upsert_buffered(std::span<const std::uint64_t> ids, std::span<const float> vectors,
                                 std::vector<retrieval::Attributes> attributes) {
  if (kind_ == IndexKind::exact) {
    insert(ids, vectors, std::move(attributes));
    return;
  }
  // HNSW: the buffer takes them (a copy, microseconds) and the merger puts
  // them in the graph later (a fraction of a millisecond each). A replaced
  // document's graph copy is buried now, so it is never found stale.
  fresh_.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto it = positions_.find(ids[i]);
    if (it != positions_.end()) bury(it->second);
    fresh_.upsert(ids[i], vectors.data() + i * dimension_, std::move(attributes[i]));
  }
}

std::size_t DenseIndex::merge_fresh(std::size_t n) {
  LiveDocuments batch = fresh_.tail(n);
  std::size_t moved = batch.ids.size();
  if (moved == 0) return 0;
  // Into the graph first: if FAISS throws, the buffer still has them.
  insert(batch.ids, batch.vectors, std::move(batch.attributes));
  fresh_.pop(moved);
  return moved;
}

void DenseIndex::insert(std::span<const std::uint64_t> ids, std::span<const float> vectors,
                        std::vector<retrieval::Attributes> attributes) {
  if (ids.empty()) return;
  // FAISS first: if it throws, the slots still describe the index.
  // Reserve so the bookkeeping below cannot throw halfway; grow
  // geometrically, or one-document requests would copy every slot each time.
  std::size_t needed = slots_.size() + ids.size();
  if (slots_.capacity() < needed) slots_.reserve(std::max(needed, slots_.capacity() * 2));
  try {
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index_.get())) {
      inserter_.add(*hnsw, ids.size(), vectors.data(), settings_.merge_threads);
    } else {
      index_->add(static_cast<FaissId>(ids.size()), vectors.data());
    }
  } catch (...) {
    // Positions FAISS took before failing hold vectors no slot describes
    // (and maybe half-linked graph vertices): bury them, so positions and
    // slots stay in step. The reserve above makes this no-throw.
    while (slots_.size() < static_cast<std::size_t>(index_->ntotal)) {
      slots_.emplace_back().dead = true;
      ++tombstones_;
    }
    throw;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto it = positions_.find(ids[i]);
    if (it != positions_.end()) bury(it->second);
    std::size_t position = slots_.size();
    Slot& slot = slots_.emplace_back();
    slot.id = ids[i];
    slot.attributes = std::move(attributes[i]);
    note_attributes(slot);
    positions_[ids[i]] = position;
  }
}

bool DenseIndex::set_attributes(std::uint64_t id, retrieval::Attributes attributes) {
  auto it = positions_.find(id);
  if (it == positions_.end()) return fresh_.set_attributes(id, std::move(attributes));
  Slot& slot = slots_[it->second];
  if (slot.restricted) --restricted_;
  slot.attributes = std::move(attributes);
  note_attributes(slot);
  return true;
}

bool DenseIndex::remove(std::uint64_t id) {
  auto it = positions_.find(id);
  if (it == positions_.end()) return fresh_.remove(id);
  bury(it->second);
  return true;
}

const float* DenseIndex::vector_of(std::uint64_t id) const {
  auto it = positions_.find(id);
  return it == positions_.end() ? fresh_.vector_of(id) : flat_->get_xb() + it->second * dimension_;
}

const retrieval::Attributes* DenseIndex::attributes_of(std::uint64_t id) const {
  auto it = positions_.find(id);
  return it == positions_.end() ? fresh_.attributes_of(id) : &slots_[it->second].attributes;
}

void DenseIndex::bury(std::size_t position) {
  Slot& slot = slots_[position];
  positions_.erase(slot.id);
  if (slot.restricted) --restricted_;
  slot.dead = true;
  slot.restricted = false;
  slot.attributes = {};  // a tombstone keeps only its position
  ++tombstones_;
}

void DenseIndex::note_attributes(Slot& slot) {
  slot.restricted = retrieval::is_restricted(slot.attributes);
  if (slot.restricted) ++restricted_;
  max_valid_from_ = std::max(max_valid_from_, slot.attributes.valid_from_ms);
}

std::vector<DenseHit> DenseIndex::search(const float* query, std::size_t k,
                                         const retrieval::FilterSpec& filter) const {
  auto graph = search_index(query, k, filter);
  if (fresh_.empty()) return graph;
  auto fresh = fresh_.search(query, k, filter);
  // Both lists are best first and share no id: a stable merge by score,
  // cut at k, is the top k of the union.
  std::vector<DenseHit> hits;
  hits.reserve(graph.size() + fresh.size());
  std::merge(graph.begin(), graph.end(), fresh.begin(), fresh.end(), std::back_inserter(hits),
             [](const DenseHit& a, const DenseHit& b) { return a.score > b.score; });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

std::vector<DenseHit> DenseIndex::search_index(const float* query, std::size_t k,
                                               const retrieval::FilterSpec& filter) const {
  if (k == 0 || positions_.empty()) return {};
  std::size_t limit = std::min(k, slots_.size());
  bool plain =
      restricted_ == 0 && tombstones_ == 0 && filter.only_default_conditions(max_valid_from_);
  Selector selector(*this, filter);
  const faiss::IDSelector* sel = plain ? nullptr : &selector;
  // A k near the collection's size would make HNSW visit every node with
  // heap work on top: a flat scan is cheaper and exact.
  if (kind_ == IndexKind::exact || limit * 2 >= positions_.size()) {
    return exact_search(query, limit, sel);
  }

  faiss::SearchParametersHNSW params;
  params.sel = const_cast<faiss::IDSelector*>(sel);  // FAISS 1.7.3 declares it non-const
  params.efSearch = static_cast<int>(std::min<std::size_t>(
      std::max<std::size_t>(static_cast<std::size_t>(settings_.ef_search), limit), INT_MAX));
  std::vector<float> scores(limit);
  std::vector<FaissId> positions(limit);
  index_->search(1, query, static_cast<FaissId>(limit), scores.data(), positions.data(), &params);
  auto hits = collect(limit, scores, positions);
  // HNSW explores about efSearch nodes and keeps those the selector admits:
  // under a selective filter that can be fewer than k though more exist.
  // Then scan the admitted documents exactly (they are few, or the graph
  // search would have found them).
  if (hits.size() < limit) {
    bool short_of_admitted =
        plain ? hits.size() < positions_.size() : admits_more_than(selector, hits.size());
    if (short_of_admitted) return exact_search(query, limit, sel);
  }
  return hits;
}

std::vector<DenseHit> DenseIndex::exact_search(const float* query, std::size_t k,
                                               const faiss::IDSelector* selector) const {
  std::vector<float> scores(k);
  std::vector<FaissId> positions(k);
  faiss::SearchParameters params;
  params.sel = const_cast<faiss::IDSelector*>(selector);
  flat_->search(1, query, static_cast<FaissId>(k), scores.data(), positions.data(),
                selector ? &params : nullptr);
  return collect(k, scores, positions);
}

std::vector<DenseHit> DenseIndex::collect(std::size_t k, const std::vector<float>& scores,
                                          const std::vector<FaissId>& positions) const {
  std::vector<DenseHit> hits;
  hits.reserve(k);
  for (std::size_t i = 0; i < k; ++i) {
    if (positions[i] < 0) break;  // FAISS pads with -1 when fewer qualify
    const Slot& slot = slots_[static_cast<std::size_t>(positions[i])];
    if (slot.dead) continue;  // only reachable through a plain search, which has none
    hits.push_back({slot.id, scores[i]});
  }
  return hits;
}

bool DenseIndex::admits_more_than(const Selector& selector, std::size_t found) const {
  std::size_t admitted = 0;
  for (std::size_t p = 0; p < slots_.size(); ++p) {
    if (selector.is_member(static_cast<FaissId>(p)) && ++admitted > found) return true;
  }
  return false;
}

std::optional<IndexKind> DenseIndex::rebuild_target() const {
  std::size_t live = documents();
  bool buried =
      tombstones_ > 0 && static_cast<double>(tombstones_) >
                             settings_.tombstone_ratio * static_cast<double>(slots_.size());
  bool outgrown = kind_ == IndexKind::exact && live > settings_.hnsw_threshold;
  if (!buried && !outgrown) return std::nullopt;
  if (live > settings_.hnsw_threshold) return IndexKind::hnsw;
  if (kind_ == IndexKind::hnsw && live >= settings_.hnsw_threshold / 2) return IndexKind::hnsw;
  return IndexKind::exact;
}

LiveDocuments DenseIndex::live_documents() const {
  LiveDocuments out;
  out.ids.reserve(documents());
  out.attributes.reserve(documents());
  out.vectors.reserve(documents() * dimension_);
  const float* xb = flat_->get_xb();
  for (std::size_t p = 0; p < slots_.size(); ++p) {
    if (slots_[p].dead) continue;
    out.ids.push_back(slots_[p].id);
    out.attributes.push_back(slots_[p].attributes);
    out.vectors.insert(out.vectors.end(), xb + p * dimension_, xb + (p + 1) * dimension_);
  }
  fresh_.copy_to(&out);
  return out;
}

}  // namespace memos::faiss_retriever
