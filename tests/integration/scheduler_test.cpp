// The scheduler through a real memosd (memos(7), "Scheduling"): strengths
// grow with use, survive a restart and travel in archives; cold memories
// are archived and a read brings them back, nothing lost, while a memory a
// user archived stays so; one tenant's reads of another's shared cube never
// move the owner's memory, and its pass covers its own cubes only; a hybrid
// search boosted by retention ranks memories in use first; with a
// model, a chat lays the working set first and restores its prefilled state.
#define BOOST_TEST_MODULE scheduler_daemon
#include <sys/stat.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Reads are flushed every 100 ms here (store.retention_interval_ms), so a
// strength shows soon after the reads that made it.
const std::string kFastFlush = "[store]\nretention_interval_ms = 100\n";

// A memosd serving two tenants, "ada" and "ben", each a real uid of its own
// (root only), with the memosd.conf `config` returns (given the test's
// folder, where it may make files first). as() runs `body` as one of them
// in a forked child with a client of its own; what it returns is the
// child's one channel back ("" : all went well).
struct TwoTenants {
  template <class Config>
  TwoTenants(std::uint32_t ada, std::uint32_t ben, Config config) {
    ::chmod(dir.path().c_str(), 0755);
    const fs::path policies = fs::path(dir.path()) / "tenants.d";
    fs::create_directory(policies);
    ::chmod(policies.c_str(), 0755);
    for (auto [name, uid] : {std::pair{"ada", ada}, std::pair{"ben", ben}}) {
      std::ofstream(policies / (std::string(name) + ".toml")) << "uids = [" << uid << "]\n";
      ::chmod((policies / (std::string(name) + ".toml")).c_str(), 0644);
    }
    const fs::path conf = fs::path(dir.path()) / "memosd.conf";
    std::ofstream(conf) << config(dir.path());
    ::chmod(conf.c_str(), 0644);
    memosd = std::make_unique<MemosdProcess>(
        MEMOS_MEMOSD, dir.path(),
        std::vector<std::string>{"--policies", policies.string(), "--config", conf.string()});
    BOOST_REQUIRE_MESSAGE(memosd->start(60s), memosd->log());
  }

  template <class Body>
  std::string as(std::uint32_t uid, Body body) {
    const std::string socket = memosd->socket();
    return memos::testing::as_uid(uid, [&]() -> std::string {
      auto c = memos::Client::connect(socket);
      if (!c.ok()) return "cannot connect: " + c.error().message;
      return body(*c.value());
    });
  }

  TempDir dir;
  std::unique_ptr<MemosdProcess> memosd;
};

