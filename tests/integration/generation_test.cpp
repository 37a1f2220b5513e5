// Memory-augmented generation and the activation tier through a real memosd
// with the llama.cpp executor on a tiny generated model: states stored by
// --activate are restored and give the same answers as a prefill; a state of
// another model or KV type is never used; a corrupt blob is recomputed and
// logged; an executor that dies mid-call fails the request with a retryable
// error while memosd stays up; items survive restarts; each tenant stays
// within its budget; hostile requests get clear errors.
#define BOOST_TEST_MODULE generation
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/plugin_hosts.h"
#include "tests/support/printing.h"
#include "tests/support/raw_request.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const memos::ActivationOutcome kNone{};
const memos::ActivationOutcome kStored{.stored = true};
const memos::ActivationOutcome kRestored{.restored = true};

// The chat did exactly `outcome` with the activation tier (and, when it
// stored the block's state, storing did not fail).
bool did(const memos::ChatReply& r, const memos::ActivationOutcome& outcome) {
  return r.activation_status == outcome;
}

// The status as memctl prints it, for messages.
std::string status_of(const memos::ChatReply& r) {
  return memos::to_string(r.activation_status);
}

// Models made once for the whole run.
struct Models {
  TempDir dir;
  std::string a = dir.path() + "/a.gguf";
  std::string b = dir.path() + "/b.gguf";  // same shape, other weights
  Models() {
    for (auto [path, seed] : {std::pair{a, "1"}, std::pair{b, "2"}}) {
      std::string out, err;
      int rc = run_command({MEMOS_MKMODEL, "--out", path, "--vocab", MEMOS_TEST_VOCAB, "--preset",
                            "tiny", "--seed", seed},
                           &out, &err);
      BOOST_REQUIRE_MESSAGE(rc == 0, "memos-mkmodel: " + err);
    }
  }
};

const Models& models() {
  static Models m;
  return m;
}

// executor.device: MEMOS_TEST_DEVICE (scripts/test-gpu: "gpu"), else auto.
std::string test_device() {
  const char* d = std::getenv("MEMOS_TEST_DEVICE");
  return d && *d ? d : "auto";
}

std::string config(const std::string& model, const std::string& extra = "") {
  return "[executor]\nmodel = \"" + model +
         "\"\nthreads = 2\nbatch = 32\nmax_tokens = 256\ndevice = \"" + test_device() +
         "\"\n"
         // These tests count the states their chats store: the scheduler's
         // background working-set states would be more (scheduler_test.cpp
         // tests those).
         "[scheduler]\nenabled = false\n"
         "[activation]\nchunk_tokens = 16\n" +
         extra;
}

// A memosd on `dir` with `conf`; loading a model takes longer than a start.
struct Daemon : memos::testing::Daemon {
  Daemon(const std::string& dir, const std::string& conf)
      : memos::testing::Daemon(dir, conf, 60s) {}
};

const char* const kMemories[] = {
    "Maya is allergic to peanuts and carries an EpiPen everywhere she goes.",
    "Maya moved from Lisbon to Almada in October and rents a small flat there.",
    "Maya swims at the municipal pool every Saturday morning before breakfast.",
    "Maya's brother Tiago is a marine biologist working in the Azores.",
    "Maya prefers green tea to coffee and never drinks anything after six.",
    "Maya is learning Japanese and practises kanji for twenty minutes a day.",
    "Maya's cat is called Pimenta and sleeps on the bookshelf.",
    "Maya works as a structural engineer on bridge inspections.",
};

std::vector<std::uint64_t> fill(memos::Client& c, const std::string& cube) {
  BOOST_REQUIRE(c.cube_create(cube).ok());
  std::vector<std::uint64_t> ids;
  for (const char* text : kMemories) {
    auto r = c.add(cube, {text});
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    ids.push_back(r->id);
  }
  return ids;
}

memos::ChatOptions with_ids(std::vector<std::uint64_t> ids, bool activate = false) {
  memos::ChatOptions o;
  o.ids = std::move(ids);
  o.activate = activate;
  o.max_tokens = 8;
  return o;
}

// A memosd on `dir` (model a) fills cube "maya" and chats over all of it with
// --activate, then stops; returns the answer.
std::string activate_all(const std::string& dir, std::vector<std::uint64_t>* ids) {
  Daemon d(dir, config(models().a));
  auto c = d.client();
  *ids = fill(*c, "maya");
  auto stored = c->chat("maya", "Where does Maya live?", with_ids(*ids, true));
  BOOST_REQUIRE_MESSAGE(stored.ok(), why(stored));
  BOOST_TEST(did(*stored, kStored), status_of(*stored));
  return stored->text;
}

// The memos-plugin-host running the executor under memosd `parent`, or -1.
pid_t executor_host(pid_t parent) {
  auto hosts = memos::testing::plugin_hosts(parent, "llama-executor");
  return hosts.empty() ? -1 : hosts.front();
}

}  // namespace

