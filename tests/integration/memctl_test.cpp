// memctl against a real memosd: output, --json, and exit statuses.
#define BOOST_TEST_MODULE memctl
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "tests/support/memosd_process.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;

namespace {

struct Fixture {
  Fixture() : process(MEMOS_MEMOSD, dir.path()) {
    BOOST_REQUIRE_MESSAGE(process.start(), process.log());
  }
  // Runs memctl with --socket; returns the exit status.
  int memctl(std::vector<std::string> args, std::string* out = nullptr,
             std::string* err = nullptr) {
    args.insert(args.begin(), {MEMOS_MEMCTL, "--socket", process.socket()});
    std::string o, e;
    int rc = run_command(args, &o, &e);
    if (out) *out = o;
    if (err) *err = e;
    return rc;
  }
  TempDir dir;
  MemosdProcess process;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(round_trip_with_human_output, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "maya"}, &out) == 0);
  BOOST_TEST(contains(out, "created cube maya"));
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts", "--tag", "health", "--meta",
                     "source=chat=1"},
                    &out) == 0);
  std::string id = trim(out);
  BOOST_TEST(id.size() == 13u);
  BOOST_TEST(memctl({"add", "maya", "Maya swims on Saturdays", "--tag", "hobby"}) == 0);

  BOOST_TEST(memctl({"search", "maya", "peanut allergy", "-k", "1"}, &out) == 0);
  BOOST_TEST(contains(out, id));
  BOOST_TEST(contains(out, "[health]"));
  BOOST_TEST(memctl({"search", "maya", "Maya", "--tag", "hobby"}, &out) == 0);
  BOOST_TEST(contains(out, "swims"));
  BOOST_TEST(!contains(out, "peanuts"));

  BOOST_TEST(memctl({"get", "maya", id}, &out) == 0);
  BOOST_TEST(contains(out, "meta      source=chat=1"));  // the value keeps its '='
  BOOST_TEST(memctl({"update", "maya", id, "Maya is allergic to peanuts and cashews"}, &out) == 0);
  BOOST_TEST(contains(out, "version 2"));
  BOOST_TEST(memctl({"rm", "maya", id}, &out) == 0);
  BOOST_TEST(contains(out, "deleted"));
  BOOST_TEST(memctl({"history", "maya", id}, &out) == 0);
  BOOST_TEST(contains(out, "v1"));
  BOOST_TEST(contains(out, "v2"));
  BOOST_TEST(contains(out, "v3"));
  BOOST_TEST(contains(out, "[deleted]"));
  BOOST_TEST(memctl({"get", "maya", id, "--version", "1"}, &out) == 0);
  BOOST_TEST(contains(out, "text      Maya is allergic to peanuts"));

  BOOST_TEST(memctl({"get", "maya", id}, &out, &err) == 1);
  BOOST_TEST(contains(err, "memctl: notFound:"), err);
  BOOST_TEST(memctl({"cube", "ls"}, &out) == 0);
  BOOST_TEST(contains(out, "maya"));
  BOOST_TEST(memctl({"cube", "show", "maya"}, &out) == 0);
  BOOST_TEST(contains(out, "live items 1"));
  BOOST_TEST(memctl({"cube", "rm", "maya"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "conflict"));
  BOOST_TEST(memctl({"cube", "rm", "maya", "--force"}) == 0);
  BOOST_TEST(memctl({"status"}, &out) == 0);
  BOOST_TEST(contains(out, "memosd "));
}

