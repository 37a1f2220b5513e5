// memctl metrics through a real memosd: every answered request is counted
// by operation and code with its latency, each tenant's memory is there,
// the text passes `promtool check metrics` (Debian's prometheus), the
// same text is written to metrics.textfile, and a peer that is not an
// admin is refused them and the cluster's status (a real, separate Unix user).
#define BOOST_TEST_MODULE metrics
#include <sys/stat.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::testing::run_command;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

// promtool's verdict on `text` ("" when it passes).
std::string promtool_check(const std::string& text, const std::string& dir) {
  const std::string path = dir + "/metrics.prom";
  std::ofstream(path) << text;
  std::string out, err;
  const int rc = run_command({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + path},
                             &out, &err);
  return rc == 0 ? "" : "promtool: " + out + err;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(requests_are_counted_by_operation_and_code) {
  memos::testing::Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  for (const char* text : {"the first note", "the second note", "the third note"})
    BOOST_REQUIRE(c->add("notes", {text}).ok());
  BOOST_REQUIRE(c->search("notes", "note").ok());
  BOOST_TEST((c->get("notes", 12345).error().code == memos::ErrorCode::not_found));
  BOOST_TEST((c->cube_create("bad/name").error().code == memos::ErrorCode::bad_request));
  auto m = c->metrics();
  BOOST_REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
  const std::string& text = *m;
  BOOST_TEST(has_line(text, "memosd_requests_total{operation=\"add\",code=\"ok\"} 3"), text);
  BOOST_TEST(has_line(text, "memosd_requests_total{operation=\"search\",code=\"ok\"} 1"), text);
  BOOST_TEST(has_line(text, "memosd_requests_total{operation=\"get\",code=\"notFound\"} 1"), text);
  BOOST_TEST(has_line(text, "memosd_requests_total{operation=\"cubeCreate\",code=\"ok\"} 1"));
  BOOST_TEST(
      has_line(text, "memosd_requests_total{operation=\"cubeCreate\",code=\"badRequest\"} 1"));
  // The histogram: every add below +Inf, counted once.
  BOOST_TEST(
      has_line(text, "memosd_request_duration_seconds_bucket{operation=\"add\",le=\"+Inf\"} 3"));
  BOOST_TEST(has_line(text, "memosd_request_duration_seconds_count{operation=\"add\"} 3"));
  // The tenant (this test's uid) holds one cube of three memories.
  const std::string uid = std::to_string(::geteuid());
  BOOST_TEST(has_line(text, "memosd_tenant_cubes{tenant=\"" + uid + "\"} 1"), text);
  BOOST_TEST(has_line(text, "memosd_tenant_items{tenant=\"" + uid + "\"} 3"), text);
  BOOST_TEST(has_line(text, "memosd_index_backlog 0"), text);
  BOOST_TEST(text.find("memosd_plugin_loaded{plugin=\"hash-embedder\",state=\"loaded\"") !=
                 std::string::npos,
             text);
  // The metrics request itself is counted from the next scrape on.
  auto again = c->metrics();
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(has_line(*again, "memosd_requests_total{operation=\"metrics\",code=\"ok\"} 1"));
  // memctl prints the same text.
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "metrics"}, &out, &err) ==
             0);
  BOOST_TEST(out.find("# TYPE memosd_requests_total counter") != std::string::npos, out + err);
}

BOOST_AUTO_TEST_CASE(the_text_passes_promtool,
                     *boost::unit_test::label("promtool") *
                         boost::unit_test::precondition(memos::testing::HasProgram{kPromtool})) {
  TempDir dir;
  memos::testing::Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  BOOST_REQUIRE(c->add("notes", {"a note with \"quotes\" and a \\ backslash"}).ok());
  BOOST_TEST((c->get("notes", 1).error().code == memos::ErrorCode::not_found));
  auto m = c->metrics();
  BOOST_REQUIRE(m.ok());
  const std::string verdict = promtool_check(*m, dir.path());
  BOOST_TEST(verdict.empty(), verdict << "\n" << *m);
}

BOOST_AUTO_TEST_CASE(the_textfile_is_written_and_replaced_whole) {
  TempDir dir;
  const std::string file = dir.path() + "/memosd.prom";
  memos::testing::Daemon d(dir.path(), "[metrics]\ntextfile = \"" + file + "\"\ninterval_s = 1\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  // Written within an interval or two of the create: a later file counts it.
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = read_file(file);
    if (has_line(text, "memosd_requests_total{operation=\"cubeCreate\",code=\"ok\"} 1")) break;
    std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(has_line(text, "memosd_requests_total{operation=\"cubeCreate\",code=\"ok\"} 1"), text);
  BOOST_TEST(!std::filesystem::exists(file + ".tmp"));
  if (::access(kPromtool, X_OK) == 0) {
    const std::string verdict = promtool_check(text, dir.path());
    BOOST_TEST(verdict.empty(), verdict);
  }
}

BOOST_AUTO_TEST_CASE(a_peer_that_is_no_admin_is_refused,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  memos::testing::Daemon d(dir.path(), "");
  memos::testing::ChildAs child(42451, [&] {
    auto c = memos::Client::connect(d.process->socket());
    if (!c.ok()) return "cannot connect: " + c.error().message;
    auto m = c.value()->metrics();
    if (m.ok()) return std::string("a tenant read the metrics");
    if (m.error().code != memos::ErrorCode::permission_denied)
      return "refused with " + m.error().message;
    // So is the cluster's roster, the operator's too.
    auto cluster = c.value()->cluster_status();
    if (cluster.ok()) return std::string("a tenant read the cluster's status");
    if (cluster.error().code != memos::ErrorCode::permission_denied)
      return "cluster status refused with " + cluster.error().message;
    // And stepping the log's leader down, which every tenant's writes wait on.
    auto stepped = c.value()->cluster_step_down();
    if (stepped.ok()) return std::string("a tenant stepped the log's leader down");
    if (stepped.error().code != memos::ErrorCode::permission_denied)
      return "cluster step-down refused with " + stepped.error().message;
    return std::string();
  });
  const std::string report = child.report();
  BOOST_TEST(report.empty(), report);
}