BOOST_AUTO_TEST_CASE(activate_stores_the_block_and_the_next_chat_restores_it) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  std::vector<std::uint64_t> block(ids.begin(), ids.begin() + 6);

  auto plain = c->chat("maya", "Where does Maya live?", with_ids(block));
  BOOST_REQUIRE_MESSAGE(plain.ok(), why(plain));
  BOOST_TEST(did(*plain, kNone), status_of(*plain));
  BOOST_TEST(plain->reused_tokens == 0u);
  BOOST_TEST(plain->block_tokens > 16u);
  BOOST_TEST(plain->generated_tokens > 0u);

  auto stored = c->chat("maya", "Where does Maya live?", with_ids(block, true));
  BOOST_REQUIRE_MESSAGE(stored.ok(), why(stored));
  BOOST_TEST(did(*stored, kStored), status_of(*stored));
  BOOST_TEST(stored->activation != 0u);
  BOOST_TEST(stored->text == plain->text);  // greedy, same batches: same answer

  auto items = c->kv_list("maya");
  BOOST_REQUIRE_MESSAGE(items.ok(), why(items));
  BOOST_REQUIRE(items->size() == 1u);
  BOOST_TEST(items->front().id == stored->activation);
  BOOST_TEST(items->front().tokens == stored->block_tokens);
  BOOST_TEST(
      (std::set<std::uint64_t>(items->front().sources.begin(), items->front().sources.end()) ==
       std::set<std::uint64_t>(block.begin(), block.end())));

  // Another question over the same memories restores the block.
  auto restored = c->chat("maya", "Where does Maya live?", with_ids(block));
  BOOST_REQUIRE_MESSAGE(restored.ok(), why(restored));
  BOOST_TEST(did(*restored, kRestored), status_of(*restored));
  BOOST_TEST(restored->activation == stored->activation);
  // The same prompt again: the executor's context still holds it, so all
  // but its last token are reused from there and no state is read.
  BOOST_TEST(restored->cached_tokens == restored->prompt_tokens - 1u);
  BOOST_TEST(restored->reused_tokens == restored->cached_tokens);
  BOOST_TEST(restored->text == plain->text);
  auto other = c->chat("maya", "What pet does Maya have?", with_ids(block));
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(did(*other, kRestored), status_of(*other));
  BOOST_TEST(other->resident);  // read once, kept in the executor's memory
  auto other_plain = c->chat("maya", "What pet does Maya have?", [&] {
    auto o = with_ids(block);
    o.no_reuse = true;
    return o;
  }());
  BOOST_REQUIRE(other_plain.ok());
  BOOST_TEST(did(*other_plain, kNone), status_of(*other_plain));
  BOOST_TEST(other_plain->text == other->text);

  // A block that extends the stored one reuses its shared whole chunks.
  auto longer = c->chat("maya", "Where does Maya live?", with_ids(ids));
  BOOST_REQUIRE(longer.ok());
  BOOST_TEST(did(*longer, kRestored), status_of(*longer));
  BOOST_TEST(longer->reused_tokens >= 16u);
  BOOST_TEST(longer->reused_tokens < longer->block_tokens);
  // memctl metrics counts them: the two chats before the state missed, the
  // three since restored it (no_reuse's is not a lookup).
  auto m = c->metrics();
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->find("memosd_activation_chats_total{result=\"hit\"} 3\n") != std::string::npos, *m);
  BOOST_TEST(m->find("memosd_activation_chats_total{result=\"miss\"} 2\n") != std::string::npos,
             *m);

  // kv prefill of the same block finds it; of the most read ones makes one.
  auto again = c->kv_prefill("maya", block);
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(again->id == stored->activation);
  BOOST_TEST(again->prefill_ms == 0.0);
  auto top = c->kv_prefill("maya", {}, 3);
  BOOST_REQUIRE_MESSAGE(top.ok(), why(top));
  BOOST_TEST(top->sources.size() == 3u);
  BOOST_TEST(top->prefill_ms > 0.0);
  auto stats = c->kv_stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->items == 2u);
  BOOST_TEST(stats->model_hash.size() == 64u);
  BOOST_TEST(stats->resident_hits >= 1u);
  // Where the executor runs and where its resident states live, in kv stats,
  // memctl status and memctl kv stats alike.
  auto status = c->status();
  BOOST_REQUIRE(status.ok());
  BOOST_TEST(status->executor_device == stats->device);
  BOOST_TEST(stats->layers == 2u);
  BOOST_TEST(stats->device_total_bytes > 0u);
  BOOST_TEST(stats->resident_states >= 1u);
  std::string shown, err;
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "status"}, &shown, &err) ==
             0);
  if (stats->device == "CPU") {
    BOOST_TEST(stats->gpu_layers == 0u);
    BOOST_TEST(stats->resident_pinned_states == 0u);  // ordinary memory on the CPU
    BOOST_TEST(stats->pinned_budget_bytes == 0u);
    BOOST_TEST(shown.find("executor     on the CPU") != std::string::npos, shown);
  } else {
    BOOST_TEST(stats->gpu_layers == 2u);
    BOOST_TEST(stats->resident_pinned_states == stats->resident_states);
    BOOST_TEST(shown.find("executor     on " + stats->device) != std::string::npos, shown);
  }
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "kv", "stats"}, &shown,
                         &err) == 0);
  BOOST_TEST(shown.find("device     " + stats->device) != std::string::npos, shown);
  BOOST_TEST(shown.find("in page-locked memory") != std::string::npos, shown);

  // Items survive a restart; the first use reads the blob again.
  BOOST_TEST(d.process->stop() == 0);
  Daemon d2(dir.path(), config(models().a));
  auto c2 = d2.client();
  auto after = c2->chat("maya", "Where does Maya live?", with_ids(block));
  BOOST_REQUIRE_MESSAGE(after.ok(), why(after));
  BOOST_TEST(did(*after, kRestored), status_of(*after));
  BOOST_TEST(!after->resident);
  BOOST_TEST(after->text == plain->text);

  // Removing an item: gone from the list, the next chat decodes the block.
  auto gone = c2->kv_remove("maya", stored->activation);
  BOOST_REQUIRE_MESSAGE(gone.ok(), why(gone));
  auto none = c2->chat("maya", "Where does Maya live?", with_ids(block));
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(did(*none, kNone), status_of(*none));
  auto missing = c2->kv_remove("maya", stored->activation);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST((missing.error().code == memos::ErrorCode::not_found));
  // Removing the cube removes its items.
  BOOST_REQUIRE(c2->cube_remove("maya", true).ok());
  auto st = c2->kv_stats();
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->items == 0u);
}