// Polls until `done` or 20 s.
template <class Done>
bool eventually(Done done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

double strength_of(memos::Client& c, const std::string& cube, std::uint64_t id) {
  auto e = c.explain(cube, id);
  return e.ok() ? e->strength : -1;
}

std::vector<std::uint64_t> add_all(memos::Client& c, const std::string& cube,
                                   const std::vector<std::string>& texts) {
  std::vector<std::uint64_t> ids;
  for (const auto& t : texts) {
    auto r = c.add(cube, {t});
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    ids.push_back(r->id);
  }
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_CASE(strengths_grow_with_use_survive_a_restart_and_travel_in_archives) {
  TempDir dir;
  std::vector<std::uint64_t> ids;
  {
    memos::testing::Daemon d(dir.path(), kFastFlush);
    auto c = d.client();
    BOOST_REQUIRE(c->cube_create("notes").ok());
    ids = add_all(*c, "notes",
                  {"the quarterly report is due on friday", "aurora borealis seen over tromso",
                   "nothing ever reads this one"});
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE(c->get("notes", ids[0]).ok());  // 3 recalls
    memos::SearchOptions lexical;
    lexical.mode = memos::SearchMode::lexical;
    lexical.k = 1;
    auto hits = c->search("notes", "aurora tromso", lexical);  // a quarter of a recall
    BOOST_REQUIRE_MESSAGE(hits.ok() && hits->size() == 1u && (*hits)[0].item.id == ids[1],
                          "the lexical search does not find the aurora");
    BOOST_REQUIRE(eventually([&] {
      return strength_of(*c, "notes", ids[0]) == 4.0 && strength_of(*c, "notes", ids[1]) == 1.25;
    }));
    auto e = c->explain("notes", ids[0]);
    BOOST_REQUIRE_MESSAGE(e.ok(), why(e));
    BOOST_TEST(e->recalls == 3.0);
    BOOST_TEST(e->last_recall_ms > 0);
    BOOST_TEST(e->retention > 0.99);  // days: a recall just now
    BOOST_TEST(e->time_unit == "days");
    BOOST_TEST(e->item.hits == 3u);
    BOOST_TEST(!e->in_working_set);     // no chats: no working set
    BOOST_TEST(e->archive_at_ms == 0);  // forgetting is off
    auto never = c->explain("notes", ids[2]);
    BOOST_REQUIRE(never.ok());
    BOOST_TEST(never->strength == 1.0);
    BOOST_TEST(never->last_recall_ms == 0);
    // Missing and hostile.
    auto missing = c->explain("notes", 12345);
    BOOST_TEST((!missing.ok() && missing.error().code == memos::ErrorCode::not_found));
    auto bad = c->explain(std::string(300, 'x'), ids[0]);
    BOOST_TEST(!bad.ok());
    auto nul = c->explain(std::string("no\0tes", 6), ids[0]);
    BOOST_TEST((!nul.ok() && nul.error().code == memos::ErrorCode::bad_request));
  }
  // A restart keeps them.
  memos::testing::Daemon d(dir.path(), kFastFlush);
  auto c = d.client();
  BOOST_TEST(strength_of(*c, "notes", ids[0]) == 4.0);
  BOOST_TEST(strength_of(*c, "notes", ids[1]) == 1.25);
  // An export carries them into the cube an import makes (fresh ids).
  std::string archive;
  BOOST_REQUIRE(c->export_cube("notes", [&](std::string_view bytes) {
                   archive.append(bytes);
                   return true;
                 }).ok());
  std::size_t at = 0;
  auto imported = c->import_cube(
      [&](char* buf, std::size_t max) {
        std::size_t n = std::min(max, archive.size() - at);
        std::memcpy(buf, archive.data() + at, n);
        at += n;
        return n;
      },
      "copy");
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  lexical.fresh = true;
  auto found = c->search("copy", "quarterly report", lexical);
  BOOST_REQUIRE(found.ok() && !found->empty());
  auto copied = c->explain("copy", (*found)[0].item.id);
  BOOST_REQUIRE(copied.ok());
  BOOST_TEST(copied->strength == 4.0);
  BOOST_TEST(copied->recalls == 3.0);
}

BOOST_AUTO_TEST_CASE(cold_memories_are_archived_and_a_read_brings_them_back) {
  // Retention counted in seconds: a memory never recalled falls below 0.2
  // after 1.6 s; one recalled three times (S = 4) after 6.4 s.
  memos::testing::Daemon d(kFastFlush +
                           "[scheduler]\ntime_unit = \"seconds\"\nforgetting = \"archive\"\n"
                           "archive_below = 0.2\narchive_after_s = 0\ninterval_s = 3600\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  auto ids = add_all(*c, "notes",
                     {"the cold memory about lighthouses", "the warm memory about gardens",
                      "a memory its user archived about kites"});
  BOOST_REQUIRE(c->set_state("notes", ids[2], memos::State::archived).ok());
  std::this_thread::sleep_for(2s);
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(c->get("notes", ids[1]).ok());
  BOOST_REQUIRE(eventually([&] { return strength_of(*c, "notes", ids[1]) == 4.0; }));
  auto cold = c->explain("notes", ids[0]);
  BOOST_REQUIRE(cold.ok());
  BOOST_TEST(cold->retention < 0.2);
  BOOST_TEST(cold->archive_at_ms > 0);

  auto pass = c->sched_run();
  BOOST_REQUIRE_MESSAGE(pass.ok(), why(pass));
  BOOST_TEST(pass->archived == 1u);
  auto a = c->get("notes", ids[0]);  // a read: it comes back
  BOOST_REQUIRE(a.ok());
  BOOST_TEST((a->state == memos::State::archived));
  auto b = c->get("notes", ids[1]);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST((b->state == memos::State::active));  // recalled: still warm
  BOOST_REQUIRE(eventually([&] {
    auto again = c->get("notes", ids[0]);
    return again.ok() && again->state == memos::State::active;
  }));
  // Nothing lost: the text, and the history of both moves.
  auto history = c->history("notes", ids[0]);
  BOOST_REQUIRE(history.ok());
  BOOST_REQUIRE(history->size() == 3u);
  BOOST_TEST(((*history)[1].state == memos::State::archived));
  BOOST_TEST((*history)[1].session_id == "memosd-scheduler");
  BOOST_TEST((*history)[2].text == "the cold memory about lighthouses");
  // The user's own archive stays: a read does not undo it.
  BOOST_REQUIRE(c->get("notes", ids[2]).ok());
  std::this_thread::sleep_for(300ms);
  auto kept = c->get("notes", ids[2]);
  BOOST_REQUIRE(kept.ok());
  BOOST_TEST((kept->state == memos::State::archived));
  auto explained = c->explain("notes", ids[2]);
  BOOST_REQUIRE(explained.ok());
  BOOST_TEST(!explained->archived_by_scheduler);
  // The log says what happened and why.
  auto log = c->sched_log("notes", 0);
  BOOST_REQUIRE_MESSAGE(log.ok(), why(log));
  bool archived = false, restored = false;
  for (const auto& e : *log) {
    archived = archived || (e.action == "archived" && e.item == ids[0] && e.cube == "notes");
    restored = restored || (e.action == "restored" && e.item == ids[0]);
  }
  BOOST_TEST(archived);
  BOOST_TEST(restored);
  // memctl metrics counts the same decisions (the log keeps only the last).
  std::size_t logged_archives = 0;
  for (const auto& e : *log) logged_archives += e.action == "archived";
  auto m = c->metrics();
  BOOST_REQUIRE(m.ok());
  const std::string line = "memosd_scheduler_decisions_total{action=\"archived\"} " +
                           std::to_string(logged_archives) + "\n";
  BOOST_TEST(m->find(line) != std::string::npos, line << *m);
  auto too_many = c->sched_log("", 1000000);
  BOOST_TEST((!too_many.ok() && too_many.error().code == memos::ErrorCode::bad_request));
}

BOOST_AUTO_TEST_CASE(boost_retention_ranks_memories_in_use_first) {
  // Retention in seconds: after 3 s, a memory never recalled keeps R 0.05,
  // one read just now R 1.
  memos::testing::Daemon d(kFastFlush + "[scheduler]\ntime_unit = \"seconds\"\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  auto ids = add_all(*c, "notes",
                     {"the harbour ferry leaves at noon every day",
                      "the ferry to the island leaves the harbour at dawn"});
  std::this_thread::sleep_for(3s);
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(c->get("notes", ids[1]).ok());
  BOOST_REQUIRE(eventually([&] { return strength_of(*c, "notes", ids[1]) == 4.0; }));
  memos::SearchOptions o;
  o.k = 2;
  o.mode = memos::SearchMode::hybrid;
  o.fresh = true;
  const std::string query = "harbour ferry leaves at noon every day";
  auto plain = c->search("notes", query, o);
  BOOST_REQUIRE_MESSAGE(plain.ok(), why(plain));
  BOOST_REQUIRE_EQUAL(plain->size(), 2u);
  BOOST_TEST((*plain)[0].item.id == ids[0]);  // the closer text, nearly forgotten
  o.retention_weight = 5;
  auto boosted = c->search("notes", query, o);
  BOOST_REQUIRE_MESSAGE(boosted.ok(), why(boosted));
  BOOST_REQUIRE_EQUAL(boosted->size(), 2u);
  BOOST_TEST((*boosted)[0].item.id == ids[1]);  // the one in use
  BOOST_TEST((*boosted)[0].score > (*plain)[1].score);
  // The weight is checked like the others'.
  for (float bad : {-1.0f, 101.0f, std::nanf(""), INFINITY}) {
    o.retention_weight = bad;
    auto r = c->search("notes", query, o);
    BOOST_TEST((!r.ok() && r.error().code == memos::ErrorCode::bad_request), bad);
  }
}

BOOST_AUTO_TEST_CASE(one_tenants_activity_never_moves_anothers_memory,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  constexpr std::uint32_t kAda = 42451, kBen = 42452;
  TwoTenants tenants(kAda, kBen, [](const std::string&) {
    return kFastFlush +
           "[scheduler]\ntime_unit = \"seconds\"\nforgetting = \"archive\"\n"
           "archive_below = 0.2\narchive_after_s = 0\ninterval_s = 3600\n";
  });
  auto as = [&](std::uint32_t uid, auto body) { return tenants.as(uid, body); };
  // Ada's child reports the new memory's id (the report is its one
  // channel back), or what failed, prefixed so the two never mix.
  const std::string made = as(kAda, [&](memos::Client& c) -> std::string {
    if (!c.cube_create("notes").ok()) return "ada cannot create";
    auto r = c.add("notes", {"ada's memory about the harbour"});
    if (!r.ok()) return "ada cannot add";
    if (!c.cube_share("notes", "ben").ok()) return "ada cannot share";
    return "id " + std::to_string(r->id);
  });
  BOOST_REQUIRE_MESSAGE(made.rfind("id ", 0) == 0, made);
  const std::uint64_t id = std::stoull(made.substr(3));
  // Ben reads ada's memory often, searches it, and runs passes: none of it
  // is a recall of ada's, and his passes cover his own cubes only.
  BOOST_TEST(as(kBen, [&](memos::Client& c) -> std::string {
               for (int i = 0; i < 5; ++i) {
                 if (!c.get("ada/notes", id).ok()) return "ben cannot read the shared memory";
               }
               std::this_thread::sleep_for(500ms);  // the flush
               auto e = c.explain("ada/notes", id);
               if (!e.ok()) return "ben cannot explain it: " + e.error().message;
               if (e->strength != 1.0) return "ben's reads strengthened ada's memory";
               if (e->item.hits < 5u) return "ben's reads were not counted as reads";
               std::this_thread::sleep_for(1500ms);  // ada's memory is cold now
               auto pass = c.sched_run();
               if (!pass.ok()) return "ben cannot run a pass: " + pass.error().message;
               if (pass->cubes != 0u || pass->archived != 0u)
                 return "ben's pass covered other tenants' cubes";
               auto status = c.sched_status("ada/notes");
               if (status.ok()) return "ben sees ada's schedule";
               auto log = c.sched_log("", 0);
               if (!log.ok() || !log->empty()) return "ben's log is not empty";
               return "";
             }) == "");
  BOOST_TEST(as(kAda, [&](memos::Client& c) -> std::string {
               auto e = c.explain("notes", id);
               if (!e.ok()) return "ada cannot explain: " + e.error().message;
               if (e->strength != 1.0) return "ada's memory was strengthened by ben";
               auto status = c.get("notes", id);
               if (!status.ok() || status->state != memos::State::active)
                 return "ada's memory was archived by ben's pass";
               return "";
             }) == "");
}

#ifdef MEMOS_MKMODEL
namespace {

// A memosd with a tiny model of its own (memos-mkmodel), states found by
// chunks of 16 tokens, and working sets of `working_set_tokens`; passes
// only when asked (interval_s 3600).
struct ModelDaemon {
  explicit ModelDaemon(std::uint32_t working_set_tokens)
      : daemon(models.path(), config(make_model(), working_set_tokens), 60s) {}

  std::string make_model() {
    const std::string model = models.path() + "/tiny.gguf";
    std::string out, err;
    BOOST_REQUIRE_MESSAGE(memos::testing::run_command({MEMOS_MKMODEL, "--out", model, "--vocab",
                                                       MEMOS_TEST_VOCAB, "--preset", "tiny"},
                                                      &out, &err) == 0,
                          err);
    return model;
  }
  static std::string config(const std::string& model, std::uint32_t working_set_tokens) {
    return kFastFlush + "[executor]\nmodel = \"" + model +
           "\"\nthreads = 2\nbatch = 32\n[activation]\nchunk_tokens = 16\n"
           "[scheduler]\nworking_set_tokens = " +
           std::to_string(working_set_tokens) + "\ninterval_s = 3600\n";
  }

  TempDir models;  // before the daemon: made first, removed last
  memos::testing::Daemon daemon;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_chat_lays_the_working_set_first_and_restores_its_state,
                     *boost::unit_test::label("model")) {
  // A working set of about three of the memories below (some 19 estimated
  // tokens each), states found by chunks of 16 tokens.
  ModelDaemon md(60);
  memos::testing::Daemon& d = md.daemon;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("maya").ok());
  auto ids = add_all(*c, "maya",
                     {"Maya is allergic to peanuts and carries an EpiPen everywhere she goes.",
                      "Maya moved from Lisbon to Almada in October and rents a small flat there.",
                      "Maya swims at the municipal pool every Saturday morning before breakfast.",
                      "Maya's brother Tiago is a marine biologist working in the Azores.",
                      "Maya prefers green tea to coffee and never drinks anything after six.",
                      "Maya's cat is called Pimenta and sleeps on the bookshelf."});
  memos::ChatOptions o;
  o.k = 2;
  o.max_tokens = 4;
  // The first chat gives the cube a working set; the scheduler prefills
  // its state in the background.
  auto first = c->chat("maya", "Where does Maya swim?", o);
  BOOST_REQUIRE_MESSAGE(first.ok(), why(first));
  memos::CubeSchedule schedule;
  BOOST_REQUIRE(eventually([&] {
    auto st = c->sched_status("maya");
    if (!st.ok() || st->cubes.size() != 1u) return false;
    schedule = st->cubes[0];
    return schedule.state != 0 && !schedule.prefill_pending;
  }));
  BOOST_TEST(schedule.cube == "maya");
  BOOST_TEST(schedule.items.size() >= 2u);
  BOOST_TEST(schedule.items.size() < ids.size());
  BOOST_TEST(schedule.block_tokens >= 16u);
  // The next chat lays the set first, in its order, and restores its state.
  auto second = c->chat("maya", "What does Maya drink?", o);
  BOOST_REQUIRE_MESSAGE(second.ok(), why(second));
  BOOST_REQUIRE(second->memories.size() >= schedule.items.size());
  BOOST_TEST(std::equal(schedule.items.begin(), schedule.items.end(), second->memories.begin()));
  BOOST_TEST(second->reused_tokens >= 16u);
  BOOST_TEST(second->activation_status.restored);
  auto e = c->explain("maya", schedule.items[1]);
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->in_working_set);
  BOOST_TEST(e->position == 1u);
  BOOST_TEST(e->working_set_state == schedule.state);
  auto states = c->kv_list("maya");
  BOOST_REQUIRE(states.ok());
  BOOST_TEST(std::any_of(states->begin(), states->end(),
                         [&](const auto& a) { return a.id == schedule.state; }));
  auto log = c->sched_log("maya", 0);
  BOOST_REQUIRE(log.ok());
  BOOST_TEST(std::count_if(log->begin(), log->end(), [](const auto& decision) {
               return decision.action == "promoted";
             }) >= static_cast<long>(schedule.items.size()));
  auto status = c->sched_status();
  BOOST_REQUIRE(status.ok());
  BOOST_TEST(status->cubes.at(0).chats == 2u);
  BOOST_TEST(status->cubes.at(0).restores >= 1u);
}

// A set changes at its end (members keep their order), so its new state is
// made from the last one: restored, only the tokens after the shared prefix
// are decoded, and the decision says so. Scores here are importance (every
// retention is about 1, the unit being days), so the set is predictable.
BOOST_AUTO_TEST_CASE(a_changed_working_set_is_prefilled_from_its_last_state,
                     *boost::unit_test::label("model")) {
  // Room for two of the memories below (some 19 estimated tokens each).
  ModelDaemon md(45);
  memos::testing::Daemon& d = md.daemon;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("maya").ok());
  auto add = [&](const std::string& text, float importance) {
    memos::NewItem item;
    item.text = text;
    item.importance = importance;
    auto r = c->add("maya", item);
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    return r->id;
  };
  const auto allergy =
      add("Maya is allergic to peanuts and carries an EpiPen everywhere she goes.", 0.9f);
  const auto flat =
      add("Maya moved from Lisbon to Almada in October and rents a small flat there.", 0.8f);
  add("Maya swims at the municipal pool every Saturday morning before breakfast.", 0.1f);
  add("Maya's cat is called Pimenta and sleeps on the bookshelf, all day long.", 0.1f);
  memos::ChatOptions o;
  o.k = 1;
  o.max_tokens = 2;
  BOOST_REQUIRE(c->chat("maya", "Where does Maya swim?", o).ok());
  memos::CubeSchedule before;
  BOOST_REQUIRE(eventually([&] {
    auto st = c->sched_status("maya");
    if (!st.ok() || st->cubes.size() != 1u) return false;
    before = st->cubes[0];
    return before.state != 0 && !before.prefill_pending;
  }));
  BOOST_TEST((before.items == std::vector<std::uint64_t>{allergy, flat}));

  // The most important memory yet joins; the flat, the least of the two,
  // leaves: the set becomes [allergy, tea], its first line unchanged.
  const auto tea =
      add("Maya prefers green tea to coffee and never drinks anything after six.", 1.0f);
  memos::CubeSchedule after;
  BOOST_REQUIRE(eventually([&] {
    if (!c->sched_run().ok()) return false;
    auto st = c->sched_status("maya");
    if (!st.ok() || st->cubes.size() != 1u) return false;
    after = st->cubes[0];
    return after.generation > before.generation && after.state != 0 && !after.prefill_pending;
  }));
  BOOST_TEST((after.items == std::vector<std::uint64_t>{allergy, tea}));
  BOOST_TEST(after.state != before.state);
  auto log = c->sched_log("maya", 0);
  BOOST_REQUIRE(log.ok());
  BOOST_TEST(std::any_of(log->begin(), log->end(), [&](const memos::SchedDecision& decision) {
    return decision.action == "promoted" && decision.item == after.state &&
           decision.reason.find("restored from its last state") != std::string::npos;
  }));
  // The next chat restores the new state.
  auto chat = c->chat("maya", "What does Maya drink?", o);
  BOOST_REQUIRE_MESSAGE(chat.ok(), why(chat));
  BOOST_TEST(chat->activation_status.restored);
  BOOST_TEST(chat->activation == after.state);
  BOOST_TEST(chat->reused_tokens >= 16u);
}
// The executor keeps recent prompts for the next chat of the same tenant.
// Two real users send the same prompt (ben reads ada's shared cube): ben's
// chat never starts from ada's, since how fast it answers would tell him
// what she asked; each one's repeat does.
BOOST_AUTO_TEST_CASE(the_executors_prompt_cache_is_never_shared_between_tenants,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  constexpr std::uint32_t kAda = 42461, kBen = 42462;
  TwoTenants tenants(kAda, kBen, [](const std::string& dir) {
    const std::string model = dir + "/tiny.gguf";
    std::string out, err;
    BOOST_REQUIRE_MESSAGE(memos::testing::run_command({MEMOS_MKMODEL, "--out", model, "--vocab",
                                                       MEMOS_TEST_VOCAB, "--preset", "tiny"},
                                                      &out, &err) == 0,
                          err);
    return kFastFlush + "[executor]\nmodel = \"" + model +
           "\"\nthreads = 2\nbatch = 32\n[scheduler]\nenabled = false\n";
  });
  auto as = [&](std::uint32_t uid, auto body) { return tenants.as(uid, body); };
  const std::string question = "Where does the ferry leave from?";
  memos::ChatOptions options;
  options.max_tokens = 2;
  // Ada's child reports the memories' ids, or what failed.
  const std::string made = as(kAda, [&](memos::Client& c) -> std::string {
    if (!c.cube_create("notes").ok()) return "ada cannot create";
    std::string ids;
    for (const char* text : {"The ferry leaves from pier 4 at dawn.", "Ada keeps a boat.",
                             "The harbour office closes at six."}) {
      auto r = c.add("notes", {text});
      if (!r.ok()) return "ada cannot add";
      ids += " " + std::to_string(r->id);
    }
    if (!c.cube_share("notes", "ben").ok()) return "ada cannot share";
    return "ids" + ids;
  });
  BOOST_REQUIRE_MESSAGE(made.rfind("ids ", 0) == 0, made);
  std::istringstream read_ids(made.substr(4));
  for (std::uint64_t id; read_ids >> id;) options.ids.push_back(id);
  auto chat_twice = [&](memos::Client& c, const std::string& cube,
                        bool first_cached) -> std::string {
    for (int i = 0; i < 2; ++i) {
      auto r = c.chat(cube, question, options);
      if (!r.ok()) return "cannot chat: " + r.error().message;
      const bool cached = r->cached_tokens > 0;
      if (i == 0 && cached != first_cached) {
        return first_cached ? "the first chat did not start from the context (" +
                                  std::to_string(r->cached_tokens) + " of " +
                                  std::to_string(r->prompt_tokens) + " tokens)"
                            : "the first chat started from another tenant's prompt (" +
                                  std::to_string(r->cached_tokens) + " tokens)";
      }
      if (i == 1 && r->cached_tokens + 1 != r->prompt_tokens)
        return "the repeat did not start from its own prompt (" + std::to_string(r->cached_tokens) +
               " of " + std::to_string(r->prompt_tokens) + " tokens)";
    }
    return "";
  };
  BOOST_TEST(as(kAda, [&](memos::Client& c) { return chat_twice(c, "notes", false); }) == "");
  // The very same tokens, from ben: not from ada's cells.
  BOOST_TEST(as(kBen, [&](memos::Client& c) { return chat_twice(c, "ada/notes", false); }) == "");
  // Ada's own are still there for her.
  BOOST_TEST(as(kAda, [&](memos::Client& c) { return chat_twice(c, "notes", true); }) == "");
}

#else
// Built without llama.cpp: the case is there, and reported skipped.
boost::test_tools::assertion_result no_model(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(false);
  r.message() << "needs llama.cpp (memos-mkmodel and the executor are not built)";
  return r;
}
BOOST_AUTO_TEST_CASE(a_chat_lays_the_working_set_first_and_restores_its_state,
                     *boost::unit_test::label("model") * boost::unit_test::precondition(no_model)) {
}
BOOST_AUTO_TEST_CASE(a_changed_working_set_is_prefilled_from_its_last_state,
                     *boost::unit_test::label("model") * boost::unit_test::precondition(no_model)) {
}
BOOST_AUTO_TEST_CASE(the_executors_prompt_cache_is_never_shared_between_tenants,
                     *boost::unit_test::label("root") * boost::unit_test::precondition(no_model)) {}
#endif
