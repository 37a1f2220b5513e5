#include "plugins/faiss-retriever/fresh_buffer.h"

#include <faiss/utils/distances.h>

#include <algorithm>
#include <utility>

namespace memos::faiss_retriever {

void FreshBuffer::reserve(std::size_t more) {
  std::size_t needed = ids_.size() + more;
  if (ids_.capacity() >= needed) return;
  // Geometric growth: requests of a few documents must not copy the whole
  // buffer each time.
  std::size_t capacity = std::max(needed, ids_.capacity() * 2);
  ids_.reserve(capacity);
  vectors_.reserve(capacity * dimension_);
  attributes_.reserve(capacity);
  positions_.reserve(capacity);
}

void FreshBuffer::upsert(std::uint64_t id, const float* vector, retrieval::Attributes attributes) {
  auto it = positions_.find(id);
  if (it != positions_.end()) {
    std::copy(vector, vector + dimension_, vectors_.begin() + it->second * dimension_);
    attributes_[it->second] = std::move(attributes);
    return;
  }
  reserve(1);
  positions_.emplace(id, ids_.size());
  ids_.push_back(id);
  vectors_.insert(vectors_.end(), vector, vector + dimension_);
  attributes_.push_back(std::move(attributes));
}

bool FreshBuffer::set_attributes(std::uint64_t id, retrieval::Attributes attributes) {
  auto it = positions_.find(id);
  if (it == positions_.end()) return false;
  attributes_[it->second] = std::move(attributes);
  return true;
}

bool FreshBuffer::remove(std::uint64_t id) {
  auto it = positions_.find(id);
  if (it == positions_.end()) return false;
  // Move the last document into the hole: order carries no meaning here.
  std::size_t hole = it->second;
  std::size_t last = ids_.size() - 1;
  positions_.erase(it);
  if (hole != last) {
    ids_[hole] = ids_[last];
    std::copy_n(vectors_.begin() + last * dimension_, dimension_,
                vectors_.begin() + hole * dimension_);
    attributes_[hole] = std::move(attributes_[last]);
    positions_[ids_[hole]] = hole;
  }
  ids_.pop_back();
  vectors_.resize(last * dimension_);
  attributes_.pop_back();
  return true;
}

const float* FreshBuffer::vector_of(std::uint64_t id) const {
  auto it = positions_.find(id);
  return it == positions_.end() ? nullptr : vectors_.data() + it->second * dimension_;
}

const retrieval::Attributes* FreshBuffer::attributes_of(std::uint64_t id) const {
  auto it = positions_.find(id);
  return it == positions_.end() ? nullptr : &attributes_[it->second];
}

std::vector<DenseHit> FreshBuffer::search(const float* query, std::size_t k,
                                          const retrieval::FilterSpec& filter) const {
  if (k == 0 || ids_.empty()) return {};
  std::vector<std::pair<float, std::size_t>> scored;  // (score, position)
  scored.reserve(ids_.size());
  for (std::size_t p = 0; p < ids_.size(); ++p) {
    if (!retrieval::admits(attributes_[p], filter)) continue;
    scored.emplace_back(
        faiss::fvec_inner_product(query, vectors_.data() + p * dimension_, dimension_), p);
  }
  std::size_t n = std::min(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
                    [](const auto& a, const auto& b) {
                      return a.first > b.first || (a.first == b.first && a.second < b.second);
                    });
  std::vector<DenseHit> hits;
  hits.reserve(n);
  for (std::size_t i = 0; i < n; ++i) hits.push_back({ids_[scored[i].second], scored[i].first});
  return hits;
}

LiveDocuments FreshBuffer::tail(std::size_t n) const {
  n = std::min(n, ids_.size());
  std::size_t first = ids_.size() - n;
  LiveDocuments out;
  out.ids.assign(ids_.begin() + static_cast<std::ptrdiff_t>(first), ids_.end());
  out.vectors.assign(vectors_.begin() + static_cast<std::ptrdiff_t>(first * dimension_),
                     vectors_.end());
  out.attributes.assign(attributes_.begin() + static_cast<std::ptrdiff_t>(first),
                        attributes_.end());
  return out;
}

void FreshBuffer::pop(std::size_t n) {
  n = std::min(n, ids_.size());
  for (std::size_t i = ids_.size() - n; i < ids_.size(); ++i) positions_.erase(ids_[i]);
  ids_.resize(ids_.size() - n);
  vectors_.resize(ids_.size() * dimension_);
  attributes_.resize(ids_.size());
}

void FreshBuffer::copy_to(LiveDocuments* out) const {
  out->ids.insert(out->ids.end(), ids_.begin(), ids_.end());
  out->vectors.insert(out->vectors.end(), vectors_.begin(), vectors_.end());
  out->attributes.insert(out->attributes.end(), attributes_.begin(), attributes_.end());
}

}  // namespace memos::faiss_retriever
