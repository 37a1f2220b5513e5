// The job table (kernel/jobs.h): ids and states per tenant, cancellation,
// the bound on open jobs, finished jobs trimmed, and turns taken in order.
#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

#include <vector>

#include "kernel/jobs.h"

using memos::kernel::Code;
using memos::kernel::Job;
using memos::kernel::JobState;
using memos::kernel::JobTable;

namespace {

std::uint64_t add(JobTable& t, std::uint32_t tenant, const std::string& name = "a") {
  Job j;
  j.tenant = tenant;
  j.kind = "distill";
  j.name = name;
  std::uint64_t id = 0;
  BOOST_REQUIRE(t.add(j, &id).ok());
  return id;
}

void finish(JobTable& t, std::uint64_t id, JobState state = JobState::done) {
  t.update(id, [&](Job& j) { j.state = state; });
}

}  // namespace

BOOST_AUTO_TEST_CASE(jobs_are_the_tenants_own) {
  JobTable t;
  const auto a = add(t, 1), b = add(t, 2);
  BOOST_TEST(a != b);
  Job j;
  BOOST_TEST(t.get(1, a, &j).ok());
  BOOST_TEST((j.state == JobState::queued));
  BOOST_TEST(j.created_at_ms > 0);
  // Another tenant's job reads as absent, and cannot be cancelled.
  BOOST_TEST((t.get(1, b, &j).code == Code::not_found));
  BOOST_TEST((t.cancel(1, b, &j).code == Code::not_found));
  BOOST_TEST(t.list(1).size() == 1u);
  BOOST_TEST(t.list(3).empty());
}

BOOST_AUTO_TEST_CASE(cancelling_a_job_that_holds_no_turn_ends_it_at_once) {
  JobTable t;
  const auto a = add(t, 1);
  Job j;
  BOOST_REQUIRE(t.cancel(1, a, &j).ok());
  BOOST_TEST((j.state == JobState::cancelled));
  BOOST_TEST(j.finished_at_ms > 0);
  BOOST_TEST(t.cancel_requested(a));
  BOOST_TEST((t.cancel(1, a, &j).code == Code::conflict));
  // A running one is only asked: its next step stops it.
  const auto b = add(t, 1);
  finish(t, b, JobState::running);
  BOOST_REQUIRE(t.cancel(1, b, &j).ok());
  BOOST_TEST((j.state == JobState::running));
  BOOST_TEST(t.cancel_requested(b));
  // A job the table forgot counts as cancelled (its runner stops).
  BOOST_TEST(t.cancel_requested(9999));
}

BOOST_AUTO_TEST_CASE(open_jobs_are_bounded_and_finished_ones_trimmed) {
  JobTable t;
  std::vector<std::uint64_t> open;
  for (std::size_t i = 0; i < JobTable::kMaxOpenPerTenant; ++i) open.push_back(add(t, 1));
  Job j;
  std::uint64_t id = 0;
  j.tenant = 1;
  const auto refused = t.add(j, &id);
  BOOST_TEST((refused.code == Code::busy));
  BOOST_TEST(refused.retryable);
  j.tenant = 2;  // another tenant is not bound by tenant 1's
  BOOST_TEST(t.add(j, &id).ok());
  finish(t, open[0]);
  open.push_back(add(t, 1));  // room again
  for (auto k : open) finish(t, k);
  for (std::size_t i = 0; i < JobTable::kKeptFinished + 5; ++i) finish(t, add(t, 1));
  std::size_t finished = 0;
  for (const Job& k : t.list(1)) finished += k.finished();
  BOOST_TEST(finished == JobTable::kKeptFinished);
  BOOST_TEST((t.get(1, open[0], &j).code == Code::not_found));  // the oldest went first
}

BOOST_AUTO_TEST_CASE(jobs_take_turns_in_the_order_they_ask) {
  JobTable t;
  const auto a = add(t, 1), b = add(t, 1), c = add(t, 2);
  std::vector<std::uint64_t> started;
  for (auto id : {a, b, c}) t.take_turn(id, [&started, id] { started.push_back(id); });
  BOOST_TEST((started == std::vector<std::uint64_t>{a}));
  // c is cancelled while it waits: it leaves the line without starting.
  Job j;
  BOOST_REQUIRE(t.cancel(2, c, &j).ok());
  BOOST_TEST((j.state == JobState::cancelled));
  // a holds the turn: cancelling it only asks, and its end passes it on.
  BOOST_REQUIRE(t.cancel(1, a, &j).ok());
  BOOST_TEST((j.state == JobState::queued));
  BOOST_TEST((started == std::vector<std::uint64_t>{a}));
  finish(t, a, JobState::cancelled);
  BOOST_TEST((started == std::vector<std::uint64_t>{a, b}));
  finish(t, b, JobState::failed);
  BOOST_TEST((started == std::vector<std::uint64_t>{a, b}));
  // The line is empty: the next one starts at once.
  const auto d = add(t, 1);
  t.take_turn(d, [&started, d] { started.push_back(d); });
  BOOST_TEST((started == std::vector<std::uint64_t>{a, b, d}));
}