BOOST_FIXTURE_TEST_CASE(lifecycle_rollback_diff_and_changing_facts, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "f"}) == 0);
  BOOST_TEST(memctl({"add", "f", "Maya lives in Alfama", "--tag", "home", "--valid-from",
                     "2021-03-01", "--session", "chat-7", "--importance", "0.8"},
                    &out) == 0);
  std::string old_home = trim(out);
  BOOST_TEST(memctl({"add", "f", "Maya lives in Almada", "--tag", "home", "--valid-from",
                     "2026-10-15T00:00Z", "--supersedes", old_home},
                    &out) == 0);
  std::string new_home = trim(out);
  // Now only the new fact holds; in 2024 the old one did.
  BOOST_TEST(memctl({"search", "f", "where does Maya live"}, &out) == 0);
  BOOST_TEST(contains(out, new_home));
  BOOST_TEST(!contains(out, old_home));
  BOOST_TEST(memctl({"search", "f", "where does Maya live", "--as-of", "2024-06-01"}, &out) == 0);
  BOOST_TEST(contains(out, old_home));
  BOOST_TEST(!contains(out, new_home));
  BOOST_TEST(memctl({"get", "f", old_home}, &out) == 0);
  BOOST_TEST(contains(out, "until 2026-10-15T00:00:00.000Z"), out);
  BOOST_TEST(memctl({"get", "f", old_home, "--version", "1"}, &out) == 0);
  BOOST_TEST(contains(out, "session chat-7"), out);  // provenance of that version
  BOOST_TEST(memctl({"history", "f", old_home}, &out) == 0);
  BOOST_TEST(contains(out, "[valid until 2026-10-15T00:00:00.000Z]"), out);

  // Archive hides from search; freeze makes it immutable.
  BOOST_TEST(memctl({"archive", "f", new_home}, &out) == 0);
  BOOST_TEST(contains(out, "(archived)"));
  BOOST_TEST(memctl({"search", "f", "Almada"}, &out) == 0);
  BOOST_TEST(!contains(out, new_home));
  BOOST_TEST(memctl({"search", "f", "Almada", "--archived"}, &out) == 0);
  BOOST_TEST(contains(out, new_home));
  BOOST_TEST(memctl({"freeze", "f", new_home}) == 0);
  BOOST_TEST(memctl({"update", "f", new_home, "changed"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "conflict"), err);
  BOOST_TEST(memctl({"rm", "f", new_home}, &out, &err) == 1);
  BOOST_TEST(memctl({"activate", "f", new_home}) == 0);
  BOOST_TEST(memctl({"activate", "f", new_home}, &out, &err) == 1);  // already active

  // Rollback and diff.
  BOOST_TEST(memctl({"update", "f", new_home, "Maya lives in Barreiro", "--tag", "moved"}) == 0);
  BOOST_TEST(memctl({"diff", "f", new_home, "1"}, &out) == 0);
  BOOST_TEST(contains(out, "- Maya lives in Almada"), out);
  BOOST_TEST(contains(out, "+ Maya lives in Barreiro"), out);
  BOOST_TEST(contains(out, "tag       +moved"), out);
  BOOST_TEST(contains(out, "tag       -home"), out);
  BOOST_TEST(memctl({"rollback", "f", new_home, "1"}, &out) == 0);
  BOOST_TEST(memctl({"get", "f", new_home}, &out) == 0);
  BOOST_TEST(contains(out, "text      Maya lives in Almada"), out);
  BOOST_TEST(memctl({"--json", "diff", "f", new_home, "1"}, &out) == 0);
  BOOST_TEST(contains(out, "\"text_changed\":false"), out);

  // Bad times and durations are usage errors.
  BOOST_TEST(memctl({"add", "f", "x", "--valid-from", "yesterday"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "f", "x", "--valid-from", "2026-02-30"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "f", "x", "--ttl", "5 parsecs"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "f", "x", "--importance", "7"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "f", "x", "--supersedes", "nonsense"}, &out, &err) == 2);
  // A validity that ends before it starts is refused by the daemon.
  BOOST_TEST(memctl({"add", "f", "x", "--valid-from", "2026-01-02", "--valid-to", "2026-01-01"},
                    &out, &err) == 1);
}

BOOST_FIXTURE_TEST_CASE(json_output_on_every_verb, Fixture) {
  std::string out;
  BOOST_TEST(memctl({"--json", "cube", "create", "j"}, &out) == 0);
  BOOST_TEST(contains(out, "\"name\":\"j\""));
  BOOST_TEST(memctl({"add", "j", "line one\nline \"two\"\ttab", "--json"}, &out) == 0);
  BOOST_TEST(contains(out, "\"text\":\"line one\\nline \\\"two\\\"\\ttab\""), out);
  auto at = out.find("\"id\":\"");
  BOOST_REQUIRE(at != std::string::npos);
  std::string id = out.substr(at + 6, 13);
  BOOST_TEST(memctl({"--json", "get", "j", id}, &out) == 0);
  BOOST_TEST(contains(out, "\"version\":1"));
  BOOST_TEST(memctl({"--json", "update", "j", id, "new"}, &out) == 0);
  BOOST_TEST(contains(out, "\"version\":2"));
  BOOST_TEST(memctl({"--json", "history", "j", id}, &out) == 0);
  BOOST_TEST(out.front() == '[');
  BOOST_TEST(memctl({"--json", "search", "j", "new"}, &out) == 0);
  BOOST_TEST(contains(out, "\"score\":"));
  BOOST_TEST(memctl({"--json", "cube", "ls"}, &out) == 0);
  BOOST_TEST(out.front() == '[');
  BOOST_TEST(memctl({"--json", "cube", "show", "j"}, &out) == 0);
  BOOST_TEST(contains(out, "\"live_items\":1"));
  BOOST_TEST(memctl({"--json", "status"}, &out) == 0);
  BOOST_TEST(contains(out, "\"pid\":"));
  BOOST_TEST(memctl({"--json", "rm", "j", id}, &out) == 0);
  BOOST_TEST(contains(out, "\"deleted\":true"));
  BOOST_TEST(memctl({"--json", "get", "j", id}, &out) == 1);
  BOOST_TEST(contains(out, "{\"error\":{\"code\":\"notFound\""), out);
  BOOST_TEST(memctl({"--json", "cube", "rm", "j"}, &out) == 0);
  BOOST_TEST(contains(out, "\"removed\":\"j\""));
}

