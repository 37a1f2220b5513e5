// The crash matrix: plugins isolated in memos-plugin-host that die, hang,
// hog memory and answer badly, on each path memosd calls them by. memosd
// stays up, the caller gets a typed error, the host restarts, a plugin that
// keeps dying is quarantined until `plugin reload`, and other cubes and
// tenants keep being served for what does not need the broken plugin.
//
//   kind / path          failure                            client sees
//   embedder (add)       segfault abort exit terminate hang unavailable, retryable
//                        garbage wrongkind silent oversized unavailable, retryable (an
//                        hog (host memory limit)            add embeds again), says why
//   dense retriever      segfault abort exit terminate hang unavailable, retryable
//     (search)           garbage wrongkind silent oversized internal
//                        hog (host memory limit)            internal (bad_alloc)
//   dense retriever      segfault garbage hang              add acknowledged (the
//     (index on add)                                        write is durable); logged,
//                                                           rebuilt at the next start
//   executor (chat:      segfault abort exit terminate hang unavailable, retryable
//     generate)          garbage wrongkind silent oversized internal
//                        hog (host memory limit)            internal (bad_alloc)
// Dying max_crashes times within crash_window_s quarantines the plugin: its
// calls fail at once (unavailable, "quarantined") until `plugin reload`.
// "hog" needs the host's memory limit, which sanitizer builds cannot have:
// there it is skipped (label memory_limit). The other uid's view needs
// root (label root). tests/README.md has the table.
#define BOOST_TEST_MODULE isolation
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/memosd_process.h"
#include "tests/support/plugin_hosts.h"
#include "tests/support/preconditions.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Deadlines: short where a plugin is made to hang (the hang costs that
// long), long where nothing should (building a reply, hogging memory up to
// the limit), so that a slow machine fails nothing.
// ThreadSanitizer runs memosd and the hosts several times slower: there a
// 1 s deadline would take a slow answer for a hang.
#if defined(__SANITIZE_THREAD__)
constexpr int kHangTimeoutMs = 5000;
#else
constexpr int kHangTimeoutMs = 1000;
#endif
constexpr int kNoHangTimeoutMs = 60000;
// The host's memory limit in the tests: hogging up to it takes a while.
constexpr int kHostMemoryMb = 256;

// Whether memos-plugin-host can limit its memory: not in a build with a
// sanitizer's shadow memory (the same test as plugins/host/main.cpp's).
boost::test_tools::assertion_result memory_limit_enforced(boost::unit_test::test_unit_id) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const bool shadow = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  const bool shadow = true;
#else
  const bool shadow = false;
#endif
#else
  const bool shadow = false;
#endif
  boost::test_tools::assertion_result r(!shadow);
  r.message() << "memos-plugin-host cannot limit its memory in a sanitizer build "
                 "(AddressSanitizer's and ThreadSanitizer's shadow mappings exceed any limit)";
  return r;
}

// What the daemon is configured with: which plugin crashes.
enum class Broken { embedder, dense, executor };

struct IsolatedDaemon {
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;
  std::unique_ptr<memos::Client> client;
  std::string plugin;      // the misbehaving one
  std::string last_error;  // until_served's last failure, for messages

