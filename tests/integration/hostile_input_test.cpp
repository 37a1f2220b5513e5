// Hostile input found by the attack review (issue 13), each refused with a
// clear error while nothing is written and the daemon stays up: embedded
// NULs, oversized or invalid sessions on every write path, a TTL at the end
// of time, and a search naming tens of thousands of cubes.
#define BOOST_TEST_MODULE hostile_input
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "tests/support/daemon_fixture.h"
#include "tests/support/printing.h"
#include "tests/support/raw_request.h"

using memos::testing::Daemon;
using memos::testing::raw_request;
using memos::testing::why;
using namespace std::string_literals;

namespace {

capnp::Text::Reader text(const std::string& s) {
  return {s.data(), s.size()};
}

bool refused_as_bad_input(const memos::testing::RawReply& r) {
  return r.received && r.is_error &&
         (r.code == memos::wire::ErrorCode::BAD_REQUEST ||
          r.code == memos::wire::ErrorCode::TOO_LARGE);
}

}  // namespace

// capnp's conversions stop at a NUL: "before\0after" once became "before",
// and an add to cube "c2\0zzz" landed in "c2".
BOOST_AUTO_TEST_CASE(embedded_nuls_are_refused_not_cut) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c2").ok());
  const std::string text_with_nul = "before\0after"s;
  auto nul_text = raw_request(d.process->socket(), [&](auto r) {
    auto a = r.initAdd();
    a.setCube("c2");
    a.setText(text(text_with_nul));
  });
  BOOST_TEST(refused_as_bad_input(nul_text), nul_text.message);
  BOOST_TEST(nul_text.message.find("NUL") != std::string::npos, nul_text.message);

  const std::string cube_with_nul = "c2\0zzz"s;
  auto nul_cube = raw_request(d.process->socket(), [&](auto r) {
    auto a = r.initAdd();
    a.setCube(text(cube_with_nul));
    a.setText("lands nowhere");
  });
  BOOST_TEST(nul_cube.is_error, nul_cube.message);

  const std::string session_with_nul = "s\0x"s;
  auto nul_session = raw_request(d.process->socket(), [&](auto r) {
    auto a = r.initAdd();
    a.setCube("c2");
    a.setText("fine text");
    a.setSessionId(text(session_with_nul));
  });
  BOOST_TEST(refused_as_bad_input(nul_session), nul_session.message);

  auto shown = c->cube_show("c2");
  BOOST_REQUIRE_MESSAGE(shown.ok(), why(shown));
  BOOST_TEST(shown->live_items == 0u);  // nothing landed in "c2"
}

// Update once stored any session: 10 MB, invalid UTF-8. Every write path
// checks it the same way.
BOOST_AUTO_TEST_CASE(update_checks_the_session_as_add_does) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  memos::NewItem item;
  item.text = "Maya drinks her coffee black.";
  auto added = c->add("c", item);
  BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
  const std::uint64_t id = added->id;
  for (const std::string& session :
       {std::string(10u << 20, 's'), "\xff\xfe"s, "ok\0hidden"s, "\xc0\xaf"s}) {
    auto r = raw_request(d.process->socket(), [&](auto req) {
      auto u = req.initUpdate();
      u.setCube("c");
      u.setItemId(id);
      u.setText("Maya drinks her coffee with milk.");
      u.setSessionId(text(session));
    });
    BOOST_TEST(refused_as_bad_input(r), session.substr(0, 16) << ": " << r.message);
  }
  auto history = c->history("c", id);
  BOOST_REQUIRE_MESSAGE(history.ok(), why(history));
  BOOST_TEST(history->size() == 1u);  // no update was written
}

// now + 2^63-1 wrapped negative, and retention tombstoned the item at once.
BOOST_AUTO_TEST_CASE(a_ttl_at_the_end_of_time_never_expires) {
  Daemon d("[store]\nretention_interval_ms = 100\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  memos::NewItem item;
  item.text = "This fact is kept for as long as anything is.";
  item.ttl_ms = std::numeric_limits<std::int64_t>::max();
  auto added = c->add("c", item);
  BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
  BOOST_TEST(added->expires_at_ms == std::numeric_limits<std::int64_t>::max());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // several retention runs
  auto got = c->get("c", added->id);
  BOOST_REQUIRE_MESSAGE(got.ok(), why(got));
  BOOST_TEST(!got->deleted);
}

// 80,000 extra cubes froze the loop for seconds before the 64-cube limit was
// checked; the limit now comes first.
BOOST_AUTO_TEST_CASE(a_search_naming_too_many_cubes_is_refused_first) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  auto many = raw_request(d.process->socket(), [](auto r) {
    auto s = r.initSearch();
    s.setCube("c");
    s.setQuery("q");
    auto cubes = s.initCubes(80000);
    for (unsigned i = 0; i < cubes.size(); ++i) cubes.set(i, "c" + std::to_string(i));
  });
  BOOST_TEST(refused_as_bad_input(many), many.message);
  BOOST_TEST(many.message.find("64") != std::string::npos, many.message);
  // The daemon still answers.
  BOOST_TEST(c->cube_list().ok());
}