BOOST_AUTO_TEST_CASE(a_state_of_another_model_or_kv_type_is_never_used) {
  TempDir dir;
  std::vector<std::uint64_t> ids;
  activate_all(dir.path(), &ids);
  // The same memories under another model: the stored state is not offered.
  {
    Daemon d(dir.path(), config(models().b));
    auto c = d.client();
    auto r = c->chat("maya", "Where does Maya live?", with_ids(ids));
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    BOOST_TEST(did(*r, kNone), status_of(*r));
    BOOST_TEST(r->reused_tokens == 0u);
    auto items = c->kv_list("maya");
    BOOST_REQUIRE(items.ok());
    BOOST_TEST(items->size() == 1u);  // kept for the model that made it
  }
  // The same model with another KV type.
  {
    std::string conf = config(models().a);
    conf.replace(conf.find("threads = 2"), 11, "threads = 2\nkv_type = \"f32\"");
    Daemon d(dir.path(), conf);
    auto c = d.client();
    auto r = c->chat("maya", "Where does Maya live?", with_ids(ids));
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    BOOST_TEST(did(*r, kNone), status_of(*r));
  }
}

BOOST_AUTO_TEST_CASE(a_corrupt_blob_is_recomputed_and_logged) {
  TempDir dir;
  std::vector<std::uint64_t> ids;
  std::string plain_text = activate_all(dir.path(), &ids);
  // Flip a byte in the middle of every blob file.
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() + "/data/blobs")) {
    if (!e.is_regular_file() || e.path().parent_path().filename() == "tmp") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    auto size = fs::file_size(e.path());
    f.seekg(static_cast<std::streamoff>(size / 2));
    char byte = 0;
    f.read(&byte, 1);
    byte ^= 0x5a;
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&byte, 1);
    ++damaged;
  }
  BOOST_REQUIRE(damaged >= 1);
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto r = c->chat("maya", "Where does Maya live?", with_ids(ids));
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(!r->activation_status.rejected.empty(), status_of(*r));
  BOOST_TEST(r->reused_tokens == 0u);
  BOOST_TEST(r->text == plain_text);  // recomputed, same answer
  BOOST_TEST(d.process->log().find("was not used") != std::string::npos);
  // The damaged item is gone; activating again stores a good one.
  auto items = c->kv_list("maya");
  BOOST_REQUIRE(items.ok());
  BOOST_TEST(items->empty());
  auto fresh = c->chat("maya", "Where does Maya live?", with_ids(ids, true));
  BOOST_REQUIRE(fresh.ok());
  BOOST_TEST(did(*fresh, kStored), status_of(*fresh));
  auto reused = c->chat("maya", "Where does Maya live?", with_ids(ids));
  BOOST_REQUIRE(reused.ok());
  BOOST_TEST(did(*reused, kRestored), status_of(*reused));
}

BOOST_AUTO_TEST_CASE(an_executor_dying_mid_call_fails_it_retryably_and_memosd_stays_up) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  BOOST_REQUIRE(c->chat("maya", "warm up", with_ids(ids)).ok());
  pid_t host = executor_host(d.process->pid());
  BOOST_REQUIRE_MESSAGE(host > 0, "no memos-plugin-host for llama-executor");
  // Stopped, the host holds the call; killed, it dies in the middle of it.
  BOOST_REQUIRE(kill(host, SIGSTOP) == 0);
  auto pending = c->chat_async("maya", "Where does Maya live?", with_ids(ids, true));
  std::this_thread::sleep_for(300ms);
  BOOST_REQUIRE(kill(host, SIGKILL) == 0);
  auto r = pending.get();
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == memos::ErrorCode::unavailable), r.error().message
                                                                    << "\n"
                                                                    << d.process->log());
  BOOST_TEST(r.error().retryable);
  // memosd is up, and the retry succeeds on a new host.
  auto status = c->status();
  BOOST_REQUIRE_MESSAGE(status.ok(), d.process->log());
  memos::Result<memos::ChatReply> retry = c->chat("maya", "Where does Maya live?", with_ids(ids));
  for (int i = 0; i < 50 && !retry.ok() && retry.error().retryable; ++i) {
    std::this_thread::sleep_for(200ms);
    retry = c->chat("maya", "Where does Maya live?", with_ids(ids));
  }
  BOOST_REQUIRE_MESSAGE(retry.ok(), why(retry));
  BOOST_TEST(retry->generated_tokens > 0u);
}

BOOST_AUTO_TEST_CASE(each_tenant_stays_within_its_budget_least_recent_first) {
  TempDir dir;
  // Tiny states are about 10 KB; a 1 MB budget holds a few dozen.
  Daemon d(dir.path(), config(models().a, "tenant_max_mb = 1\neviction = \"lru\"\n"));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  std::uint64_t first = 0;
  std::size_t made = 0;
  // Distinct blocks: every pair of memories.
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (std::size_t j = i + 1; j < ids.size(); ++j) {
      auto r = c->kv_prefill("maya", {ids[i], ids[j]});
      if (!r.ok() && r.error().code == memos::ErrorCode::conflict) continue;  // under a chunk
      BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
      if (!first) first = r->id;
      ++made;
    }
  }
  auto stats = c->kv_stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->bytes <= stats->tenant_max_bytes);
  auto items = c->kv_list("maya");
  BOOST_REQUIRE(items.ok());
  BOOST_TEST(items->size() == stats->items);
  if (stats->items < made) {
    // Something was evicted: the first made (least recently used) first.
    for (const auto& a : *items) BOOST_TEST(a.id != first);
  }
  BOOST_TEST_MESSAGE("made " << made << ", kept " << stats->items << " (" << stats->bytes
                             << " bytes)");
}