  explicit IsolatedDaemon(Broken broken, int max_crashes = 3,
                          int call_timeout_ms = kHangTimeoutMs) {
    std::string plugins = dir.path() + "/plugins";
    fs::create_directories(plugins);
    const char* kind = broken == Broken::embedder ? "embedder"
                       : broken == Broken::dense  ? "retriever"
                                                  : "executor";
    plugin = broken == Broken::embedder ? "crasher"
             : broken == Broken::dense  ? "crasher-retriever"
                                        : "crasher-executor";
    fs::copy_file(std::string(MEMOS_TEST_PLUGIN_DIR) + "/" + plugin + ".so",
                  plugins + "/" + plugin + ".so");
    std::ofstream(plugins + "/" + plugin + ".plugin.toml")
        << "name = \"" << plugin << "\"\nkinds = [\"" << kind << "\"]\nabi_major = 1\n"
        << "library = \"" << plugin << ".so\"\nisolation = \"isolated\"\n";
    std::ofstream conf(dir.path() + "/memosd.conf");
    conf << "[plugins]\npaths = [\"" << plugins << "\", \"" << MEMOS_PLUGIN_DIR << "\"]\n"
         << "call_timeout_ms = " << call_timeout_ms << "\nmax_crashes = " << max_crashes
         << "\ncrash_window_s = 600\n"
         << "host_memory_mb = " << kHostMemoryMb << "\n";
    if (broken == Broken::embedder) conf << "embedder = \"crasher\"\n";
    if (broken == Broken::dense) conf << "dense = \"crasher-retriever\"\n";
    if (broken == Broken::embedder) conf << "[search]\nembedding_dim = 26\n";
    if (broken == Broken::executor) {
      std::ofstream(dir.path() + "/model.gguf") << "never read";
      conf << "[executor]\nplugin = \"crasher-executor\"\nmodel = \"" << dir.path()
           << "/model.gguf\"\ncall_timeout_ms = " << call_timeout_ms << "\n";
    }
    conf.close();
    process = std::make_unique<MemosdProcess>(
        MEMOS_MEMOSD, dir.path(),
        std::vector<std::string>{"--config", dir.path() + "/memosd.conf"});
    BOOST_REQUIRE_MESSAGE(process->start(), process->log());
    ::chmod(dir.path().c_str(), 0755);  // another uid reaches the socket
    auto c = memos::Client::connect(process->socket());
    BOOST_REQUIRE(c.ok());
    client = std::move(c.value());
    BOOST_REQUIRE(client->cube_create("c").ok());
  }

