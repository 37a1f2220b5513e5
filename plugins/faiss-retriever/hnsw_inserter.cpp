#include "plugins/faiss-retriever/hnsw_inserter.h"

#include <faiss/IndexFlatCodes.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <system_error>

namespace memos::faiss_retriever {
namespace {

// HNSW minimises distances; an inner-product graph negates the scores, as
// IndexHNSW does internally (its wrapper is private to IndexHNSW.cpp).
class NegatedDistance final : public faiss::DistanceComputer {
 public:
  explicit NegatedDistance(faiss::DistanceComputer* base) : base_(base) {}
  void set_query(const float* x) override { base_->set_query(x); }
  float operator()(idx_t i) override { return -(*base_)(i); }
  float symmetric_dis(idx_t i, idx_t j) override { return -base_->symmetric_dis(i, j); }

 private:
  std::unique_ptr<faiss::DistanceComputer> base_;
};

std::unique_ptr<faiss::DistanceComputer> distance_computer(const faiss::Index& storage) {
  std::unique_ptr<faiss::DistanceComputer> base(storage.get_distance_computer());
  if (storage.metric_type != faiss::METRIC_INNER_PRODUCT) return base;
  return std::make_unique<NegatedDistance>(base.release());
}

// Room for `needed` elements, growing geometrically: a reserve of exactly
// what one batch needs would copy the whole vector at every batch.
template <class T>
void grow(std::vector<T>& v, std::size_t needed) {
  if (v.capacity() < needed) v.reserve(std::max(needed, v.capacity() * 2));
}

}  // namespace

// One level's vertices of a batch: what every linking thread shares.
struct HnswInserter::Job {
  faiss::IndexHNSW& index;
  std::vector<omp_lock_t>& locks;
  const float* x;  // the batch's vectors: vertex v's at x + (v - n0) * d
  std::size_t n0;  // the batch's first vertex
  int level;       // of every vertex in `vertices`
  std::span<const int> vertices;
  std::atomic<std::size_t> next{0};  // the next vertex to claim
  std::atomic<bool> failed{false};
  std::mutex error_mutex{};
  std::exception_ptr error{};  // the first failure; guarded by error_mutex
  int helpers_inside = 0;      // guarded by HnswInserter::mutex_
};

HnswInserter::~HnswInserter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& helper : helpers_) helper.join();
  destroy(locks_);
}

void HnswInserter::destroy(std::vector<omp_lock_t>& locks) {
  for (auto& lock : locks) omp_destroy_lock(&lock);
  locks.clear();
}

void HnswInserter::reserve_locks(std::size_t n) {
  if (locks_.size() >= n) return;
  std::vector<omp_lock_t> more(std::max(n, locks_.size() * 2));
  for (auto& lock : more) omp_init_lock(&lock);
  destroy(locks_);
  locks_ = std::move(more);
}

void HnswInserter::start_helpers(std::size_t count) {
  while (helpers_.size() < count) {
    try {
      helpers_.emplace_back(&HnswInserter::run_helper, this);
    } catch (const std::system_error&) {
      return;  // fewer helpers: slower merges, nothing wrong
    }
  }
}

void HnswInserter::run_helper() {
  std::uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || (job_ && generation_ != seen); });
    if (stopping_) return;
    seen = generation_;
    Job& job = *job_;
    ++job.helpers_inside;
    lock.unlock();
    work(job);
    lock.lock();
    --job.helpers_inside;
    finished_.notify_one();
  }
}

void HnswInserter::work(Job& job) {
  auto fail = [&] {
    std::lock_guard lock(job.error_mutex);
    if (!job.error) job.error = std::current_exception();
    job.failed = true;
  };
  const auto dimension = static_cast<std::size_t>(job.index.d);
  try {
    // The distance computer reads the storage where it is now: made after
    // the batch's vectors were stored.
    auto dis = distance_computer(*job.index.storage);
    faiss::VisitedTable visited(static_cast<int>(job.index.ntotal));
    while (!job.failed.load()) {
      std::size_t i = job.next.fetch_add(1);
      if (i >= job.vertices.size()) return;
      int vertex = job.vertices[i];
      dis->set_query(job.x + (static_cast<std::size_t>(vertex) - job.n0) * dimension);
      job.index.hnsw.add_with_locks(*dis, job.level, vertex, job.locks, visited);
    }
  } catch (...) {
    fail();
  }
}

void HnswInserter::run(Job& job) {
  {
    std::lock_guard lock(mutex_);
    job_ = &job;
    ++generation_;
  }
  wake_.notify_all();
  work(job);
  // Every vertex is claimed now; wait for the helpers still linking theirs
  // (a helper that never woke in time finds no job, and costs nothing).
  std::unique_lock lock(mutex_);
  job_ = nullptr;
  finished_.wait(lock, [&] { return job.helpers_inside == 0; });
}

void HnswInserter::add(faiss::IndexHNSW& index, std::size_t n, const float* x, int threads) {
  if (n == 0) return;
  auto* storage = dynamic_cast<faiss::IndexFlatCodes*>(index.storage);
  FAISS_THROW_IF_NOT_MSG(storage, "HnswInserter needs an IndexHNSWFlat");
  faiss::HNSW& hnsw = index.hnsw;
  const auto n0 = static_cast<std::size_t>(index.ntotal);
  const std::size_t total = n0 + n;
  FAISS_THROW_IF_NOT_MSG(total <= static_cast<std::size_t>(INT32_MAX), "HNSW graph is full");

  // Everything that may run out of memory happens first, while `index` is
  // unchanged: the levels drawn, then room in every array the graph grows.
  std::vector<int> levels(n);
  std::size_t links = 0;
  for (auto& level : levels) {
    level = hnsw.random_level() + 1;  // as HNSW::prepare_level_tab stores them
    links += static_cast<std::size_t>(hnsw.cum_nb_neighbors(level));
  }
  reserve_locks(total);
  grow(storage->codes, total * storage->code_size);
  grow(hnsw.levels, total);
  grow(hnsw.offsets, total + 1);
  grow(hnsw.neighbors, hnsw.neighbors.size() + links);
  // Vertices by level, top first, as FAISS links them: while one level's
  // vertices are linked, the levels above them do not change.
  std::vector<int> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<int>(n0 + i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return levels[a - n0] > levels[b - n0]; });
  if (threads > 1) start_helpers(static_cast<std::size_t>(threads - 1));

  // From here on nothing allocates until the linking below.
  hnsw.levels.insert(hnsw.levels.end(), levels.begin(), levels.end());
  storage->add(static_cast<faiss::Index::idx_t>(n), x);
  index.ntotal = storage->ntotal;
  hnsw.prepare_level_tab(n, /*preset_levels=*/true);

  std::size_t first = 0;
  while (first < n) {
    const int level = levels[order[first] - n0] - 1;
    std::size_t end = first;
    while (end < n && levels[order[end] - n0] - 1 == level) ++end;
    // A vertex above the graph's top level becomes its entry point, which
    // add_with_locks sets without a lock: those go one at a time (a
    // handful per million vertices).
    auto link = [&](std::size_t from, std::size_t to, bool helped) {
      Job job{index, locks_, x, n0, level, std::span<const int>(order).subspan(from, to - from)};
      if (helped) {
        run(job);
      } else {
        work(job);
      }
      if (job.error) std::rethrow_exception(job.error);
    };
    for (; first < end && level > hnsw.max_level; ++first) link(first, first + 1, false);
    if (first < end) link(first, end, threads > 1 && end - first > 1);
    first = end;
  }
}

}  // namespace memos::faiss_retriever