BOOST_AUTO_TEST_CASE(tenants_never_share_states) {
  TempDir dir;
  chmod(dir.path().c_str(), 0755);  // uid 65534 reaches the socket
  Daemon d(dir.path(), config(models().a));
  // Both tenants keep the same memories in a cube of the same name, and
  // activate them; neither restores the other's state.
  auto run_tenant = [&]() -> int {
    auto connected = memos::Client::connect(d.process->socket());
    if (!connected.ok()) return 11;
    auto& c = *connected.value();
    if (!c.cube_create("shared").ok()) return 12;
    std::vector<std::uint64_t> ids;
    for (const char* text : kMemories) {
      auto r = c.add("shared", {text});
      if (!r.ok()) return 13;
      ids.push_back(r->id);
    }
    // Ids differ between tenants, but a block is made of texts only.
    auto first = c.chat("shared", "Where does Maya live?", with_ids(ids, true));
    if (!first.ok()) return 14;
    if (!did(*first, kStored)) return 15;
    auto stats = c.kv_stats();
    if (!stats.ok() || stats->items != 1) return 16;
    return 0;
  };
  BOOST_TEST(memos::testing::as_uid(65534, [&] {
               int failed = run_tenant();
               return failed == 0 ? std::string() : "check " + std::to_string(failed);
             }) == "");
  BOOST_TEST(run_tenant() == 0);  // root: "stored", not "restored" from uid 65534's
}

BOOST_AUTO_TEST_CASE(hostile_requests_get_clear_errors) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  auto code_of = [](const auto& r) { return r.ok() ? memos::ErrorCode::unknown : r.error().code; };
  using memos::ErrorCode;
  BOOST_TEST((code_of(c->chat("maya", "")) == ErrorCode::bad_request));
  auto nope = c->chat("nope", "hi");
  BOOST_TEST((code_of(nope) == ErrorCode::not_found), why(nope));
  BOOST_TEST((code_of(c->chat("../x", "hi")) == ErrorCode::bad_request));
  memos::ChatOptions o;
  o.k = 1000;
  BOOST_TEST((code_of(c->chat("maya", "hi", o)) == ErrorCode::bad_request));
  o = {};
  o.max_tokens = 100000;
  BOOST_TEST((code_of(c->chat("maya", "hi", o)) == ErrorCode::bad_request));
  // The SDK sends only the modes it knows; a client of another make may
  // send any name.
  auto psychic = memos::testing::raw_request(d.process->socket(), [](auto r) {
    auto chat = r.initChat();
    chat.setCube("maya");
    chat.setPrompt("hi");
    chat.setMode("psychic");
  });
  BOOST_TEST(psychic.is_error);
  BOOST_TEST((psychic.code == memos::wire::ErrorCode::BAD_REQUEST), psychic.message);
  o = {};
  o.temperature = -1;
  BOOST_TEST((code_of(c->chat("maya", "hi", o)) == ErrorCode::bad_request));
  o.temperature = std::nanf("");
  BOOST_TEST((code_of(c->chat("maya", "hi", o)) == ErrorCode::bad_request));
  o = {};
  o.top_p = 2;
  BOOST_TEST((code_of(c->chat("maya", "hi", o)) == ErrorCode::bad_request));
  BOOST_TEST((code_of(c->chat("maya", "hi", with_ids({12345}))) == ErrorCode::not_found));
  // A prompt past the model's context (512 tokens).
  std::string huge;
  for (int i = 0; i < 400; ++i) huge += "peanuts and cashews ";
  BOOST_TEST((code_of(c->chat("maya", huge, with_ids(ids))) == ErrorCode::too_large));
  // Text the tokenizer must survive: control bytes, invalid UTF-8, specials.
  for (std::string odd : {std::string("\x01\x02\x7f", 3), std::string("<s></s><unk>")}) {
    auto r = c->chat("maya", "hi " + odd, with_ids(ids));
    BOOST_TEST(r.ok(), why(r));
  }
  // A NUL is refused, as in every text (it once cut the prompt short).
  BOOST_TEST((code_of(c->chat("maya", "hi " + std::string(3, '\0'), with_ids(ids))) ==
              ErrorCode::bad_request));
  BOOST_TEST((code_of(c->chat("maya", "hi \xff\xfe")) == ErrorCode::bad_request));
  BOOST_TEST((code_of(c->kv_prefill("maya", {})) == ErrorCode::bad_request));
  BOOST_TEST((code_of(c->kv_prefill("maya", {ids[0]}, 3)) == ErrorCode::bad_request));
  BOOST_TEST((code_of(c->kv_prefill("maya", {}, 5000)) == ErrorCode::bad_request));
  BOOST_TEST((code_of(c->kv_list("nope")) == ErrorCode::not_found));
  BOOST_TEST((code_of(c->kv_remove("maya", 42)) == ErrorCode::not_found));
  BOOST_TEST(c->status().ok());  // still up
}