  // Retries `op` while it fails retryably: the host restarts after a backoff
  // (100 ms, doubling while it keeps dying). Bounded, generously.
  template <class Op>
  bool until_served(Op op) {
    for (int i = 0; i < 400; ++i) {
      auto r = op();
      if (r.ok()) return true;
      last_error = r.error().message;
      if (!r.error().retryable) return false;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  // Adds `text` and waits until it is searchable.
  bool add_normal(const std::string& text) {
    memos::NewItem item{text};
    item.wait_searchable = true;
    return until_served([&] { return client->add("c", item); });
  }
  bool dense_search_served() {
    memos::SearchOptions o;
    o.mode = memos::SearchMode::dense;
    return until_served([&] { return client->search("c", "an ordinary question", o); });
  }

  std::string health() {
    auto p = client->plugin_info(plugin);
    return p.ok() ? p->health : "";
  }
};

// A dense search; a trigger word goes in its tag filter, since memosd sends
// a dense retriever the query's vector, not its text.
memos::SearchOptions dense(const char* trigger = nullptr) {
  memos::SearchOptions o;
  o.mode = memos::SearchMode::dense;
  if (trigger) o.tags = {trigger};
  return o;
}

// The error of a failed result, for messages ("" when it succeeded).
template <class R>
std::string error_of(const R& r) {
  return r.ok() ? "" : r.error().message;
}

// What another client needs of memosd while the plugin is broken: its own
// cube's items, their history, lexical search and new writes. Returns ""
// or what failed.
std::string other_client_is_served(memos::Client& other, const std::string& cube,
                                   std::uint64_t id) {
  if (!other.status().ok()) return "status";
  if (!other.get(cube, id).ok()) return "get";
  if (!other.history(cube, id).ok()) return "history";
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  lexical.fresh = true;
  auto hits = other.search(cube, "pears", lexical);
  if (!hits.ok()) return "lexical search: " + hits.error().message;
  if (std::none_of(hits->begin(), hits->end(), [&](const auto& h) { return h.item.id == id; })) {
    return "lexical search did not find the item";
  }
  return "";
}

// Another client with a cube of its own holding one item, both made while
// all is well; served() says what it is still refused while the plugin is
// broken ("" for nothing).
struct OtherClient {
  std::unique_ptr<memos::Client> client;
  std::uint64_t pears = 0;
  explicit OtherClient(IsolatedDaemon& d) {
    BOOST_REQUIRE(d.client->cube_create("other").ok());
    auto added = d.client->add("other", {"pears are ripe in autumn"});
    BOOST_REQUIRE(added.ok());
    pears = added->id;
    auto c = memos::Client::connect(d.process->socket());
    BOOST_REQUIRE(c.ok());
    client = std::move(c.value());
  }
  std::string served() { return other_client_is_served(*client, "other", pears); }
};

}  // namespace

// A write is answered once durable; its text is embedded behind the answer
// (docs/design.md, "Durability contract"). A text that kills or hangs the
// embedder costs only its own dense indexing: the write is stored, found by
// lexical search, left out of the dense retriever; memosd and every other
// write go on, and the embedder is quarantined only by its own deaths.
BOOST_AUTO_TEST_CASE(each_way_of_dying_costs_only_that_texts_dense_indexing) {
  IsolatedDaemon d(Broken::embedder);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  BOOST_TEST(d.health() == "running");
  int round = 0;
  std::vector<std::uint64_t> stored;
  for (const char* trigger : {"segfault", "abort", "exit", "terminate", "hang"}) {
    ++round;
    memos::NewItem poison{std::string("please ") + trigger + " now"};
    poison.wait_searchable = true;
    auto r = d.client->add("c", poison);
    BOOST_REQUIRE_MESSAGE(r.ok(), trigger << ": " << error_of(r));
    stored.push_back(r->id);
    BOOST_TEST(d.client->status().ok());  // memosd is up
    if (std::string(trigger) == "exit") {
      // The third death within the window: quarantined. Writes are still
      // stored; the dense search waits for the embedder.
      BOOST_TEST(d.health().find("quarantined") == 0, d.health());
      memos::NewItem later{"stored while quarantined"};
      later.wait_searchable = true;
      BOOST_REQUIRE(d.client->add("c", later).ok());
      auto q = d.client->search("c", "stored while quarantined", dense());
      BOOST_REQUIRE(!q.ok());
      BOOST_TEST(q.error().code == memos::ErrorCode::unavailable, q.error().message);
      BOOST_TEST(q.error().retryable);
      BOOST_TEST(q.error().message.find("quarantined") != std::string::npos, q.error().message);
      BOOST_REQUIRE(d.client->plugin_reload("crasher").ok());
      BOOST_TEST(d.health() == "running");
      // The cube's dense collection is rebuilt from the store, leaving
      // out the texts that killed the embedder.
      BOOST_REQUIRE_MESSAGE(d.dense_search_served(), d.process->log());
    }
    // (The text must not hold a trigger word itself.)
    const std::string normal = "recovered in round " + std::to_string(round);
    memos::NewItem next{normal};
    next.wait_searchable = true;
    auto n = d.client->add("c", next);
    BOOST_REQUIRE_MESSAGE(n.ok(), trigger << ": " << error_of(n) << "\n" << d.process->log());
    bool found = d.until_served([&] { return d.client->search("c", normal, dense()); });
    BOOST_REQUIRE(found);
    auto hits = d.client->search("c", normal, dense());
    BOOST_REQUIRE(hits.ok());
    BOOST_TEST(
        std::any_of(hits->begin(), hits->end(), [&](const auto& h) { return h.item.id == n->id; }),
        trigger);
  }
  std::string log = d.process->log();
  // SIGSEGV, or SIGABRT where AddressSanitizer catches the SIGSEGV first.
  BOOST_TEST((log.find("killed by signal 11") != std::string::npos ||
              log.find("killed by signal 6") != std::string::npos),
             log);
  BOOST_TEST(log.find("exited with status 3") != std::string::npos, log);
  BOOST_TEST(log.find("did not answer within") != std::string::npos, log);
  BOOST_TEST(log.find("quarantined") != std::string::npos, log);
  BOOST_TEST(log.find("left out of the dense retriever") != std::string::npos, log);
  // Every write is stored and lexically searchable, the poison ones too.
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  lexical.fresh = true;
  auto hits = d.client->search("c", "please now", lexical);
  BOOST_REQUIRE(hits.ok());
  for (std::uint64_t id : stored) {
    BOOST_TEST(
        std::any_of(hits->begin(), hits->end(), [&](const auto& h) { return h.item.id == id; }));
  }
  auto shown = d.client->cube_show("c");
  BOOST_REQUIRE(shown.ok());
  BOOST_TEST(shown->indexes.find("left out") != std::string::npos, shown->indexes);
  BOOST_TEST(d.process->stop() == 0);
}

// Replies that are not what was asked: undecodable bytes, a reply of the
// wrong kind, MEMOS_OK with no result, a reply over the host protocol's
// limit. The write is stored (answered once durable); only its text stays
// out of the dense retriever, saying why in the log; the host lives on.
BOOST_AUTO_TEST_CASE(an_embedders_bad_replies_cost_only_that_texts_dense_indexing) {
  IsolatedDaemon d(Broken::embedder, 3, kNoHangTimeoutMs);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  int round = 0;
  for (const char* trigger : {"garbage", "wrongkind", "silent", "oversized"}) {
    ++round;
    memos::NewItem bad{std::string("please ") + trigger + " now"};
    bad.wait_searchable = true;
    auto r = d.client->add("c", bad);
    BOOST_REQUIRE_MESSAGE(r.ok(), trigger << ": " << error_of(r));
    BOOST_TEST(d.client->status().ok());
    BOOST_TEST(d.health() == "running", trigger << ": " << d.health());
    // (The text must not hold a trigger word itself.)
    memos::NewItem next{"served in round " + std::to_string(round)};
    next.wait_searchable = true;
    BOOST_TEST(d.client->add("c", next).ok(), trigger);
    BOOST_TEST(d.client->search("c", next.text, dense()).ok(), trigger);
  }
  auto c = d.client->cube_show("c");
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(c->live_items == 9u);  // every write was stored
  BOOST_TEST(c->indexes.find("4 item(s) left out") != std::string::npos, c->indexes);
  std::string log = d.process->log();
  BOOST_TEST(log.find("embedder crasher") != std::string::npos, log);
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(an_embedder_hogging_memory_fails_its_own_allocations,
                     *boost::unit_test::label("memory_limit") *
                         boost::unit_test::precondition(memory_limit_enforced)) {
  IsolatedDaemon d(Broken::embedder, 3, kNoHangTimeoutMs);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  memos::NewItem hog{"please hog memory"};
  hog.wait_searchable = true;
  BOOST_REQUIRE(d.client->add("c", hog).ok());  // stored; its embedding failed
  BOOST_TEST(d.client->status().ok());
  BOOST_TEST(d.health() == "running");  // the host survived its plugin's allocations
  BOOST_TEST(d.process->log().find("bad_alloc") != std::string::npos, d.process->log());
  memos::NewItem next{"served afterwards"};
  next.wait_searchable = true;
  BOOST_TEST(d.client->add("c", next).ok());
  BOOST_TEST(d.client->search("c", "served afterwards", dense()).ok());
  BOOST_TEST(d.process->stop() == 0);
}

// The dense retriever dies, hangs and answers badly on searches; the search
// fails typed, memosd stays up, the plugin is quarantined after max_crashes
// deaths and `plugin reload` lifts it; meanwhile another client's cube is
// served (get, history, lexical search, add).
BOOST_AUTO_TEST_CASE(a_dense_retriever_failing_searches_costs_only_the_search) {
  constexpr int kMaxCrashes = 5;
  IsolatedDaemon d(Broken::dense, kMaxCrashes);
  BOOST_REQUIRE(d.add_normal("an ordinary memory about apples"));
  OtherClient other(d);
  BOOST_REQUIRE(d.dense_search_served());

  for (const char* trigger : {"garbage", "wrongkind", "silent", "oversized"}) {
    auto r = d.client->search("c", "an ordinary question", dense(trigger));
    BOOST_REQUIRE_MESSAGE(!r.ok(), trigger);
    BOOST_TEST(r.error().code == memos::ErrorCode::internal, trigger << ": " << r.error().message);
    BOOST_TEST(!r.error().retryable, trigger);
    BOOST_TEST(r.error().message.find("crasher-retriever") != std::string::npos, r.error().message);
    BOOST_TEST(d.health() == "running", trigger << ": " << d.health());
    BOOST_TEST(other.served() == "", trigger);
  }
  int deaths = 0;
  for (const char* trigger : {"segfault", "abort", "terminate", "hang", "exit"}) {
    ++deaths;
    auto r = d.client->search("c", "an ordinary question", dense(trigger));
    BOOST_REQUIRE_MESSAGE(!r.ok(), trigger);
    BOOST_TEST(r.error().code == memos::ErrorCode::unavailable,
               trigger << ": " << r.error().message);
    BOOST_TEST(r.error().retryable, trigger);
    BOOST_TEST(other.served() == "", trigger);
    if (deaths < kMaxCrashes) {
      BOOST_REQUIRE_MESSAGE(d.dense_search_served(), trigger << "\n" << d.process->log());
    }
  }
  BOOST_TEST(d.health().find("quarantined") == 0, d.health());
  auto q = d.client->search("c", "an ordinary question", dense());
  BOOST_REQUIRE(!q.ok());
  BOOST_TEST(q.error().code == memos::ErrorCode::unavailable);
  BOOST_TEST(q.error().message.find("quarantined") != std::string::npos, q.error().message);
  // Writes go on while the dense retriever is quarantined: they are durable,
  // and the cube is rebuilt from the store at the next start.
  auto added = other.client->add("other", {"more pears in a basket"});
  BOOST_TEST(added.ok());
  BOOST_TEST(other.served() == "");
  // The reload lifts the quarantine; the host starts on the next call, and
  // dense searches are served once the collections it lost are rebuilt.
  BOOST_REQUIRE(d.client->plugin_reload("crasher-retriever").ok());
  BOOST_TEST(d.health().find("quarantined") == std::string::npos, d.health());
  BOOST_TEST(d.dense_search_served(), d.process->log());
  BOOST_TEST(d.health() == "running");
  std::string log = d.process->log();
  BOOST_TEST(log.find("did not answer within") != std::string::npos, log);
  BOOST_TEST(log.find("exited with status 3") != std::string::npos, log);
  BOOST_TEST(log.find("quarantined") != std::string::npos, log);
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(a_dense_retriever_hogging_memory_fails_its_own_allocations,
                     *boost::unit_test::label("memory_limit") *
                         boost::unit_test::precondition(memory_limit_enforced)) {
  IsolatedDaemon d(Broken::dense, 3, kNoHangTimeoutMs);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  auto r = d.client->search("c", "an ordinary question", dense("hog"));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == memos::ErrorCode::internal, r.error().message);
  BOOST_TEST(r.error().message.find("bad_alloc") != std::string::npos, r.error().message);
  BOOST_TEST(d.health() == "running");
  BOOST_TEST(d.client->search("c", "an ordinary question", dense()).ok());
  BOOST_TEST(d.process->stop() == 0);
}

// The executor dies, hangs and answers badly while generating a chat's
// answer: the chat fails typed, memosd stays up, quarantine follows repeated
// deaths and `plugin reload` lifts it; searches and other cubes go on.
BOOST_AUTO_TEST_CASE(an_executor_failing_a_chat_costs_only_the_chat) {
  constexpr int kMaxCrashes = 5;
  IsolatedDaemon d(Broken::executor, kMaxCrashes);
  BOOST_REQUIRE(d.add_normal("an ordinary memory about apples"));
  OtherClient other(d);
  auto chat_served = [&] {
    return d.until_served([&] { return d.client->chat("c", "what about apples?"); });
  };
  auto answer = d.client->chat("c", "what about apples?");
  BOOST_REQUIRE_MESSAGE(answer.ok(), error_of(answer) << "\n" << d.process->log());
  BOOST_TEST(answer->text == "fine");

  for (const char* trigger : {"garbage", "wrongkind", "silent", "oversized"}) {
    auto r = d.client->chat("c", std::string("please ") + trigger + " now");
    BOOST_REQUIRE_MESSAGE(!r.ok(), trigger);
    BOOST_TEST(r.error().code == memos::ErrorCode::internal, trigger << ": " << r.error().message);
    BOOST_TEST(!r.error().retryable, trigger);
    BOOST_TEST(d.health() == "running", trigger << ": " << d.health());
    BOOST_TEST(other.served() == "", trigger);
  }
  int deaths = 0;
  for (const char* trigger : {"segfault", "abort", "terminate", "hang", "exit"}) {
    ++deaths;
    auto r = d.client->chat("c", std::string("please ") + trigger + " now");
    BOOST_REQUIRE_MESSAGE(!r.ok(), trigger);
    BOOST_TEST(r.error().code == memos::ErrorCode::unavailable,
               trigger << ": " << r.error().message);
    BOOST_TEST(r.error().retryable, trigger);
    BOOST_TEST(other.served() == "", trigger);
    if (deaths < kMaxCrashes) {
      BOOST_REQUIRE_MESSAGE(chat_served(), trigger << "\n" << d.process->log());
    }
  }
  BOOST_TEST(d.health().find("quarantined") == 0, d.health());
  // memctl metrics tells the same: five deaths, each the plugin's own.
  auto m = d.client->metrics();
  BOOST_REQUIRE(m.ok());
  for (const char* line : {"memosd_plugin_quarantined{plugin=\"crasher-executor\"} 1\n",
                           "memosd_plugin_deaths_total{plugin=\"crasher-executor\"} 5\n",
                           "memosd_plugin_faults_total{plugin=\"crasher-executor\"} 5\n"})
    BOOST_TEST(m->find(line) != std::string::npos, line << "\n" << *m);
  auto q = d.client->chat("c", "what about apples?");
  BOOST_REQUIRE(!q.ok());
  BOOST_TEST(q.error().code == memos::ErrorCode::unavailable);
  BOOST_TEST(q.error().message.find("quarantined") != std::string::npos, q.error().message);
  BOOST_TEST(d.client->search("c", "apples").ok());  // no executor needed
  BOOST_TEST(other.client->add("other", {"more pears in a basket"}).ok());
  // The reload lifts the quarantine; the host starts on the next call.
  BOOST_REQUIRE(d.client->plugin_reload("crasher-executor").ok());
  BOOST_TEST(d.health().find("quarantined") == std::string::npos, d.health());
  BOOST_TEST(chat_served());
  BOOST_TEST(d.health() == "running");
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(an_executor_hogging_memory_fails_its_own_allocations,
                     *boost::unit_test::label("memory_limit") *
                         boost::unit_test::precondition(memory_limit_enforced)) {
  IsolatedDaemon d(Broken::executor, 3, kNoHangTimeoutMs);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  auto r = d.client->chat("c", "please hog memory");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == memos::ErrorCode::internal, r.error().message);
  BOOST_TEST(r.error().message.find("bad_alloc") != std::string::npos, r.error().message);
  BOOST_TEST(d.health() == "running");
  BOOST_TEST(d.client->chat("c", "what about apples?").ok());
  BOOST_TEST(d.process->stop() == 0);
}

// A document that kills or stalls the dense retriever as it is indexed: the
// write is committed before indexing, so the add is acknowledged and the
// item readable; the failure is logged. A host that died lost every
// collection: memosd rebuilds them from the store, leaving out the item
// whose indexing killed it (sending it again would kill the host again,
// until quarantine), and says so in the log and in `cube show`. A bad reply
// (garbage) leaves the host up; a rebuild leaves out the item it refuses.
BOOST_AUTO_TEST_CASE(a_dense_retriever_failing_to_index_loses_no_write) {
  IsolatedDaemon d(Broken::dense, 100);
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  // "" when a dense search finds `text`, else what it found or its error.
  // Retried while the host restarts: the indexer runs behind the answers,
  // so a search served before the trigger reached the host may be followed
  // by the host's death (a retryable answer, as a client would see it).
  auto dense_search_misses = [&](const std::string& text) {
    std::string missed;
    d.until_served([&] {
      auto r = d.client->search("c", text, dense());
      missed = r.ok() ? "found only" : "error: " + r.error().message;
      if (r.ok()) {
        for (const memos::Hit& h : *r) {
          if (h.item.text == text) missed.clear();
          if (!missed.empty()) missed += " [" + h.item.text + "]";
        }
      }
      return r;
    });
    return missed;
  };
  for (const char* trigger : {"segfault", "garbage", "hang"}) {
    auto r = d.client->add("c", {std::string("a note that says ") + trigger});
    BOOST_REQUIRE_MESSAGE(r.ok(), trigger << ": " << error_of(r));
    BOOST_TEST(d.client->get("c", r->id).ok(), trigger);
    BOOST_TEST(d.client->status().ok());
    BOOST_REQUIRE_MESSAGE(d.dense_search_served(), trigger << ": " << d.last_error << "\n"
                                                           << d.process->log());
    const std::string missed = dense_search_misses("an ordinary memory");
    BOOST_TEST(missed == "", trigger << ": " << missed);
  }
  std::string log = d.process->log();
  BOOST_TEST(log.find("indexing 1 change(s) to cube c") != std::string::npos, log);
  BOOST_TEST(log.find("is left out of the crasher-retriever retriever") != std::string::npos, log);
  // Left out of the dense collection: the items that killed the host
  // (segfault, hang) and, found by the rebuild after the hang, the one the
  // plugin refuses (garbage). The rebuild runs behind the answers: wait for
  // it (a search is served from the moment the collection reopens).
  auto cube = d.client->cube_show("c");
  for (int i = 0;
       i < 200 && cube.ok() && cube->indexes.find("3 item(s) left out") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    cube = d.client->cube_show("c");
  }
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->live_items == 4u);
  BOOST_TEST(cube->indexes.find("3 item(s) left out") != std::string::npos, cube->indexes);
  BOOST_TEST(d.process->stop() == 0);
}

// The same, seen by another uid: while the dense retriever is quarantined
// for root's searches, uid 65534 reads, searches lexically and writes its
// own cube.
BOOST_AUTO_TEST_CASE(another_tenant_is_served_while_a_retriever_is_quarantined,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  IsolatedDaemon d(Broken::dense, 1);
  const std::string socket = d.process->socket();
  auto connect = [&socket](std::unique_ptr<memos::Client>* c) -> std::string {
    auto connected = memos::Client::connect(socket);
    if (!connected.ok()) return "connect: " + connected.error().message;
    *c = std::move(connected.value());
    return "";
  };
  // uid 65534 makes its cube while all is well.
  BOOST_TEST(memos::testing::as_uid(65534, [&]() -> std::string {
               std::unique_ptr<memos::Client> c;
               if (std::string e = connect(&c); !e.empty()) return e;
               if (!c->cube_create("mine").ok()) return "cube create";
               if (!c->add("mine", {"pears are ripe in autumn"}).ok()) return "add";
               return "";
             }) == "");
  auto r = d.client->search("c", "an ordinary question", dense("segfault"));
  BOOST_TEST(!r.ok());
  BOOST_TEST(d.health().find("quarantined") == 0, d.health());
  // Then, with the retriever quarantined, it is served all the same.
  BOOST_TEST(memos::testing::as_uid(65534, [&]() -> std::string {
               std::unique_ptr<memos::Client> c;
               if (std::string e = connect(&c); !e.empty()) return e;
               memos::SearchOptions lexical;
               lexical.mode = memos::SearchMode::lexical;
               auto pears = c->search("mine", "pears ripe", lexical);
               if (!pears.ok() || pears->empty()) return "lexical search for its item";
               std::string served = other_client_is_served(*c, "mine", pears->front().item.id);
               if (!served.empty()) return served;
               if (!c->add("mine", {"more pears in a basket"}).ok()) return "add";
               // Its dense search needs the quarantined plugin: refused, typed.
               auto s = c->search("mine", "pears", dense());
               if (s.ok() || s.error().code != memos::ErrorCode::unavailable)
                 return "dense search not refused as unavailable";
               return "";
             }) == "");
  BOOST_TEST(d.process->stop() == 0);
}

// The real FAISS retriever, isolated, whose host is killed from outside (as
// the OOM killer would) with nothing in flight: everything it held in memory
// is gone. memosd sees the death at once, answers dense searches
// `unavailable` (retryable) meanwhile, keeps acknowledging writes, and
// rebuilds every cube's collection from the store, without a restart:
// each acknowledged item, from before and after the kill, is found again.
BOOST_AUTO_TEST_CASE(a_dense_retriever_whose_host_is_killed_is_rebuilt_from_the_store) {
  TempDir dir;
  const std::string plugins = dir.path() + "/plugins";
  fs::create_directories(plugins);
  fs::copy_file(std::string(MEMOS_PLUGIN_DIR) + "/faiss-retriever/memos-faiss-retriever.so",
                plugins + "/memos-faiss-retriever.so");
  // The packaged plugin, isolated: this folder comes first in `paths`, so
  // its manifest wins over the packaged one of the same name.
  std::ofstream(plugins + "/faiss-retriever.plugin.toml")
      << "name = \"faiss-retriever\"\nkinds = [\"retriever\"]\nabi_major = 1\n"
      << "library = \"memos-faiss-retriever.so\"\nisolation = \"isolated\"\n"
      << "[capabilities]\nmodes = \"dense\"\n";
  std::ofstream(dir.path() + "/memosd.conf")
      << "[plugins]\npaths = [\"" << plugins << "\", \"" << MEMOS_PLUGIN_DIR << "\"]\n"
      << "dense = \"faiss-retriever\"\ncall_timeout_ms = " << kNoHangTimeoutMs << "\n";
  MemosdProcess memosd(MEMOS_MEMOSD, dir.path(), {"--config", dir.path() + "/memosd.conf"});
  BOOST_REQUIRE_MESSAGE(memosd.start(), memosd.log());
  auto c = memos::Client::connect(memosd.socket());
  BOOST_REQUIRE(c.ok());
  memos::Client& client = **c;
  BOOST_REQUIRE(client.cube_create("c").ok());
  const char* kWords[] = {"apple",  "harbor", "violin", "glacier", "pepper",
                          "quartz", "meadow", "rocket", "saffron", "tundra"};
  auto text_of = [&](int i) {
    return std::string("memory ") + kWords[i % 10] + " " + kWords[(i / 10) % 10] + " " +
           std::to_string(i);
  };
  std::vector<std::uint64_t> ids;
  auto add = [&](int i) {
    auto r = client.add("c", {text_of(i)});
    BOOST_REQUIRE_MESSAGE(r.ok(), error_of(r));
    ids.push_back(r->id);
  };
  for (int i = 0; i < 30; ++i) add(i);

  const auto hosts = memos::testing::plugin_hosts(memosd.pid(), "faiss-retriever");
  BOOST_REQUIRE_MESSAGE(hosts.size() == 1u, "no memos-plugin-host for faiss-retriever");
  BOOST_REQUIRE(::kill(hosts.front(), SIGKILL) == 0);
  // The reader sees the death; until the rebuild, dense searches are refused
  // as retryable, never answered from an empty collection.
  for (int i = 30; i < 40; ++i) add(i);
  bool refused_retryably = false;
  for (int i = 0; i < static_cast<int>(ids.size()); ++i) {
    memos::SearchOptions o = dense();
    o.k = 1;
    bool found = false;
    for (int attempt = 0; attempt < 600 && !found; ++attempt) {
      auto r = client.search("c", text_of(i), o);
      if (!r.ok()) {
        BOOST_REQUIRE_MESSAGE(r.error().retryable, r.error().message);
        refused_retryably = true;
        std::this_thread::sleep_for(50ms);
        continue;
      }
      BOOST_REQUIRE_MESSAGE(!r->empty(), "an empty answer for item " << i);
      BOOST_REQUIRE_MESSAGE(r->front().item.id == ids[i], "item " << i << " is not found first");
      found = true;
    }
    BOOST_REQUIRE_MESSAGE(found, "item " << i << " never found\n" << memosd.log());
  }
  BOOST_TEST(refused_retryably);
  BOOST_TEST(memosd.log().find("host died: reopening") != std::string::npos, memosd.log());
  BOOST_TEST(memosd.stop() == 0);
}

BOOST_AUTO_TEST_CASE(an_isolated_plugin_that_cannot_start_is_a_clear_start_up_error) {
  TempDir dir;
  std::string plugins = dir.path() + "/plugins";
  fs::create_directories(plugins);
  std::ofstream(plugins + "/ghost.plugin.toml")
      << "name = \"ghost\"\nkinds = [\"embedder\"]\nabi_major = 1\n"
      << "library = \"ghost.so\"\nisolation = \"isolated\"\n";
  std::ofstream(dir.path() + "/memosd.conf")
      << "[plugins]\npaths = [\"" << plugins << "\"]\nembedder = \"ghost\"\n";
  std::string out, err;
  int rc = memos::testing::run_command({MEMOS_MEMOSD, "--socket", dir.path() + "/s", "--data",
                                        dir.path() + "/d", "--config", dir.path() + "/memosd.conf"},
                                       &out, &err);
  BOOST_TEST(rc == 1);
  BOOST_TEST(err.find("cannot load") != std::string::npos, err);
}
