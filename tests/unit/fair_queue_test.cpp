// The worker pool's fair queue (kernel/fair_queue.h): tenants share by
// weight while they wait, an idle tenant saves no credit, a tenant's
// connections take turns, and idle tenants are forgotten.
#define BOOST_TEST_MODULE fair_queue
#include <boost/test/unit_test.hpp>

#include <map>

#include "kernel/fair_queue.h"

using memos::kernel::FairQueue;

namespace {

void push(FairQueue& q, std::uint32_t tenant, int n, std::uint32_t weight = 100,
          std::uint64_t connection = 0) {
  for (int i = 0; i < n; ++i) q.push({tenant, weight, connection, [] {}});
}

// Who the next `n` jobs belong to, counted per tenant.
std::map<std::uint32_t, int> take(FairQueue& q, int n) {
  std::map<std::uint32_t, int> got;
  for (int i = 0; i < n; ++i) {
    auto job = q.pop();
    BOOST_REQUIRE(job.has_value());
    ++got[job->tenant];
  }
  return got;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_flood_does_not_starve_a_tenant_that_arrives_later) {
  FairQueue q;
  push(q, 1, 1000);  // the flood, queued first
  push(q, 2, 10);
  auto got = take(q, 20);
  BOOST_TEST(got[2] == 10);  // every other turn, not after 1000
  BOOST_TEST(got[1] == 10);
  BOOST_TEST(q.size() == 990u);
}

BOOST_AUTO_TEST_CASE(waiting_tenants_share_by_weight) {
  FairQueue q;
  push(q, 1, 600, 200);
  push(q, 2, 600, 100);
  auto got = take(q, 300);
  BOOST_TEST(got[1] >= 199);  // 2:1, give or take a tie
  BOOST_TEST(got[1] <= 201);
}

BOOST_AUTO_TEST_CASE(an_idle_tenant_saves_no_credit) {
  FairQueue q;
  push(q, 1, 100);
  take(q, 100);  // tenant 1 alone: nobody waited
  push(q, 2, 100);
  push(q, 1, 100);
  auto got = take(q, 20);
  BOOST_TEST(got[1] == 10);
  BOOST_TEST(got[2] == 10);
}

BOOST_AUTO_TEST_CASE(a_tenants_connections_take_turns_in_order) {
  FairQueue q;
  for (int i = 0; i < 100; ++i) q.push({1, 100, 7, [] {}});
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) q.push({1, 100, 8, [&order, i] { order.push_back(i); }});
  int from_8 = 0;
  for (int i = 0; i < 6; ++i) {
    auto job = q.pop();
    BOOST_REQUIRE(job.has_value());
    if (job->connection == 8) {
      ++from_8;
      job->work();
    }
  }
  BOOST_TEST(from_8 == 3);
  BOOST_TEST((order == std::vector<int>{0, 1, 2}));  // one connection's jobs keep their order
}

BOOST_AUTO_TEST_CASE(tenants_that_passed_through_are_forgotten) {
  FairQueue q;
  push(q, 999999, 100000);  // one tenant keeps work waiting throughout
  for (std::uint32_t t = 0; t < 5000; ++t) {
    push(q, t, 1);
    BOOST_REQUIRE(q.pop().has_value());
    BOOST_REQUIRE(q.pop().has_value());
  }
  BOOST_TEST(q.flows() < 1100u);
  while (q.pop()) {
  }
  BOOST_TEST(q.empty());
  BOOST_TEST(q.flows() == 0u);
}