// A chat with a budget answers over the routed search's context (memos(7),
// "Routing"): the hit, its neighbouring turns of the same session, cut to
// the token budget at compress=mid; and says what each module did.
BOOST_AUTO_TEST_CASE(a_routed_chat_answers_over_the_routed_context) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("talk").ok());
  std::vector<std::uint64_t> session;
  for (const char* text :
       {"Caroline: I went to a support group yesterday.", "Melanie: How did it go?",
        "Caroline: I am researching adoption agencies now.", "Melanie: Which agencies?",
        "Caroline: Ones that welcome every family. It matters to me a great deal."}) {
    memos::NewItem item{text};
    item.session_id = "D1";
    auto r = c->add("talk", item);
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    session.push_back(r->id);
  }
  memos::ChatOptions o;
  o.k = 1;
  o.max_tokens = 4;
  o.routing.route = memos::Route::all(memos::CostTier::low);
  (*o.routing.route)[memos::Module::expand] = memos::CostTier::mid;
  auto whole = c->chat("talk", "What is Caroline researching?", o);
  BOOST_REQUIRE_MESSAGE(whole.ok(), why(whole));
  BOOST_REQUIRE(whole->modules.size() == memos::kModules + 1);  // and answer
  BOOST_TEST(whole->modules[2].detail == "2 neighbouring turns");
  // The hit between its neighbours, in the order they were said.
  BOOST_TEST((whole->memories == std::vector<std::uint64_t>{session[1], session[2], session[3]}));
  // compress=mid with a tight budget: a smaller block.
  (*o.routing.route)[memos::Module::compress] = memos::CostTier::mid;
  o.routing.context_tokens = 16;
  auto cut = c->chat("talk", "What is Caroline researching?", o);
  BOOST_REQUIRE_MESSAGE(cut.ok(), why(cut));
  BOOST_TEST(cut->block_tokens < whole->block_tokens);
  BOOST_TEST(!cut->memories.empty());
  // Options that do not combine, and a tier that is not built.
  memos::ChatOptions named = o;
  named.ids = {session[0]};
  BOOST_TEST((c->chat("talk", "q", named).error().code == memos::ErrorCode::bad_request));
  memos::ChatOptions moded = o;
  moded.mode = memos::SearchMode::dense;
  BOOST_TEST((c->chat("talk", "q", moded).error().code == memos::ErrorCode::bad_request));
  // The executor's tiers: every module high, in a chat (on the executor's
  // lane) and a search (queued to it). Whatever the tiny model answers (it
  // is random), each module keeps its contract and says what the model did.
  memos::ChatOptions high = o;
  high.routing.route = memos::Route::all(memos::CostTier::high);
  high.routing.answer = memos::CostTier::high;  // executor.model: no executor.models here
  high.routing.context_tokens = 16;
  auto h = c->chat("talk", "When did Caroline go to the support group?", high);
  BOOST_REQUIRE_MESSAGE(h.ok(), why(h));
  BOOST_REQUIRE(h->modules.size() == memos::kModules + 1);
  for (const auto& m : h->modules) {
    BOOST_TEST((m.tier == memos::CostTier::high), m.detail);
    if (m.module != memos::Module::retrieve && m.module != memos::Module::answer)
      BOOST_TEST(m.detail.find("model") != std::string::npos, m.detail);
  }
  BOOST_TEST(!h->memories.empty());
  memos::SearchOptions searched;
  searched.k = 2;
  searched.routing.route = memos::Route::all(memos::CostTier::high);
  auto sr = c->search_routed("talk", "What is Caroline researching?", searched);
  BOOST_REQUIRE_MESSAGE(sr.ok(), why(sr));
  BOOST_REQUIRE(sr->modules.size() == memos::kModules);
  BOOST_TEST(sr->modules[2].detail.find("model") != std::string::npos, sr->modules[2].detail);
  for (const auto& piece : sr->context) {
    // Every piece is a memory of the cube, a hit or a turn of its session.
    BOOST_TEST((std::find(session.begin(), session.end(), piece.item_id) != session.end()));
  }
  // Without a route: no modules.
  memos::ChatOptions plain;
  plain.max_tokens = 4;
  auto r = c->chat("talk", "What is Caroline researching?", plain);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->modules.empty());
}