BOOST_FIXTURE_TEST_CASE(exit_status_two_on_bad_usage, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({}, &out, &err) == 2);
  BOOST_TEST(memctl({"frobnicate"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "c"}, &out, &err) == 2);
  BOOST_TEST(memctl({"get", "c", "not-an-id"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "is not an item id"), err);
  BOOST_TEST(memctl({"get", "c", "038GWRXC9G000", "--version", "0"}, &out, &err) == 2);
  BOOST_TEST(memctl({"search", "c", "q", "-k", "0"}, &out, &err) == 2);
  BOOST_TEST(memctl({"search", "c", "q", "-k", "many"}, &out, &err) == 2);
  BOOST_TEST(memctl({"add", "c", "text", "--meta", "novalue"}, &out, &err) == 2);
  BOOST_TEST(memctl({"cube"}, &out, &err) == 2);
  // Names of modes, tiers and states are checked before connecting, and the
  // error lists the accepted ones.
  BOOST_TEST(memctl({"search", "c", "q", "--mode", "psychic"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "'psychic' is unknown (dense, lexical or hybrid)"), err);
  BOOST_TEST(memctl({"search", "c", "q", "--mode", "Dense"}, &out, &err) == 2);
  BOOST_TEST(memctl({"search", "c", "q", "--mode", ""}, &out, &err) == 2);
  BOOST_TEST(memctl({"search", "c", "q", "--tier", "ram"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "(plaintext, activation or parametric)"), err);
  BOOST_TEST(memctl({"search", "c", "q", "--state", "deleted"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "(active, archived or frozen)"), err);
  BOOST_TEST(memctl({"chat", "c", "hi", "--mode", "psychic"}, &out, &err) == 2);
}

BOOST_FIXTURE_TEST_CASE(exit_status_one_when_refused_or_unreachable, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "bad/name"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "badRequest"));
  BOOST_TEST(memctl({"search", "nope", "q"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "notFound"));
  int rc =
      run_command({MEMOS_MEMCTL, "--socket", dir.path() + "/absent.sock", "status"}, &out, &err);
  BOOST_TEST(rc == 1);
  BOOST_TEST(contains(err, "is memosd running?"), err);
  // Bad usage is reported as such even with no daemon to talk to.
  rc = run_command({MEMOS_MEMCTL, "--socket", dir.path() + "/absent.sock", "get", "c", "bad-id"},
                   &out, &err);
  BOOST_TEST(rc == 2);
  // MEMOS_SOCKET is honoured when --socket is absent.
  rc = run_command({MEMOS_MEMCTL, "status"}, &out, &err, {"MEMOS_SOCKET=" + process.socket()});
  BOOST_TEST(rc == 0, err);
}

BOOST_FIXTURE_TEST_CASE(cube_snapshots_and_their_diff, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "s"}) == 0);
  BOOST_TEST(memctl({"add", "s", "first memory"}, &out) == 0);
  std::string first = trim(out);
  BOOST_TEST(memctl({"cube", "snapshot", "s", "before"}, &out) == 0);
  BOOST_TEST(contains(out, "snapshot before of s"), out);
  BOOST_TEST(memctl({"cube", "snapshot", "s", "before"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "alreadyExists"), err);
  BOOST_TEST(memctl({"cube", "snapshot", "s", "bad/tag"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "badRequest"), err);
  BOOST_TEST(memctl({"add", "s", "second memory"}, &out) == 0);
  std::string second = trim(out);
  BOOST_TEST(memctl({"update", "s", first, "first memory, corrected"}) == 0);
  BOOST_TEST(memctl({"cube", "snapshot", "s", "after"}) == 0);
  BOOST_TEST(memctl({"rm", "s", second}) == 0);

  BOOST_TEST(memctl({"cube", "snapshots", "s"}, &out) == 0);
  BOOST_TEST(out.find("before") < out.find("after"), out);
  BOOST_TEST(memctl({"cube", "diff", "s", "before", "after"}, &out) == 0);
  BOOST_TEST(contains(out, "~ " + first + "  first memory, corrected"), out);
  BOOST_TEST(contains(out, "+ " + second + "  second memory"), out);
  BOOST_TEST(memctl({"cube", "diff", "s", "after"}, &out) == 0);  // to now
  BOOST_TEST(contains(out, "- " + second), out);
  BOOST_TEST(memctl({"--json", "cube", "diff", "s", "before"}, &out) == 0);
  BOOST_TEST(contains(out, "\"change\":\"changed\""), out);
  BOOST_TEST(memctl({"cube", "diff", "s", "nope"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "notFound"), err);
}

BOOST_FIXTURE_TEST_CASE(cube_export_and_import_through_files, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "e"}) == 0);
  BOOST_TEST(memctl({"add", "e", "exported memory", "--tag", "x"}) == 0);
  std::string file = dir.path() + "/e.memosarc";
  BOOST_TEST(memctl({"cube", "export", "e", file}, &out, &err) == 0, err);
  BOOST_TEST(contains(err, "exported e to"), err);
  BOOST_TEST(!std::filesystem::exists(file + ".part"));
  BOOST_TEST(memctl({"cube", "import", file, "--as", "e2"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "imported cube e2 (1 live items)"), out);
  BOOST_TEST(memctl({"search", "e2", "exported"}, &out) == 0);
  BOOST_TEST(contains(out, "exported memory"));
  BOOST_TEST(memctl({"cube", "import", file}, &out, &err) == 1);  // "e" exists
  BOOST_TEST(contains(err, "alreadyExists"), err);
  // A truncated file is refused and leaves no cube.
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 3);
  BOOST_TEST(memctl({"cube", "import", file, "--as", "e3"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "badRequest"), err);
  BOOST_TEST(memctl({"cube", "show", "e3"}, &out, &err) == 1);
  BOOST_TEST(memctl({"cube", "import", dir.path() + "/missing"}, &out, &err) == 2);
  BOOST_TEST(memctl({"cube", "export", "nope", file}, &out, &err) == 1);
  BOOST_TEST(!std::filesystem::exists(file + ".part"));
}

