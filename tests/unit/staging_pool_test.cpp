// The executor's staging pool (plugins/llama-executor/staging_pool.h): over a
// counting allocator it keeps page-locked bytes within its budget, reuses
// released blocks, falls back to ordinary memory (saying why) and frees
// everything it pinned, also for blocks released after the pool is gone.
// Over this build's CUDA runtime (gpu_runtime.h): without a GPU the probe
// says why and nothing is pinned; with one (label "gpu", scripts/test-gpu)
// pinned blocks make a host-device round trip intact.
#define BOOST_TEST_MODULE staging_pool
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plugins/llama-executor/gpu_runtime.h"
#include "plugins/llama-executor/staging_pool.h"
#include "tests/support/preconditions.h"

using memos::llama_exec::PinnedAllocator;
using memos::llama_exec::StagedBytes;
using memos::llama_exec::StagingPool;
namespace gpu = memos::llama_exec::gpu;

namespace {

// A stand-in for cudaHostAlloc: ordinary memory, every live block counted,
// and a switch that makes it refuse, as a driver out of page-locked memory.
struct Counting {
  std::map<void*, std::size_t> live;
  std::size_t allocations = 0;
  bool refuse = false;
};
Counting counting;

PinnedAllocator counting_allocator() {
  return {[](std::size_t bytes, std::string* error) -> void* {
            if (counting.refuse) {
              *error = "out of page-locked memory";
              return nullptr;
            }
            void* p = ::operator new(bytes);
            counting.live[p] = bytes;
            ++counting.allocations;
            return p;
          },
          [](void* p) {
            BOOST_TEST_REQUIRE(counting.live.count(p) == 1u);
            counting.live.erase(p);
            ::operator delete(p);
          }};
}

struct Fresh {
  Fresh() { counting = Counting{}; }
  ~Fresh() { BOOST_TEST(counting.live.empty()); }  // every pinned block freed
};

boost::test_tools::assertion_result has_gpu(boost::unit_test::test_unit_id) {
  const gpu::Probe p = gpu::probe();
  boost::test_tools::assertion_result r(p.devices > 0);
  r.message() << "no GPU: " << p.why_none;
  return r;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(blocks_hold_their_bytes_and_are_reused_when_released, Fresh) {
  StagingPool pool(true, 1000, counting_allocator());
  std::shared_ptr<StagedBytes> a = pool.copy_of("state bytes");
  BOOST_TEST(a->pinned());
  BOOST_TEST(a->view() == "state bytes");
  // Addresses, not C strings (which is how Boost.Test compares char*).
  const void* first = a->data();
  a.reset();
  BOOST_TEST(pool.stats().in_use_bytes == 0u);
  BOOST_TEST(pool.stats().pinned_bytes == 11u);  // kept for the next blob
  // A block of the same size takes the kept one: no second pinning.
  auto b = pool.allocate(11);
  BOOST_TEST(static_cast<const void*>(b->data()) == first);
  BOOST_TEST(counting.allocations == 1u);
  // One much smaller does not (it would hold twice its size idle).
  auto c = pool.allocate(3);
  BOOST_TEST(static_cast<const void*>(c->data()) != first);
  BOOST_TEST(counting.allocations == 2u);
  BOOST_TEST(pool.stats().pinned_blocks == 3u);
  BOOST_TEST(pool.stats().ordinary_blocks == 0u);
}

BOOST_FIXTURE_TEST_CASE(the_budget_bounds_page_locked_bytes_and_the_rest_is_ordinary, Fresh) {
  StagingPool pool(true, 100, counting_allocator());
  auto a = pool.allocate(60);
  auto b = pool.allocate(60);  // 120 > 100: ordinary memory, still usable
  BOOST_TEST(a->pinned());
  BOOST_TEST(!b->pinned());
  std::memset(b->data(), 7, b->size());
  BOOST_TEST(pool.stats().pinned_bytes == 60u);
  BOOST_TEST(pool.stats().ordinary_blocks == 1u);
  BOOST_TEST(pool.stats().why_ordinary.find("budget") != std::string::npos);
  // A released block is kept, but freed to make room for a larger one.
  a.reset();
  auto c = pool.allocate(90);
  BOOST_TEST(c->pinned());
  BOOST_TEST(pool.stats().pinned_bytes == 90u);
  BOOST_TEST(counting.live.size() == 1u);
  // Larger than the whole budget: ordinary.
  BOOST_TEST(!pool.allocate(101)->pinned());
}

BOOST_FIXTURE_TEST_CASE(a_driver_refusal_gives_ordinary_memory_and_says_why, Fresh) {
  StagingPool pool(true, 1 << 20, counting_allocator());
  counting.refuse = true;
  auto a = pool.copy_of("kept anyway");
  BOOST_TEST(!a->pinned());
  BOOST_TEST(a->view() == "kept anyway");
  BOOST_TEST(pool.stats().why_ordinary.find("out of page-locked memory") != std::string::npos);
  BOOST_TEST(pool.stats().pinned_bytes == 0u);  // the reservation was undone
  counting.refuse = false;
  BOOST_TEST(pool.allocate(10)->pinned());
}

BOOST_FIXTURE_TEST_CASE(a_cpu_pool_never_pins, Fresh) {
  StagingPool pool(false, 1 << 20, counting_allocator());
  auto a = pool.copy_of("x");
  BOOST_TEST(!a->pinned());
  BOOST_TEST(counting.allocations == 0u);
  BOOST_TEST(!pool.stats().pinned);
  BOOST_TEST(pool.stats().why_ordinary == "the executor runs on the CPU");
  StagingPool zero(true, 0, counting_allocator());
  BOOST_TEST(!zero.allocate(1)->pinned());
  BOOST_TEST(zero.stats().why_ordinary == "a page-locked budget of 0");
}

BOOST_FIXTURE_TEST_CASE(blocks_outlive_their_pool, Fresh) {
  std::shared_ptr<StagedBytes> survivor;
  {
    StagingPool pool(true, 1000, counting_allocator());
    survivor = pool.copy_of("still here");
    pool.allocate(5);  // released at once: kept, then freed with the pool
  }
  BOOST_TEST(counting.live.size() == 1u);
  BOOST_TEST(survivor->view() == "still here");
  survivor.reset();  // freed, not kept: ~Fresh checks
}

BOOST_FIXTURE_TEST_CASE(empty_blocks_and_many_at_once, Fresh) {
  StagingPool pool(true, 4096, counting_allocator());
  BOOST_TEST(pool.allocate(0)->size() == 0u);
  std::vector<std::shared_ptr<StagedBytes>> held;
  for (int i = 0; i < 64; ++i) held.push_back(pool.allocate(100));
  std::uint64_t pinned = 0;
  for (const auto& b : held) pinned += b->pinned() ? b->size() : 0;
  BOOST_TEST(pinned <= 4096u);
  BOOST_TEST(pool.stats().pinned_bytes <= 4096u);
}

// This build's runtime, on any machine: a probe that answers, and without a
// device a clear reason and no page-locked memory.
BOOST_AUTO_TEST_CASE(the_runtime_says_whether_a_gpu_answers) {
  const gpu::Probe p = gpu::probe();
  BOOST_TEST_MESSAGE("CUDA in this build: "
                     << gpu::built_with_cuda() << ", runtime " << p.runtime_version << ", devices "
                     << p.devices
                     << (p.devices ? ", first " + p.first_device : ", why none: " + p.why_none));
  if (!gpu::built_with_cuda()) BOOST_TEST(p.runtime_version == 0);
  if (p.devices > 0) return;  // the gpu case below
  BOOST_TEST(!p.why_none.empty());
  std::string error;
  BOOST_TEST(gpu::alloc_pinned(4096, &error) == nullptr);
  BOOST_TEST(!error.empty());
  // The executor's pool over it still works, in ordinary memory.
  StagingPool pool(true, 1 << 20);
  auto block = pool.copy_of("on the CPU");
  BOOST_TEST(!block->pinned());
  BOOST_TEST(block->view() == "on the CPU");
}

BOOST_AUTO_TEST_CASE(pinned_blocks_cross_to_the_device_and_back,
                     *boost::unit_test::label("gpu") * boost::unit_test::precondition(has_gpu)) {
  StagingPool pool(true, 64 << 20);
  std::string pattern(32 << 20, '\0');
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>(i * 131 + 7);
  auto source = pool.copy_of(pattern);
  auto target = pool.allocate(pattern.size());
  BOOST_TEST_REQUIRE(source->pinned());
  BOOST_TEST_REQUIRE(target->pinned());
  std::string error;
  BOOST_TEST_REQUIRE(gpu::round_trip(source->data(), target->data(), pattern.size(), &error),
                     error);
  BOOST_TEST((target->view() == pattern));
}