// The answer module (executor.models): each tier's model answers, in an
// executor of its own, and keeps its own activation states.
BOOST_AUTO_TEST_CASE(the_answer_module_runs_the_model_of_its_tier) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a, "[executor.models]\nhigh = \"" + models().b +
                                              "\"\nlow = \"" + models().a + "\"\n"));
  // executor.model's host and executor.models.high's: a.gguf is loaded once.
  BOOST_TEST(memos::testing::plugin_hosts(d.process->pid(), "llama-executor").size() == 2u);
  auto c = d.client();
  fill(*c, "maya");
  const std::string question = "Where does Maya live and what does she drink?";
  auto answer_of = [](const memos::ChatReply& r) -> const memos::ModuleRun& {
    BOOST_REQUIRE(!r.modules.empty());
    BOOST_REQUIRE((r.modules.back().module == memos::Module::answer));
    return r.modules.back();
  };
  memos::ChatOptions high;
  high.max_tokens = 4;
  high.activate = true;
  high.routing.route = memos::Route::all(memos::CostTier::low);
  high.routing.answer = memos::CostTier::high;
  auto h = c->chat("maya", question, high);
  BOOST_REQUIRE_MESSAGE(h.ok(), why(h));
  BOOST_TEST((answer_of(*h).tier == memos::CostTier::high));
  BOOST_TEST(answer_of(*h).detail == "executor.models.high b.gguf", answer_of(*h).detail);
  BOOST_TEST(answer_of(*h).ms > 0);
  BOOST_TEST(did(*h, kStored), status_of(*h));
  // The same block at low: executor.model answers, and b's state is not its.
  memos::ChatOptions low = high;
  low.routing.answer = memos::CostTier::low;
  auto l = c->chat("maya", question, low);
  BOOST_REQUIRE_MESSAGE(l.ok(), why(l));
  BOOST_TEST(answer_of(*l).detail == "executor.model a.gguf", answer_of(*l).detail);
  BOOST_TEST(!l->activation_status.restored, status_of(*l));
  // At high again: its own state comes back.
  auto again = c->chat("maya", question, high);
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(again->activation_status.restored, status_of(*again));
  // Unset: mid, which names no model of its own.
  memos::ChatOptions mid = high;
  mid.activate = false;
  mid.routing.answer.reset();
  auto m = c->chat("maya", question, mid);
  BOOST_REQUIRE_MESSAGE(m.ok(), why(m));
  BOOST_TEST((answer_of(*m).tier == memos::CostTier::mid));
  BOOST_TEST(answer_of(*m).detail == "executor.model a.gguf", answer_of(*m).detail);
  // auto: the router's memory modules, the default tier's model.
  memos::ChatOptions automatic;
  automatic.max_tokens = 4;
  automatic.routing.auto_route = true;
  auto a = c->chat("maya", question, automatic);
  BOOST_REQUIRE_MESSAGE(a.ok(), why(a));
  BOOST_TEST(answer_of(*a).detail.find("default tier") != std::string::npos, answer_of(*a).detail);
  automatic.routing.answer = memos::CostTier::high;
  a = c->chat("maya", question, automatic);
  BOOST_REQUIRE_MESSAGE(a.ok(), why(a));
  BOOST_TEST(answer_of(*a).detail == "executor.models.high b.gguf", answer_of(*a).detail);
  // A search answers nothing: a route naming answer is refused.
  memos::SearchOptions so;
  so.routing.route = memos::Route{};
  so.routing.answer = memos::CostTier::high;
  auto sr = c->search_routed("maya", question, so);
  BOOST_TEST((sr.error().code == memos::ErrorCode::bad_request));
  BOOST_TEST(sr.error().message.find("answer") != std::string::npos, sr.error().message);
}

BOOST_AUTO_TEST_CASE(an_answer_tier_whose_model_will_not_load_stops_the_start) {
  TempDir dir;
  const std::string conf = dir.path() + "/memosd.conf";
  const std::string absent = dir.path() + "/absent.gguf";
  std::ofstream(conf) << config(models().a, "[executor.models]\nhigh = \"" + absent + "\"\n");
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", conf}, &out, &err) != 0);
  BOOST_TEST(err.find("executor.models.high = " + absent) != std::string::npos, err);
  // A file that is no model: memosd does not start, and says which key.
  std::ofstream(absent) << "GGUF, but not really";
  TempDir data;
  MemosdProcess p(MEMOS_MEMOSD, data.path(), {"--config", conf});
  BOOST_TEST(!p.start(60s));
  BOOST_TEST(p.log().find("executor.models.high = " + absent) != std::string::npos, p.log());
}

BOOST_AUTO_TEST_CASE(without_a_model_chat_says_how_to_configure_one) {
  TempDir dir;
  Daemon d(dir.path(), "");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("maya").ok());
  auto r = c->chat("maya", "hi");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code == memos::ErrorCode::unavailable));
  BOOST_TEST(!r.error().retryable);
  BOOST_TEST(r.error().message.find("executor.model") != std::string::npos);
  auto stats = c->kv_stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->model.empty());
  // A model that does not load stops memosd with a clear error.
  TempDir bad;
  std::string path = bad.path() + "/memosd.conf";
  std::ofstream(path) << "[executor]\nmodel = \"/nonexistent/model.gguf\"\n";
  MemosdProcess p(MEMOS_MEMOSD, bad.path(), {"--config", path});
  BOOST_TEST(!p.start(30s));
  BOOST_TEST(p.log().find("/nonexistent/model.gguf") != std::string::npos, p.log());
}

BOOST_AUTO_TEST_CASE(a_gguf_embedder_feeds_dense_search) {
  TempDir dir;
  // The tiny model's embeddings are 64 wide: unset, the dimension is the
  // model's; set to another, the daemon refuses to start and says so.
  const std::string embedder =
      "[plugins]\nembedder = \"llama-embedder\"\n"
      "[plugins.settings.llama-embedder]\nmodel = \"" +
      models().a + "\"\n";
  {
    TempDir wrong;
    std::string path = wrong.path() + "/memosd.conf";
    std::ofstream(path) << "[search]\nembedding_dim = 128\n" << embedder;
    MemosdProcess p(MEMOS_MEMOSD, wrong.path(), {"--config", path});
    BOOST_TEST(!p.start(60s));
    BOOST_TEST(p.log().find("set search.embedding_dim") != std::string::npos, p.log());
  }
  Daemon d(dir.path(), embedder);
  auto c = d.client();
  auto ids = fill(*c, "maya");
  auto shown = c->cube_show("maya");
  BOOST_REQUIRE_MESSAGE(shown.ok(), why(shown));
  BOOST_TEST(shown->dimension == 64u);
  memos::SearchOptions dense;
  dense.mode = memos::SearchMode::dense;
  dense.k = 3;
  // Random weights carry no meaning, but a text's own embedding is nearest.
  for (std::size_t i = 0; i < ids.size(); i += 3) {
    auto hits = c->search("maya", kMemories[i], dense);
    BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
    BOOST_REQUIRE(!hits->empty());
    BOOST_TEST(hits->front().item.id == ids[i]);
    BOOST_TEST(hits->front().score > 0.999f);
  }
}