BOOST_FIXTURE_TEST_CASE(cubes_carry_a_default_retriever, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "r"}) == 0);
  BOOST_TEST(memctl({"cube", "show", "r"}, &out) == 0);
  BOOST_TEST(contains(out, "retriever  hybrid"), out);
  BOOST_TEST(contains(out, "language   english"), out);
  BOOST_TEST(memctl({"cube", "create", "r2", "--retriever", "dense"}) == 0);
  BOOST_TEST(memctl({"cube", "show", "r2"}, &out) == 0);
  BOOST_TEST(contains(out, "retriever  dense"), out);
  // memctl knows the modes (the vocabulary's): an unknown one is bad usage.
  BOOST_TEST(memctl({"cube", "create", "r3", "--retriever", "psychic"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "'psychic' is unknown (dense, lexical or hybrid)"), err);
  BOOST_TEST(memctl({"cube", "show", "r3"}, &out, &err) == 1);
  BOOST_TEST(memctl({"cube", "create", "r4", "--language", "klingon"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "language 'klingon' is unknown"), err);
}

BOOST_FIXTURE_TEST_CASE(plugins_are_listed_described_and_reloaded, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"plugin", "ls"}, &out) == 0);
  BOOST_TEST(contains(out, "hash-embedder"), out);
  BOOST_TEST(contains(out, "loaded"), out);
  BOOST_TEST(memctl({"plugin", "info", "hash-embedder"}, &out) == 0);
  BOOST_TEST(contains(out, "capability model = hash-v1"), out);
  BOOST_TEST(memctl({"--json", "plugin", "info", "hash-embedder"}, &out) == 0);
  BOOST_TEST(contains(out, "\"state\":\"loaded\""), out);
  BOOST_TEST(memctl({"plugin", "reload", "hash-embedder"}, &out) == 0);
  BOOST_TEST(memctl({"status"}, &out) == 0);
  BOOST_TEST(contains(out, "plugin       hash-embedder: loaded"), out);
  BOOST_TEST(memctl({"plugin", "info", "nope"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "notFound"), err);
  // After a reload, embedding still works.
  BOOST_TEST(memctl({"cube", "create", "p"}) == 0);
  BOOST_TEST(memctl({"add", "p", "still embedding after the reload"}) == 0);
  BOOST_TEST(memctl({"search", "p", "embedding reload"}, &out) == 0);
  BOOST_TEST(contains(out, "still embedding"), out);
}
