// memctl against a real memosd: output, --json, and exit statuses.
#define BOOST_TEST_MODULE memctl
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "memos/client.h"
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

// Every line memctl wrote on stderr starts "memctl:" (memctl(1), DIAGNOSTICS).
bool every_line_is_memctls(const std::string& err) {
  std::istringstream lines(err);
  std::string line;
  bool any = false;
  while (std::getline(lines, line)) {
    if (line.rfind("memctl:", 0) != 0) return false;
    any = true;
  }
  return any;
}

// The commands memctl --help lists, with those of the groups (cube ls, ...).
std::vector<std::string> section_words(const std::string& help, const std::string& title) {
  std::vector<std::string> words;
  std::istringstream lines(help);
  std::string line;
  bool on = false;
  while (std::getline(lines, line)) {
    if (line == title + ":") {
      on = true;
    } else if (!line.empty() && line[0] != ' ') {
      on = false;
    } else if (on && !line.empty()) {
      std::istringstream words_of(line);
      std::string word;
      words_of >> word;
      if (!word.empty()) words.push_back(word);
    }
  }
  return words;
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
  // Without [cluster], memosd says it runs alone (to its own uid: an admin).
  BOOST_TEST(memctl({"cluster", "status"}, &out) == 0);
  BOOST_TEST(contains(out, "memosd runs as a single node"), out);
  BOOST_TEST(memctl({"--json", "cluster", "status"}, &out) == 0);
  BOOST_TEST(trim(out) == "{\"enabled\":false}", out);
  // Nor a log whose leader could step down.
  BOOST_TEST(memctl({"cluster", "step-down"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "one node"), err);
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
  // --stale takes milliseconds, 0 to 4294967295.
  for (const char* bad : {"soon", "-1", "4294967296", "1.5", ""}) {
    BOOST_TEST(memctl({"--stale", bad, "cube", "ls"}, &out, &err) == 2, bad);
  }
}

// A single memosd holds every write it acknowledged: --stale changes nothing.
BOOST_FIXTURE_TEST_CASE(a_single_memosd_ignores_stale, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "s"}, &out, &err) == 0, err);
  BOOST_TEST(memctl({"--stale", "500", "cube", "ls"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "s"), out);
  BOOST_TEST(memctl({"cube", "show", "s", "--stale", "4294967295"}, &out, &err) == 0, err);
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

BOOST_FIXTURE_TEST_CASE(version_and_help_say_what_to_type, Fixture) {
  std::string out, err, daemon;
  BOOST_TEST(memctl({"--version"}, &out, &err) == 0, err);
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--version"}, &daemon) == 0);
  // Both print the project's version: "memctl 0.1.0", "memosd 0.1.0".
  BOOST_TEST(trim(out).substr(6) == trim(daemon).substr(6), out + " / " + daemon);
  BOOST_TEST(out.rfind("memctl ", 0) == 0u, out);

  // Every command's help, those of the groups' commands too: no type or
  // range noise from CLI11, and every positional described.
  BOOST_TEST(memctl({"--help"}, &out) == 0);
  std::vector<std::vector<std::string>> commands;
  for (const auto& command : section_words(out, "Subcommands")) {
    std::string group_help;
    BOOST_TEST(memctl({command, "--help"}, &group_help) == 0, command);
    auto subs = section_words(group_help, "Subcommands");
    if (subs.empty()) commands.push_back({command});
    for (const auto& sub : subs) commands.push_back({command, sub});
  }
  BOOST_TEST(commands.size() >= 25u);
  for (auto args : commands) {
    std::string name = args.size() == 1 ? args[0] : args[0] + " " + args[1];
    args.push_back("--help");
    BOOST_TEST(memctl(args, &out) == 0, name);
    BOOST_TEST(!contains(out, "UINT"), name + ":\n" + out);
    BOOST_TEST(!contains(out, " in ["), name + ":\n" + out);
    BOOST_TEST(!contains(out, "REQUIRED"), name + ":\n" + out);
    std::istringstream lines(out);
    std::string line;
    bool positionals = false;
    while (std::getline(lines, line)) {
      if (line == "Positionals:") {
        positionals = true;
      } else if (!line.empty() && line[0] != ' ') {
        positionals = false;
      } else if (positionals && !line.empty()) {
        // "  CUBE                        the cube": a name, then what it is.
        std::istringstream words(line);
        std::string positional, description;
        words >> positional >> description;
        BOOST_TEST(!description.empty(), name + ": " + positional + " has no description");
      }
    }
  }
  BOOST_TEST(memctl({"get", "--help"}, &out) == 0);
  BOOST_TEST(contains(out, "--version N"), out);
  BOOST_TEST(memctl({"search", "--help"}, &out) == 0);
  BOOST_TEST(contains(out, "--mode {dense,lexical,hybrid}"), out);
}

BOOST_FIXTURE_TEST_CASE(typos_name_the_near_commands, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"serach", "maya", "peanuts"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl: unknown command 'serach'; did you mean 'search'?"), err);
  BOOST_TEST(every_line_is_memctls(err), err);
  BOOST_TEST(memctl({"cube", "lss"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "unknown command 'cube lss'; did you mean 'cube ls'?"), err);
  BOOST_TEST(memctl({"histroy", "maya", "038GWRXC9G000"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "did you mean 'history'?"), err);
  BOOST_TEST(memctl({"--json", "snap"}, &out, &err) == 2);  // no such command, none near
  BOOST_TEST(
      contains(err, "unknown command 'snap'; the commands are status, metrics, cluster, cube,"),
      err);
  BOOST_TEST(memctl({"cube", "snap", "maya", "t"}, &out, &err) == 2);  // a prefix
  BOOST_TEST(contains(err, "did you mean 'cube snapshot' or 'cube snapshots'?"), err);
  BOOST_TEST(memctl({}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl: no command given; the commands are status,"), err);
  BOOST_TEST(memctl({"kv"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl: 'memctl kv' wants one of: prefill, ls, rm, stats"), err);
  BOOST_TEST(every_line_is_memctls(err), err);
}

BOOST_FIXTURE_TEST_CASE(unquoted_text_is_explained, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"cube", "create", "maya"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "likes", "tea", "--tag", "food"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "'tea' was not expected: TEXT is one argument"), err);
  BOOST_TEST(contains(err, "memctl add maya \"likes tea\""), err);
  BOOST_TEST(every_line_is_memctls(err), err);
  BOOST_TEST(memctl({"search", "maya", "what", "is", "Maya", "allergic", "to"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl search maya \"what is Maya allergic to\""), err);
  BOOST_TEST(memctl({"update", "maya", "038GWRXC9G000", "new", "text"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl update maya 038GWRXC9G000 \"new text\""), err);
  BOOST_TEST(memctl({"chat", "maya", "what", "now"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "PROMPT is one argument"), err);
  // Nothing was stored by the refused add.
  BOOST_TEST(memctl({"cube", "show", "maya"}, &out) == 0);
  BOOST_TEST(contains(out, "live items 0"), out);
  // A command without text says only what was extra.
  BOOST_TEST(memctl({"status", "now"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl: status: 'now' was not expected"), err);
  BOOST_TEST(every_line_is_memctls(err), err);
}

BOOST_FIXTURE_TEST_CASE(errors_name_what_was_typed, Fixture) {
  std::string out, err;
  BOOST_TEST(memctl({"get", "maya", "117713457078468608"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "'117713457078468608' is not an item id"), err);
  BOOST_TEST(every_line_is_memctls(err), err);
  BOOST_TEST(memctl({"get", "maya", "038GWRXC9G000", "--version", "0"}, &out, &err) == 2);
  BOOST_TEST(contains(err, "memctl: get: --version"), err);
  BOOST_TEST(every_line_is_memctls(err), err);
  BOOST_TEST(memctl({"get", "nope", "038GWRXC9G000"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "'nope'"), err);

  BOOST_TEST(memctl({"cube", "create", "maya"}) == 0);
  BOOST_TEST(memctl({"add", "maya", "Maya is allergic to peanuts"}, &out) == 0);
  std::string id = trim(out);
  BOOST_TEST(memctl({"cube", "rm", "maya"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "--force"), err);
  BOOST_TEST(!contains(err, "use force"), err);
  BOOST_TEST(contains(err, "'maya'"), err);
  // An id the daemon does not know is named as the user wrote it: base32,
  // not the number behind it.
  std::uint64_t absent = *memos::parse_id(id) + 1;
  BOOST_TEST(memctl({"get", "maya", memos::format_id(absent), "--version", "2"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "memctl: notFound: "), err);
  BOOST_TEST(contains(err, "(cube 'maya', item " + memos::format_id(absent) + ", version 2)"), err);
  BOOST_TEST(memctl({"kv", "rm", "maya", memos::format_id(absent)}, &out, &err) == 1);
  BOOST_TEST(contains(err, memos::format_id(absent)), err);
  BOOST_TEST(!contains(err, std::to_string(absent)), err);
  BOOST_TEST(every_line_is_memctls(err), err);
}

BOOST_FIXTURE_TEST_CASE(cube_ls_shows_mode_and_language_and_search_says_what_scores_are, Fixture) {
  std::string out;
  BOOST_TEST(memctl({"cube", "create", "maya"}) == 0);
  BOOST_TEST(
      memctl({"cube", "create", "notes", "--retriever", "lexical", "--language", "french"}) == 0);
  BOOST_TEST(memctl({"cube", "ls"}, &out) == 0);
  BOOST_TEST(contains(out, "MODE"), out);
  BOOST_TEST(contains(out, "LANGUAGE"), out);
  std::istringstream lines(out);
  std::string line;
  int seen = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name, items, dim, mode, language;
    words >> name >> items >> dim >> mode >> language;
    if (name == "maya") {
      BOOST_TEST(mode == "hybrid", line);
      BOOST_TEST(language == "english", line);
      ++seen;
    } else if (name == "notes") {
      BOOST_TEST(mode == "lexical", line);
      BOOST_TEST(language == "french", line);
      ++seen;
    }
  }
  BOOST_TEST(seen == 2, out);

  for (const char* text :
       {"Maya is allergic to peanuts", "Maya swims on Saturdays", "The car needs new tyres"}) {
    BOOST_TEST(memctl({"add", "maya", text, "--wait-searchable"}) == 0);
  }
  BOOST_TEST(memctl({"search", "maya", "what is Maya allergic to"}, &out) == 0);
  BOOST_TEST(out.rfind("score: rank fusion (hybrid search)", 0) == 0u, out);
  BOOST_TEST(contains(out, "does not say how relevant"), out);
  BOOST_TEST(memctl({"search", "maya", "peanuts", "--mode", "dense"}, &out) == 0);
  BOOST_TEST(out.rfind("score: cosine similarity", 0) == 0u, out);
  BOOST_TEST(memctl({"search", "maya", "peanuts", "--mode", "lexical"}, &out) == 0);
  BOOST_TEST(out.rfind("score: BM25", 0) == 0u, out);
  // --json stays an array of hits: the legend is for people.
  BOOST_TEST(memctl({"--json", "search", "maya", "peanuts"}, &out) == 0);
  BOOST_TEST(nlohmann::json::parse(out).is_array(), out);
}

// memosd stores what it is given, control characters included; memctl
// --json must print it as valid JSON that reads back to the same text. Bytes
// that are not UTF-8 cannot be stored (the daemon refuses them), but they
// reach memctl's output from what the user typed: a cube name the daemon
// echoes, a file name. They are replaced, so the output still parses.
BOOST_FIXTURE_TEST_CASE(json_output_is_valid_for_hostile_bytes, Fixture) {
  const std::string text =
      std::string("ctl \x01\x02\x1f del \x7f nul-free \"quoted\" back\\slash \xE2\x80\xA8 ") +
      "\xF0\x9F\x8D\x9C tab\tend";
  auto client = memos::Client::connect(process.socket());
  BOOST_REQUIRE(client);
  BOOST_REQUIRE(client.value()->cube_create("hostile"));
  memos::NewItem item;
  item.text = text;
  item.tags = {"t\x01g", "\xC3\xA9t\xC3\xA9"};
  item.meta = {{"k\ney", "v\x1b[31mred"}};
  item.wait_searchable = true;
  auto added = client.value()->add("hostile", item);
  BOOST_REQUIRE_MESSAGE(added, (added ? std::string() : added.error().message));
  std::string id = memos::format_id(added->id);
  // Not UTF-8: refused, never stored.
  memos::NewItem bad;
  bad.text = "bad \xff\xfe bytes";
  auto refused = client.value()->add("hostile", bad);
  BOOST_TEST(!refused);

  std::string out, err;
  auto parsed = [&](const std::string& what) {
    try {
      return nlohmann::json::parse(out);
    } catch (const nlohmann::json::exception& e) {
      BOOST_ERROR(what << ": not JSON (" << e.what() << "): " << out);
      return nlohmann::json();
    }
  };
  BOOST_TEST(memctl({"--json", "get", "hostile", id}, &out, &err) == 0, err);
  nlohmann::json got = parsed("get");
  BOOST_TEST(got["text"] == text);
  BOOST_TEST(got["tags"][0] == "t\x01g");
  BOOST_TEST(got["tags"][1] == "\xC3\xA9t\xC3\xA9");
  BOOST_TEST(got["meta"]["k\ney"] == "v\x1b[31mred");
  BOOST_TEST(!contains(out, "\x01"), "a control character went out raw");

  BOOST_TEST(memctl({"--json", "search", "hostile", "quoted backslash", "--mode", "lexical"}, &out,
                    &err) == 0,
             err);
  got = parsed("search");
  BOOST_REQUIRE(got.is_array());
  BOOST_REQUIRE(!got.empty());
  BOOST_TEST(got[0]["item"]["text"] == text);
  BOOST_TEST(memctl({"--json", "history", "hostile", id}, &out, &err) == 0, err);
  BOOST_TEST(parsed("history")[0]["text"] == text);
  BOOST_TEST(memctl({"--json", "cube", "ls"}, &out, &err) == 0, err);
  BOOST_TEST(parsed("cube ls")[0]["name"] == "hostile");

  // Invalid UTF-8 typed by the user and echoed back: replaced by U+FFFD.
  BOOST_TEST(memctl({"--json", "get", "cube\xff\xfe", id}, &out, &err) == 1);
  got = parsed("error");
  BOOST_TEST(got["error"]["code"] == "notFound", out);
  std::string message = got["error"]["message"];
  BOOST_TEST(contains(message, "\xEF\xBF\xBD"), message);
  std::string file = dir.path() + "/arc\xff.memosarc";
  BOOST_TEST(memctl({"--json", "cube", "export", "hostile", file}, &out, &err) == 0, err);
  got = parsed("export");
  BOOST_TEST(got["file"] == dir.path() + "/arc\xEF\xBF\xBD.memosarc");
  BOOST_TEST(std::filesystem::exists(file));
}

BOOST_FIXTURE_TEST_CASE(sched_and_explain_show_the_scheduler, Fixture) {
  std::string out, err;
  BOOST_REQUIRE(memctl({"cube", "create", "s"}) == 0);
  BOOST_REQUIRE(memctl({"add", "s", "the ferry leaves at noon"}, &out) == 0);
  const std::string id = trim(out);
  BOOST_REQUIRE(memctl({"get", "s", id}) == 0);
  BOOST_TEST(memctl({"explain", "s", id}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "strength     S = "), out);
  BOOST_TEST(contains(out, "not in the working set"), out);
  BOOST_TEST(memctl({"--json", "explain", "s", id}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "\"strength\":"), out);
  BOOST_TEST(contains(out, "\"time_unit\":\"days\""), out);
  BOOST_TEST(contains(out, "\"id\":\"" + id + "\""), out);
  BOOST_TEST(memctl({"sched", "run"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "cubes"), out);
  BOOST_TEST(memctl({"--json", "sched", "status"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "\"enabled\":true"), out);
  BOOST_TEST(contains(out, "\"cubes\":[]"), out);  // no chats, no working set
  BOOST_TEST(contains(out, "[scheduler]"), out);
  BOOST_TEST(memctl({"sched", "status", "s"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "no working sets yet"), out);
  BOOST_TEST(memctl({"--json", "sched", "log", "--max", "5"}, &out, &err) == 0, err);
  BOOST_TEST(trim(out) == "[]", out);
  BOOST_TEST(memctl({"status"}, &out, &err) == 0, err);
  BOOST_TEST(contains(out, "scheduler    "), out);
  BOOST_TEST(
      memctl({"search", "s", "ferry", "--mode", "hybrid", "--boost", "retention"}, &out, &err) == 0,
      err);
  BOOST_TEST(contains(out, id), out);
  BOOST_TEST(memctl({"search", "s", "ferry", "--mode", "hybrid", "--boost", "retention=2.5"}, &out,
                    &err) == 0,
             err);

  // Refused: another tenant's cube, a missing memory or cube (exit 1).
  BOOST_TEST(memctl({"sched", "status", "ada/s"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "permissionDenied"), err);
  BOOST_TEST(memctl({"explain", "s", "038GWRXC9G000"}, &out, &err) == 1);
  BOOST_TEST(contains(err, "notFound"), err);
  BOOST_TEST(memctl({"explain", "nope", id}, &out, &err) == 1);
  // Bad usage (exit 2), before connecting.
  for (std::vector<std::string> bad : {std::vector<std::string>{"explain", "s"},
                                       {"explain", "s", "not-an-id"},
                                       {"sched"},
                                       {"sched", "frob"},
                                       {"sched", "log", "--max", "0"},
                                       {"sched", "log", "--max", "10001"},
                                       {"search", "s", "q", "--boost", "recency"},
                                       {"search", "s", "q", "--boost", "retention=-1"},
                                       {"search", "s", "q", "--boost", "retention=nan"},
                                       {"search", "s", "q", "--boost", "retention=101"},
                                       {"search", "s", "q", "--boost", "retention="}}) {
    BOOST_TEST(memctl(bad, &out, &err) == 2, bad.front() << " " << bad.back() << ": " << err);
  }
}