// A user who switches from the default embedder to a GGUF one keeps their
// cubes: memosd re-embeds each at start (the lexical index stays), and an
// archive exported under the old embedder imports under the new one.
BOOST_AUTO_TEST_CASE(switching_to_a_gguf_embedder_re_embeds_cubes) {
  TempDir dir;
  std::vector<std::uint64_t> ids;
  std::string archive;
  {
    memos::testing::Daemon hashed(dir.path(), "");
    auto c = hashed.client();
    ids = fill(*c, "maya");
    auto exported = c->export_cube("maya", [&](std::string_view chunk) {
      archive.append(chunk);
      return true;
    });
    BOOST_REQUIRE_MESSAGE(exported.ok(), why(exported));
  }
  Daemon d(dir.path(),
           "[search]\nembedding_dim = 64\n[plugins]\nembedder = \"llama-embedder\"\n"
           "[plugins.settings.llama-embedder]\nmodel = \"" +
               models().a + "\"\n");
  BOOST_TEST(d.process->log().find("cube maya: its memories were embedded by hash-v1") !=
                 std::string::npos,
             d.process->log());
  auto c = d.client();
  std::size_t offset = 0;
  auto imported = c->import_cube(
      [&](char* out, std::size_t n) {
        n = std::min(n, archive.size() - offset);
        std::memcpy(out, archive.data() + offset, n);
        offset += n;
        return n;
      },
      "maya-imported");
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  for (const char* cube : {"maya", "maya-imported"}) {
    auto shown = c->cube_show(cube);
    BOOST_REQUIRE_MESSAGE(shown.ok(), why(shown));
    BOOST_TEST(shown->embedder.rfind("gguf:", 0) == 0, shown->embedder);
    BOOST_TEST(shown->dimension == 64u);
    memos::SearchOptions dense;
    dense.mode = memos::SearchMode::dense;
    dense.k = 1;
    dense.fresh = true;
    // Each text's own embedding is nearest: the vectors are the new model's.
    for (std::size_t i = 0; i < ids.size(); i += 3) {
      auto hits = c->search(cube, kMemories[i], dense);
      BOOST_REQUIRE_MESSAGE(hits.ok(), why(hits));
      BOOST_REQUIRE(!hits->empty());
      BOOST_TEST(hits->front().item.text == kMemories[i]);
      BOOST_TEST(hits->front().score > 0.999f);
    }
  }
}

// A block that begins another block (its memories, then more) finds its own
// state, not the longer one: prefilling it again computes nothing (test_crash
// found this with a random seed).
BOOST_AUTO_TEST_CASE(a_block_that_begins_another_finds_its_own_state) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  auto longer = c->kv_prefill("maya", {ids[0], ids[1], ids[2]});
  BOOST_REQUIRE_MESSAGE(longer.ok(), why(longer));
  auto shorter = c->kv_prefill("maya", {ids[0], ids[1]});
  BOOST_REQUIRE_MESSAGE(shorter.ok(), why(shorter));
  BOOST_TEST(shorter->id != longer->id);
  for (int i = 0; i < 2; ++i) {
    auto again = c->kv_prefill("maya", {ids[0], ids[1]});
    BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
    BOOST_TEST(again->id == shorter->id);
    BOOST_TEST(again->prefill_ms == 0.0);
  }
}

