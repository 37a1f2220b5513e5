// Token buckets of tenant rates (kernel/rate_limits.h), on a clock the test
// moves: a burst, then one request per refill, the wait a refusal names,
// per tenant and per kind, and a reload that changes the rate.
#define BOOST_TEST_MODULE rate_limits
#include <boost/test/unit_test.hpp>

#include "kernel/rate_limits.h"

using memos::kernel::Code;
using memos::kernel::RateLimits;
using memos::policies::Rate;
using memos::policies::TenantPolicy;
using R = memos::wire::Request;
using namespace std::chrono_literals;

namespace {

TenantPolicy rated(double writes_per_s, double burst) {
  TenantPolicy p;
  p.file = "tenants.d/t.toml";
  p.writes = Rate{writes_per_s, burst};
  p.chats = Rate{1.0 / 60, 1};  // one a minute
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_burst_then_one_per_refill_and_the_refusal_says_when) {
  RateLimits limits;
  TenantPolicy p = rated(2, 3);
  auto t0 = RateLimits::Clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) BOOST_TEST(limits.take(7, R::ADD, p, t0).ok());
  auto refused = limits.take(7, R::UPDATE, p, t0);
  BOOST_TEST((refused.code == Code::rate_limited));
  BOOST_TEST(refused.retryable);
  BOOST_TEST(refused.retry_after_ms == 500u);  // half a second to one token at 2/s
  BOOST_TEST(refused.message.find("writes_per_s of the tenant's policy reached") !=
             std::string::npos);
  BOOST_TEST(refused.message.find("tenants.d/t.toml") != std::string::npos);
  // A refusal takes nothing: at +500 ms there is exactly one token.
  BOOST_TEST(limits.take(7, R::REMOVE, p, t0 + 500ms).ok());
  BOOST_TEST(!limits.take(7, R::REMOVE, p, t0 + 500ms).ok());
  // Idle for long, the bucket holds its burst and no more.
  auto later = t0 + 1h;
  for (int i = 0; i < 3; ++i) BOOST_TEST(limits.take(7, R::SET_STATE, p, later).ok());
  BOOST_TEST(!limits.take(7, R::ROLLBACK, p, later).ok());
}

BOOST_AUTO_TEST_CASE(buckets_are_per_tenant_and_per_kind_and_unrated_requests_are_free) {
  RateLimits limits;
  TenantPolicy p = rated(1, 1);
  auto t0 = RateLimits::Clock::time_point{} + 1h;
  BOOST_TEST(limits.take(1, R::ADD, p, t0).ok());
  BOOST_TEST(!limits.take(1, R::ADD, p, t0).ok());
  BOOST_TEST(limits.take(2, R::ADD, p, t0).ok());  // another tenant's bucket
  // Searches have no rate in this policy; reads are never rated.
  for (int i = 0; i < 100; ++i) {
    BOOST_TEST(limits.take(1, R::SEARCH, p, t0).ok());
    BOOST_TEST(limits.take(1, R::GET, p, t0).ok());
  }
  // Chats and prefills share one bucket, per minute.
  BOOST_TEST(limits.take(1, R::CHAT, p, t0).ok());
  auto chat = limits.take(1, R::KV_PREFILL, p, t0);
  BOOST_TEST((chat.code == Code::rate_limited));
  BOOST_TEST(chat.retry_after_ms == 60000u);
  BOOST_TEST(chat.message.find("chats_per_min") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_new_rate_keeps_the_tokens_up_to_its_burst) {
  RateLimits limits;
  auto t0 = RateLimits::Clock::time_point{} + 1h;
  TenantPolicy generous = rated(100, 100);
  BOOST_TEST(limits.take(3, R::ADD, generous, t0).ok());  // 99 left
  TenantPolicy strict = rated(1, 2);
  BOOST_TEST(limits.take(3, R::ADD, strict, t0).ok());  // clamped to 2, takes 1
  BOOST_TEST(limits.take(3, R::ADD, strict, t0).ok());
  BOOST_TEST(!limits.take(3, R::ADD, strict, t0).ok());
}

BOOST_AUTO_TEST_CASE(full_buckets_are_forgotten_so_many_uids_cannot_grow_the_map) {
  RateLimits limits;
  TenantPolicy p = rated(1000, 1000);
  auto t0 = RateLimits::Clock::time_point{} + 1h;
  for (std::uint32_t uid = 0; uid < 10000; ++uid) {
    BOOST_TEST_REQUIRE(limits.take(uid, R::ADD, p, t0 + uid * 10ms).ok());
  }
  // Each bucket refills its one token in a millisecond: sweeps kept the map
  // near the sweep threshold rather than at 10000.
  BOOST_TEST(limits.buckets() <= 4097u);
}