// A streamed chat (Chat.stream) answers with prefill progress, then the
// text piece by piece, then the ChatReply: the pieces, joined, are its text,
// and the answer is the one a plain chat gives. A restore reports the
// prefill it saved, from the time the state's block took to decode when
// --activate made it. memctl prints the pieces as they come and names the
// memories on standard error.
BOOST_AUTO_TEST_CASE(a_streamed_chat_sends_progress_then_the_answer_in_pieces) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  memos::ChatOptions o = with_ids(ids);
  o.max_tokens = 24;
  o.activate = true;
  std::vector<memos::ChatPiece> pieces;
  auto streamed = c->chat("maya", "Where does Maya live?", o,
                          [&](const memos::ChatPiece& p) { pieces.push_back(p); });
  BOOST_REQUIRE_MESSAGE(streamed.ok(), why(streamed));
  BOOST_TEST(did(*streamed, kStored), status_of(*streamed));
  std::string joined;
  std::size_t progress = 0, texts = 0;
  for (const auto& p : pieces) {
    if (p.prefill_total > 0) {
      BOOST_TEST(texts == 0u, "prefill progress after the text began");
      BOOST_TEST(p.prefill_done <= p.prefill_total);
      ++progress;
    } else {
      joined += p.text;
      ++texts;
    }
  }
  BOOST_TEST(joined == streamed->text);
  BOOST_TEST(texts > 1u);
  BOOST_TEST(progress >= 2u);  // (0, total) and (total, total) at least
  BOOST_REQUIRE(!pieces.empty());
  BOOST_TEST(pieces.front().prefill_done == 0u);
  BOOST_TEST(pieces.front().prefill_total == streamed->prompt_tokens);
  BOOST_TEST(streamed->saved_ms == 0.0);  // nothing restored

  // The same chat unstreamed restores the state --activate stored: the same
  // answer, and the prefill it saved.
  o.activate = false;
  auto plain = c->chat("maya", "Where does Maya live?", o);
  BOOST_REQUIRE_MESSAGE(plain.ok(), why(plain));
  BOOST_TEST(did(*plain, kRestored), status_of(*plain));
  BOOST_TEST(plain->text == streamed->text);
  BOOST_TEST(plain->saved_ms != 0.0);
  BOOST_TEST_MESSAGE("restore saved " << plain->saved_ms << " ms of prefill");

  // Streamed from the state: progress counts only the tokens not restored.
  pieces.clear();
  auto restored = c->chat("maya", "Where does Maya live?", o,
                          [&](const memos::ChatPiece& p) { pieces.push_back(p); });
  BOOST_REQUIRE_MESSAGE(restored.ok(), why(restored));
  BOOST_TEST(restored->text == plain->text);
  BOOST_REQUIRE(!pieces.empty());
  BOOST_TEST(pieces.front().prefill_total == restored->prompt_tokens - restored->reused_tokens);

  // An error ends a streamed chat like any other.
  auto missing = c->chat("nope", "hi", o, [](const memos::ChatPiece&) {});
  BOOST_TEST(missing.error().code == memos::ErrorCode::not_found);

  // memctl: the answer on stdout as it streams, the figures on stderr.
  std::string out, err;
  std::string id_list;
  for (std::size_t i = 0; i < ids.size(); ++i) id_list += (i ? "," : "") + memos::format_id(ids[i]);
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "chat", "maya",
                          "Where does Maya live?", "--ids", id_list, "--max-tokens", "24"},
                         &out, &err) == 0);
  BOOST_TEST(out == plain->text + "\n");
  for (std::uint64_t id : ids) BOOST_TEST(err.find(memos::format_id(id)) != std::string::npos, err);
  // What the restore saved (or, on a model this small, may have cost).
  BOOST_TEST((err.find("saved about") != std::string::npos ||
              err.find("more than a prefill") != std::string::npos),
             err);
  BOOST_TEST(err.find(plain->finish == "eog" ? "the model ended its answer" : "token limit") !=
                 std::string::npos,
             err);
  // No progress line: standard error is no terminal here.
  BOOST_TEST(err.find("\r") == std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(memctl_chat_and_kv) {
  TempDir dir;
  Daemon d(dir.path(), config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  auto memctl = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {MEMOS_MEMCTL, "--socket", d.process->socket()});
    std::string err;
    return run_command(args, out, &err);
  };
  std::string out;
  std::string id_list = memos::format_id(ids[0]) + "," + memos::format_id(ids[1]) + "," +
                        memos::format_id(ids[2]) + "," + memos::format_id(ids[3]);
  BOOST_TEST(memctl({"--json", "chat", "maya", "Where does Maya live?", "--ids", id_list,
                     "--activate", "--max-tokens", "4"},
                    &out) == 0);
  BOOST_TEST(out.find("\"activation_status\":\"stored\"") != std::string::npos, out);
  BOOST_TEST(
      memctl({"chat", "maya", "Where does Maya live?", "--ids", id_list, "--max-tokens", "4"},
             &out) == 0);
  BOOST_TEST(!out.empty());  // the answer; the figures go to stderr
  BOOST_TEST(memctl({"--json", "kv", "ls", "maya"}, &out) == 0);
  BOOST_TEST(out.find("\"uses\":1") != std::string::npos, out);
  BOOST_TEST(memctl({"kv", "prefill", "maya", "--top", "3"}, &out) == 0);
  BOOST_TEST(memctl({"--json", "kv", "stats"}, &out) == 0);
  BOOST_TEST(out.find("\"items\":2") != std::string::npos, out);
  // Usage errors (2) before any request; refusals (1) from the daemon.
  BOOST_TEST(memctl({"kv", "prefill", "maya"}, &out) == 2);
  BOOST_TEST(memctl({"kv", "prefill", "maya", "--ids", id_list, "--top", "3"}, &out) == 2);
  BOOST_TEST(memctl({"kv", "rm", "maya", "not-an-id"}, &out) == 2);
  BOOST_TEST(memctl({"chat", "maya"}, &out) == 2);
  BOOST_TEST(memctl({"chat", "maya", "hi", "--ids", "zz"}, &out) == 2);
  BOOST_TEST(memctl({"chat", "maya", "hi", "--temperature", "-1"}, &out) == 2);
  BOOST_TEST(memctl({"kv", "rm", "maya", memos::format_id(12345)}, &out) == 1);
  BOOST_TEST(memctl({"--json", "kv", "ls", "nope"}, &out) == 1);
  BOOST_TEST(out.find("\"notFound\"") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(a_stop_does_not_wait_for_a_generation_in_flight) {
  TempDir dir;
  Daemon d(dir.path(), "shutdown_timeout_ms = 500\n" + config(models().a));
  auto c = d.client();
  auto ids = fill(*c, "maya");
  BOOST_REQUIRE(c->chat("maya", "warm up", with_ids(ids)).ok());
  pid_t host = executor_host(d.process->pid());
  BOOST_REQUIRE(host > 0);
  // The host is stopped, so the chat hangs as a very long prefill would.
  BOOST_REQUIRE(kill(host, SIGSTOP) == 0);
  auto pending = c->chat_async("maya", "Where does Maya live?", with_ids(ids));
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  // If memosd is still there after 8 s, say what its threads wait on.
  const pid_t pid = d.process->pid();
  std::string stuck;
  std::thread watch([&] {
    for (int i = 0; i < 80; ++i) {
      std::this_thread::sleep_for(100ms);
      if (kill(pid, 0) != 0) return;  // gone (and reaped)
    }
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream comm(task.path() / "comm"), wchan(task.path() / "wchan"),
          stat(task.path() / "stat");
      std::string name, waits, st;
      std::getline(comm, name);
      std::getline(wchan, waits);
      std::getline(stat, st);
      stuck += name + " [" + waits + "] " + st.substr(0, 60) + "\n";
    }
  });
  int status = d.process->stop(SIGTERM, 20s);
  watch.join();
  BOOST_TEST(status == 0, stuck + d.process->log());
  BOOST_TEST((std::chrono::steady_clock::now() - start < 10s));
  auto r = pending.get();
  BOOST_TEST(!r.ok());
}
