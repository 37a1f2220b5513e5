// The parametric tier through a real memosd with the llama.cpp executor on a
// tiny generated model and random LoRA adapters (memos-mkmodel --lora-for):
// adapters are versioned items (add, new version, rollback, remove, export,
// restart), checked against the executor's model when added, bounded by the
// tenant's parametric.max_mb; a chat runs with the adapters it names (or
// the policy's), and a KV state made under one adapter set is never
// restored under another, nor under none.
#define BOOST_TEST_MODULE parametric
#include <sys/stat.h>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "memcube/archive.h"
#include "memcube/blob_store.h"
#include "memos/client.h"
#include "tests/support/archive_ids.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"
#include "tests/support/raw_request.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Models and adapters made once for the whole run.
struct Models {
  TempDir dir;
  std::string a = dir.path() + "/a.gguf", b = dir.path() + "/b.gguf";
  std::string style = dir.path() + "/style.gguf", tone = dir.path() + "/tone.gguf";
  std::string for_b = dir.path() + "/for-b.gguf";
  // Rank 80: about 0.6 MiB each, so one fits a parametric.max_mb of 1, two do not.
  std::string big1 = dir.path() + "/big1.gguf", big2 = dir.path() + "/big2.gguf";
  Models() {
    auto make = [](std::vector<std::string> args) {
      args.insert(args.begin(), MEMOS_MKMODEL);
      std::string out, err;
      BOOST_REQUIRE_MESSAGE(run_command(args, &out, &err) == 0, "memos-mkmodel: " + err);
    };
    make({"--out", a, "--vocab", MEMOS_TEST_VOCAB, "--seed", "1"});
    make({"--out", b, "--vocab", MEMOS_TEST_VOCAB, "--seed", "2"});
    make({"--lora-for", a, "--out", style, "--seed", "1"});
    make({"--lora-for", a, "--out", tone, "--seed", "2"});
    make({"--lora-for", b, "--out", for_b, "--seed", "1"});
    make({"--lora-for", a, "--out", big1, "--seed", "3", "--rank", "80"});
    make({"--lora-for", a, "--out", big2, "--seed", "4", "--rank", "80"});
  }
};

const Models& models() {
  static Models m;
  return m;
}

std::string config(const std::string& extra = "") {
  return "[executor]\nmodel = \"" + models().a +
         "\"\nthreads = 2\nbatch = 32\nmax_tokens = 64\n"
         "[scheduler]\nenabled = false\n"
         "[activation]\nchunk_tokens = 16\n" +
         extra;
}

// memosd on `dir` (made readable to memosd's policy check) with `policy` as
// every tenant's (tenants.d/default.toml) and `conf` as its configuration.
std::unique_ptr<MemosdProcess> start_with_policy(const std::string& dir, const std::string& policy,
                                                 const std::string& conf_text = config()) {
  ::chmod(dir.c_str(), 0755);
  const fs::path policies = fs::path(dir) / "tenants.d";
  fs::create_directory(policies);
  ::chmod(policies.c_str(), 0755);
  write_file(policies / "default.toml", policy);
  const fs::path conf = fs::path(dir) / "memosd.conf";
  write_file(conf, conf_text);
  auto p = std::make_unique<MemosdProcess>(
      MEMOS_MEMOSD, dir,
      std::vector<std::string>{"--policies", policies.string(), "--config", conf});
  BOOST_REQUIRE_MESSAGE(p->start(60s), p->log());
  return p;
}

struct Daemon : memos::testing::Daemon {
  explicit Daemon(const std::string& dir, const std::string& conf = config())
      : memos::testing::Daemon(dir, conf, 60s) {}
};

const char* const kMemories[] = {
    "Maya is allergic to peanuts and carries an EpiPen everywhere she goes.",
    "Maya moved from Lisbon to Almada in October and rents a small flat there.",
    "Maya swims at the municipal pool every Saturday morning before breakfast.",
    "Maya's brother Tiago is a marine biologist working in the Azores.",
};

std::vector<std::uint64_t> fill(memos::Client& c) {
  BOOST_REQUIRE(c.cube_create("maya").ok());
  std::vector<std::uint64_t> ids;
  for (const char* text : kMemories) {
    auto r = c.add("maya", {text});
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    ids.push_back(r->id);
  }
  return ids;
}

memos::ChatOptions over(const std::vector<std::uint64_t>& ids,
                        std::vector<memos::AdapterUse> adapters = {}, bool activate = false) {
  memos::ChatOptions o;
  o.ids = ids;
  o.max_tokens = 24;
  o.adapters = std::move(adapters);
  o.activate = activate;
  return o;
}

memos::ChatReply chat(memos::Client& c, const std::vector<std::uint64_t>& ids,
                      std::vector<memos::AdapterUse> adapters = {}, bool activate = false) {
  auto r = c.chat("maya", "Where does Maya live?", over(ids, std::move(adapters), activate));
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  return *r;
}

bool refused(const memos::Result<memos::Item>& r, memos::ErrorCode code, const std::string& part) {
  if (r.ok()) return false;
  BOOST_TEST_MESSAGE(r.error().message);
  return r.error().code == code && r.error().message.find(part) != std::string::npos;
}

memos::Result<memos::Cube> import_archive(memos::Client& c, const std::string& archive,
                                          const std::string& name) {
  return c.import_cube(memos::testing::archive_source(archive), name);
}

// The hex SHA-256 of a model file: what an adapter's record binds it to.
std::string model_hash(const std::string& path) {
  return memos::store::to_hex(memos::store::sha256(read_file(path)));
}

// An archive of one memory and one adapter whose record claims `claimed`
// (its digest and size) and model a, and whose pieces carry `file`.
std::string crafted_archive(const std::string& file, const std::string& claimed,
                            const std::string& name = "style") {
  namespace st = memos::store;
  st::ArchiveWriter w;
  std::string out;
  w.header(&out);
  w.manifest({"crafted", "hash-v1", 256, 1, 2, 1, 2, "", ""}, &out);
  st::Item memory;
  memory.id = (std::uint64_t{1700000000000} << 16) | 1;
  memory.version = memory.cube_version = 1;
  memory.text = "Maya lives in Almada.";
  w.version(memory, &out);
  st::Item adapter;
  adapter.id = memory.id + 1;
  adapter.version = 1;
  adapter.cube_version = 2;
  adapter.tier = st::Tier::parametric;
  adapter.text = "adapter";
  st::Parametric p;
  p.name = name;
  p.blob = st::sha256(claimed);
  p.size = claimed.size();
  p.base_model = model_hash(models().a);
  adapter.param = p;
  constexpr std::size_t kPiece = 1 << 16;
  for (std::size_t at = 0; at < file.size(); at += kPiece) {
    w.blob_piece({p.blob, at, p.size, std::string_view(file).substr(at, kPiece)}, &out);
  }
  w.version(adapter, &out);
  w.trailer(&out);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(adapters_are_versioned_items_that_chats_run_with) {
  TempDir dir;
  Daemon d(dir.path());
  auto c = d.client();
  auto ids = fill(*c);
  const std::string style = read_file(models().style), tone = read_file(models().tone);

  auto added = c->param_add("maya", "style", style);
  BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
  BOOST_TEST((added->tier == memos::Tier::parametric));
  BOOST_TEST(added->version == 1u);
  BOOST_REQUIRE(added->param.has_value());
  BOOST_TEST(added->param->name == "style");
  BOOST_TEST(added->param->rank == 4u);
  BOOST_TEST(added->param->tensors == 14u);
  BOOST_TEST(added->param->bytes == style.size());
  BOOST_TEST(added->param->origin == "imported");
  auto stats = c->kv_stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(added->param->base_model == stats->model_hash);
  BOOST_TEST(stats->adapters_loaded == 1u);  // loaded when checked
  auto listed = c->param_list("maya");
  BOOST_REQUIRE(listed.ok());
  BOOST_REQUIRE(listed->size() == 1u);
  BOOST_TEST(listed->front().id == added->id);
  auto usage = c->tenant_usage();
  BOOST_REQUIRE(usage.ok());
  BOOST_TEST(usage->param_bytes == style.size());

  // A chat with it answers otherwise than the base model, and says so.
  const memos::ChatReply base = chat(*c, ids);
  const memos::ChatReply styled = chat(*c, ids, {{"style", 0}});
  BOOST_TEST(base.adapters.empty());
  BOOST_REQUIRE(styled.adapters.size() == 1u);
  BOOST_TEST(styled.adapters.front() == "style*1");
  BOOST_TEST(styled.text != base.text);

  // A state stored under the adapter ...
  const memos::ChatReply stored = chat(*c, ids, {{"style", 0}}, true);
  BOOST_TEST(stored.activation_status.stored, memos::to_string(stored.activation_status));
  BOOST_TEST(stored.text == styled.text);
  // ... is restored under it, never under the base model or another scale.
  memos::ChatOptions plain = over(ids);
  auto other_prompt = [&](memos::ChatOptions o) {
    auto r = c->chat("maya", "What does Maya do on Saturdays?", o);
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    return *r;
  };
  auto recomputed = [&](memos::ChatOptions o) {
    o.no_reuse = true;  // nothing stored, nothing kept: decoded whole
    return other_prompt(std::move(o)).text;
  };
  const memos::ChatReply unadapted = other_prompt(plain);
  BOOST_TEST(!unadapted.activation_status.restored, memos::to_string(unadapted.activation_status));
  BOOST_TEST(unadapted.text == recomputed(plain));
  const memos::ChatReply half = other_prompt(over(ids, {{"style", 0.5f}}));
  BOOST_TEST(!half.activation_status.restored, memos::to_string(half.activation_status));
  BOOST_TEST(half.adapters.front() == "style*0.5");
  BOOST_TEST(half.text == recomputed(over(ids, {{"style", 0.5f}})));
  const memos::ChatReply restored = other_prompt(over(ids, {{"style", 0}}));
  BOOST_TEST(restored.activation_status.restored, memos::to_string(restored.activation_status));
  BOOST_TEST(restored.reused_tokens >= restored.block_tokens);
  BOOST_TEST(restored.text == recomputed(over(ids, {{"style", 0}})));

  // A new version under the name: chats use it; rollback brings the old one back.
  auto second = c->param_add("maya", "style", tone, 0, "the tone adapter");
  BOOST_REQUIRE_MESSAGE(second.ok(), why(second));
  BOOST_TEST(second->id == added->id);
  BOOST_TEST(second->version == 2u);
  BOOST_TEST(second->text == "the tone adapter");
  const memos::ChatReply toned = chat(*c, ids, {{"style", 0}});
  BOOST_TEST(toned.text != styled.text);
  auto rolled = c->rollback("maya", added->id, 1);
  BOOST_REQUIRE_MESSAGE(rolled.ok(), why(rolled));
  BOOST_TEST(rolled->version == 3u);
  BOOST_TEST(rolled->param->digest == added->param->digest);
  BOOST_TEST(chat(*c, ids, {{"style", 0}}).text == styled.text);

  // Export gives back the file of any version.
  std::string exported;
  auto v = c->param_export("maya", "style", 2, [&](std::string_view chunk) {
    exported.append(chunk);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(v.ok(), why(v));
  BOOST_TEST(*v == 2u);
  BOOST_TEST((exported == tone));

  // A cube export carries the adapter (a_cube_archive_carries_its_adapters).
  auto imported = import_archive(*c, memos::testing::export_archive(*c, "maya"), "maya-copy");
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  BOOST_TEST(imported->live_items == ids.size() + 1);
  BOOST_TEST(c->param_list("maya-copy")->size() == 1u);

  // A restart keeps it; the executor loads it again from the blob store.
  BOOST_TEST(d.process->stop() == 0);
  Daemon d2(dir.path());
  auto c2 = d2.client();
  BOOST_TEST(chat(*c2, ids, {{"style", 0}}).text == styled.text);
  auto after = c2->kv_stats();
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->adapter_loads == 1u);

  // Removed: chats that name it are refused; its history stays readable.
  auto removed = c2->param_remove("maya", "style");
  BOOST_REQUIRE_MESSAGE(removed.ok(), why(removed));
  BOOST_TEST(removed->deleted);
  auto missing = c2->chat("maya", "hi", over(ids, {{"style", 0}}));
  BOOST_TEST((!missing.ok() && missing.error().code == memos::ErrorCode::not_found));
  BOOST_TEST(c2->param_list("maya")->empty());
  BOOST_TEST(refused(c2->param_show("maya", "style"), memos::ErrorCode::not_found, "removed"));
  BOOST_TEST(c2->param_show("maya", "style", 1).ok());
  BOOST_TEST(c2->tenant_usage()->param_bytes == style.size());  // the copy's
  // Adding the name again continues its history.
  auto revived = c2->param_add("maya", "style", style);
  BOOST_REQUIRE_MESSAGE(revived.ok(), why(revived));
  BOOST_TEST(revived->id == added->id);
  BOOST_TEST(revived->version == 5u);
}

BOOST_AUTO_TEST_CASE(mismatched_hostile_and_oversized_adapters_are_refused) {
  TempDir dir;
  Daemon d(dir.path(), config("[store]\nmax_adapter_mb = 1\n"));
  auto c = d.client();
  auto ids = fill(*c);
  const std::string style = read_file(models().style);
  using memos::ErrorCode;
  BOOST_TEST(refused(c->param_add("maya", "b", read_file(models().for_b)), ErrorCode::bad_request,
                     "was made for base model"));
  BOOST_TEST(refused(c->param_add("maya", "model", read_file(models().a)), ErrorCode::too_large,
                     "store.max_adapter_mb"));
  BOOST_TEST(refused(c->param_add("maya", "junk", std::string(5000, 'x')), ErrorCode::bad_request,
                     "not a GGUF"));
  BOOST_TEST(refused(c->param_add("maya", "half", style.substr(0, style.size() / 2)),
                     ErrorCode::bad_request, "not a readable GGUF"));
  BOOST_TEST(refused(c->param_add("maya", "empty", ""), ErrorCode::bad_request, "empty"));
  BOOST_TEST(refused(c->param_add("maya", "bad:name", style), ErrorCode::bad_request, "name"));
  BOOST_TEST(refused(c->param_add("maya", "-x", style), ErrorCode::bad_request, "name"));
  BOOST_TEST(refused(c->param_add("maya", "ok", style, 100), ErrorCode::bad_request, "[-16, 16]"));
  BOOST_TEST(refused(c->param_add("nope", "ok", style), ErrorCode::not_found, "nope"));
  BOOST_TEST(c->param_list("maya")->empty());  // nothing half-added
  // Chats naming what is not there, or too much.
  BOOST_REQUIRE(c->param_add("maya", "style", style).ok());
  auto absent = c->chat("maya", "hi", over(ids, {{"absent", 0}}));
  BOOST_TEST((!absent.ok() && absent.error().code == ErrorCode::not_found));
  std::vector<memos::AdapterUse> nine(9, {"style", 0});
  auto many = c->chat("maya", "hi", over(ids, nine));
  BOOST_TEST((!many.ok() && many.error().code == ErrorCode::bad_request));
  auto twice = c->chat("maya", "hi", over(ids, {{"style", 0}, {"style", 0.5f}}));
  BOOST_TEST((!twice.ok() && twice.error().message.find("twice") != std::string::npos));
  auto scale = c->chat("maya", "hi", over(ids, {{"style", NAN}}));
  BOOST_TEST((!scale.ok() && scale.error().code == ErrorCode::bad_request));
  auto both = over(ids, {{"style", 0}});
  both.no_adapters = true;
  BOOST_TEST(!c->chat("maya", "hi", both).ok());
  BOOST_TEST(chat(*c, ids, {{"style", 0}}).adapters.size() == 1u);  // still fine
  auto long_name = c->chat("maya", "hi", over(ids, {{std::string(1000, 'a'), 0}}));
  BOOST_TEST((!long_name.ok() && long_name.error().code == ErrorCode::bad_request));

  // The upload protocol, as another client might drive it: an upload is its
  // connection's, gone with it; ids that were never given are refused.
  const std::string socket = d.process->socket();
  auto chunk = [&](std::uint64_t upload, bool more) {
    return memos::testing::raw_request(socket, [&](memos::wire::Request::Builder r) {
      auto a = r.initParamAdd();
      a.setCube("maya");
      a.setName("raw");
      a.setUpload(upload);
      a.setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(style.data()), 100));
      a.setMore(more);
    });
  };
  const auto opened = chunk(0, true);  // answered with an upload id; then the connection closes
  BOOST_TEST((opened.received && !opened.is_error));
  for (std::uint64_t id : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{999}, UINT64_MAX}) {
    const auto r = chunk(id, false);
    BOOST_TEST((r.is_error && r.code == memos::wire::ErrorCode::NOT_FOUND), r.message);
  }
  BOOST_TEST(c->param_list("maya")->size() == 1u);  // still only "style"
  // Reads of what is not there.
  BOOST_TEST(refused(c->param_show("maya", "style", 99), ErrorCode::not_found, "no version 99"));
  BOOST_TEST(refused(c->param_show("maya", "absent"), ErrorCode::not_found, "absent"));
  BOOST_TEST(refused(c->param_remove("maya", "absent"), ErrorCode::not_found, "absent"));
  BOOST_TEST(refused(c->param_remove("maya", "bad name"), ErrorCode::bad_request, "name"));
  const auto past = memos::testing::raw_request(socket, [&](memos::wire::Request::Builder r) {
    auto x = r.initParamExport();
    x.setCube("maya");
    x.setName("style");
    x.setOffset(UINT64_MAX);
  });
  BOOST_TEST((past.is_error && past.code == memos::wire::ErrorCode::BAD_REQUEST), past.message);
  auto nowhere = c->param_export("maya", "absent", 0, [](std::string_view) { return true; });
  BOOST_TEST((!nowhere.ok() && nowhere.error().code == ErrorCode::not_found));
}

BOOST_AUTO_TEST_CASE(the_policy_bounds_adapters_and_names_the_default_ones) {
  TempDir dir;
  const std::string style = read_file(models().big1);
  BOOST_REQUIRE(style.size() > (1u << 19) && style.size() < (1u << 20));
  // Room for one adapter, and it is the default of every chat.
  auto p = start_with_policy(dir.path(),
                             "[parametric]\nmax_mb = 1\nadapters = [\"style:0.5\", \"absent\"]\n");
  auto connected = memos::Client::connect(p->socket());
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  auto ids = fill(c);
  const memos::ChatReply before = chat(c, ids);
  BOOST_TEST(before.adapters.empty());  // the cube holds none yet
  BOOST_REQUIRE(c.param_add("maya", "style", style).ok());
  const memos::ChatReply defaulted = chat(c, ids);
  BOOST_REQUIRE(defaulted.adapters.size() == 1u);
  BOOST_TEST(defaulted.adapters.front() == "style*0.5");
  auto none = over(ids);
  none.no_adapters = true;
  auto base = c.chat("maya", "Where does Maya live?", none);
  BOOST_REQUIRE(base.ok());
  BOOST_TEST(base->adapters.empty());
  BOOST_TEST(base->text == before.text);
  // A second adapter passes parametric.max_mb.
  BOOST_TEST(refused(c.param_add("maya", "tone", read_file(models().big2)),
                     memos::ErrorCode::quota_exceeded, "parametric.max_mb"));
  auto usage = c.tenant_usage();
  BOOST_REQUIRE(usage.ok());
  bool bound = false;
  for (const auto& b : usage->bounds) bound = bound || b.name == "parametric.max_mb";
  BOOST_TEST(bound);
}

BOOST_AUTO_TEST_CASE(memctl_param_and_chat_with_an_adapter) {
  TempDir dir;
  Daemon d(dir.path());
  auto c = d.client();
  fill(*c);
  auto memctl = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {MEMOS_MEMCTL, "--socket", d.process->socket()});
    std::string err;
    return run_command(args, out, &err);
  };
  std::string out;
  BOOST_TEST(memctl({"param", "add", "maya", models().style, "--name", "style"}, &out) == 0, out);
  BOOST_TEST(out.find("style") != std::string::npos, out);
  BOOST_TEST(memctl({"--json", "param", "ls", "maya"}, &out) == 0);
  BOOST_TEST(out.find("\"rank\":4") != std::string::npos, out);
  BOOST_TEST(memctl({"param", "show", "maya", "style"}, &out) == 0);
  BOOST_TEST(out.find("adapter   lora 'style'") != std::string::npos, out);
  BOOST_TEST(memctl({"--json", "chat", "maya", "Where does Maya live?", "--adapter", "style:0.5",
                     "--max-tokens", "4"},
                    &out) == 0);
  BOOST_TEST(out.find("\"adapters\":[\"style*0.5\"]") != std::string::npos, out);
  const std::string exported = dir.path() + "/out.gguf";
  BOOST_TEST(memctl({"param", "export", "maya", "style", "-o", exported}, &out) == 0, out);
  BOOST_TEST((read_file(exported) == read_file(models().style)));
  BOOST_TEST(memctl({"--json", "kv", "stats"}, &out) == 0);
  BOOST_TEST(out.find("\"adapters_loaded\":1") != std::string::npos, out);
  // A cube export carries it; the import lists it.
  const std::string archive = dir.path() + "/maya.memos";
  BOOST_TEST(memctl({"cube", "export", "maya", archive}, &out) == 0, out);
  BOOST_TEST(memctl({"cube", "import", archive, "--as", "maya-copy"}, &out) == 0, out);
  BOOST_TEST(memctl({"param", "ls", "maya-copy"}, &out) == 0, out);
  BOOST_TEST(out.find("style") != std::string::npos, out);
  BOOST_TEST(memctl({"param", "rm", "maya", "style"}, &out) == 0);
  // Usage errors (2) before any request; refusals (1) from the daemon.
  BOOST_TEST(memctl({"chat", "maya", "hi", "--adapter", "x:zero"}, &out) == 2);
  BOOST_TEST(memctl({"chat", "maya", "hi", "--adapter", "x", "--no-adapters"}, &out) == 2);
  BOOST_TEST(memctl({"param", "add", "maya", models().style}, &out) == 2);  // no --name
  BOOST_TEST(memctl({"param", "add", "maya", dir.path() + "/absent", "--name", "x"}, &out) == 1);
  BOOST_TEST(memctl({"param", "show", "maya", "style"}, &out) == 1);
}

// The scheduler prefills a working set under the adapters its owner's chats
// run with by default: else no chat would ever find that state.
BOOST_AUTO_TEST_CASE(the_working_set_is_prefilled_under_the_default_adapters) {
  TempDir dir;
  auto p = start_with_policy(dir.path(), "[parametric]\nadapters = [\"style\"]\n",
                             "[executor]\nmodel = \"" + models().a +
                                 "\"\nthreads = 2\nbatch = 32\n[activation]\nchunk_tokens = 16\n"
                                 "[scheduler]\nworking_set_tokens = 60\ninterval_s = 3600\n");
  memos::ClientOptions options;
  options.wait_searchable = true;
  auto connected = memos::Client::connect(p->socket(), options);
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  fill(c);
  BOOST_REQUIRE(c.param_add("maya", "style", read_file(models().style)).ok());
  memos::ChatOptions o;
  o.k = 2;
  o.max_tokens = 4;
  auto first = c.chat("maya", "Where does Maya swim?", o);
  BOOST_REQUIRE_MESSAGE(first.ok(), why(first));
  BOOST_TEST(first->adapters.size() == 1u);
  bool prefilled = false;
  for (int i = 0; i < 300 && !prefilled; ++i) {
    auto st = c.sched_status("maya");
    prefilled = st.ok() && st->cubes.size() == 1u && st->cubes[0].state != 0 &&
                !st->cubes[0].prefill_pending;
    if (!prefilled) std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE(prefilled);
  auto second = c.chat("maya", "What does Maya drink?", o);
  BOOST_REQUIRE_MESSAGE(second.ok(), why(second));
  BOOST_TEST(second->activation_status.restored, memos::to_string(second->activation_status));
  BOOST_TEST(second->adapters.front() == "style*1");
  // The base model's chat does not restore a state made under the adapter.
  o.no_adapters = true;
  auto base = c.chat("maya", "What does Maya drink?", o);
  BOOST_REQUIRE_MESSAGE(base.ok(), why(base));
  BOOST_TEST(!base->activation_status.restored, memos::to_string(base->activation_status));
}

// Plaintext -> parametric: a control vector derived from two tags of the
// cube's memories, an item like an adapter (its sources are those
// memories), which chats run with.
BOOST_AUTO_TEST_CASE(a_control_vector_is_derived_from_tagged_memories) {
  TempDir dir;
  Daemon d(dir.path());
  auto c = d.client();
  auto ids = fill(*c);
  std::vector<std::uint64_t> tagged;
  for (const auto& [text, tag] : std::vector<std::pair<std::string, std::string>>{
           {"Maya laughed all afternoon at the beach festival.", "cheerful"},
           {"Maya's birthday party was a joyful, sunny celebration.", "cheerful"},
           {"Maya sat alone in the rain after the funeral.", "gloomy"},
           {"Maya felt miserable during the long grey winter.", "gloomy"}}) {
    auto r = c->add("maya", {text, {tag}});
    BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
    tagged.push_back(r->id);
  }
  auto made = c->param_cvec("maya", "mood", "cheerful", "gloomy", 4);
  BOOST_REQUIRE_MESSAGE(made.ok(), why(made));
  BOOST_TEST((made->tier == memos::Tier::parametric));
  BOOST_TEST(made->param->kind == "cvec");
  BOOST_TEST(made->param->tensors == 1u);  // the tiny model's one direction
  BOOST_TEST(made->param->scale == 4.0f);
  BOOST_TEST(made->param->origin == "derived: +cheerful -gloomy");
  BOOST_TEST((std::set<std::uint64_t>(made->sources.begin(), made->sources.end()) ==
              std::set<std::uint64_t>(tagged.begin(), tagged.end())));
  const memos::ChatReply base = chat(*c, ids);
  const memos::ChatReply steered = chat(*c, ids, {{"mood", 0}});
  BOOST_REQUIRE(steered.adapters.size() == 1u);
  BOOST_TEST(steered.adapters.front() == "mood*4");
  BOOST_TEST(steered.text != base.text);
  // With a LoRA as well.
  BOOST_REQUIRE(c->param_add("maya", "style", read_file(models().style)).ok());
  BOOST_TEST(chat(*c, ids, {{"mood", 0}, {"style", 0}}).adapters.size() == 2u);
  // Derived again (other memories now): a new version.
  BOOST_REQUIRE(c->add("maya", {"Maya danced with delight at the wedding.", {"cheerful"}}).ok());
  auto again = c->param_cvec("maya", "mood", "cheerful", "gloomy");
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(again->version == 2u);
  BOOST_TEST(again->param->digest != made->param->digest);
  // Refused: a tag nothing carries, the same tag twice, no such cube.
  using memos::ErrorCode;
  BOOST_TEST(refused(c->param_cvec("maya", "x", "cheerful", "absent"), ErrorCode::not_found,
                     "tagged 'absent'"));
  BOOST_TEST(refused(c->param_cvec("maya", "x", "cheerful", "cheerful"), ErrorCode::bad_request,
                     "two different tags"));
  BOOST_TEST(refused(c->param_cvec("nope", "x", "cheerful", "gloomy"), ErrorCode::not_found, ""));
  BOOST_TEST(
      refused(c->param_cvec("maya", "x:y", "cheerful", "gloomy"), ErrorCode::bad_request, "name"));
}

// An archive carries the parametric tier whole: every version of every
// adapter with its file (one larger than an export chunk included), its
// provenance pointed at the imported memories, counted against the
// importer's quota; the imported adapters serve chats as the originals did.
BOOST_AUTO_TEST_CASE(a_cube_archive_carries_its_adapters) {
  TempDir dir;
  // A 2 MiB message bound makes export chunks of 512 KiB: the big adapter
  // (0.6 MiB) leaves in two.
  Daemon d(dir.path(), config("[ipc]\nmax_message_bytes = 2097152\n"));
  auto c = d.client();
  auto ids = fill(*c);
  const std::string style = read_file(models().style), tone = read_file(models().tone),
                    big = read_file(models().big1);
  auto added = c->param_add("maya", "style", style);
  BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
  BOOST_REQUIRE(c->param_add("maya", "style", tone).ok());
  BOOST_REQUIRE(c->rollback("maya", added->id, 1).ok());  // style again, as version 3
  BOOST_REQUIRE(c->param_add("maya", "big", big, 0.5f).ok());
  // A control vector whose second version comes from memories added after
  // it: its sources are later items than itself.
  for (const auto& [text, tag] : std::vector<std::pair<std::string, std::string>>{
           {"Maya laughed all afternoon at the beach festival.", "cheerful"},
           {"Maya sat alone in the rain after the funeral.", "gloomy"}}) {
    BOOST_REQUIRE(c->add("maya", {text, {tag}}).ok());
  }
  BOOST_REQUIRE(c->param_cvec("maya", "mood", "cheerful", "gloomy").ok());
  std::vector<std::uint64_t> later;
  for (const auto& [text, tag] : std::vector<std::pair<std::string, std::string>>{
           {"Maya danced with delight at the wedding.", "cheerful"},
           {"Maya felt miserable during the long grey winter.", "gloomy"}}) {
    auto r = c->add("maya", {text, {tag}});
    BOOST_REQUIRE(r.ok());
    later.push_back(r->id);
  }
  auto mood = c->param_cvec("maya", "mood", "cheerful", "gloomy");
  BOOST_REQUIRE_MESSAGE(mood.ok(), why(mood));
  BOOST_REQUIRE(c->param_remove("maya", "big").ok());  // a removed one travels too
  const memos::ChatReply styled = chat(*c, ids, {{"style", 0}});

  const std::string archive = memos::testing::export_archive(*c, "maya");
  // The adapters' files are in it, the rolled-back one twice at most.
  BOOST_TEST(archive.size() > style.size() + tone.size() + big.size());
  BOOST_TEST(archive.size() < 2 * style.size() + tone.size() + big.size() + (64u << 10));
  const std::uint64_t bytes_before = c->tenant_usage()->param_bytes;
  auto imported = import_archive(*c, archive, "maya-copy");
  BOOST_REQUIRE_MESSAGE(imported.ok(), why(imported));
  // Live: the 8 memories, style and mood (big was removed).
  BOOST_TEST(imported->live_items == 10u);
  auto copies = c->param_list("maya-copy");
  BOOST_REQUIRE(copies.ok());
  BOOST_REQUIRE_EQUAL(copies->size(), 2u);
  auto copy_style = c->param_show("maya-copy", "style");
  BOOST_REQUIRE_MESSAGE(copy_style.ok(), why(copy_style));
  BOOST_TEST(copy_style->version == 3u);
  BOOST_TEST(copy_style->id != added->id);
  BOOST_TEST(copy_style->param->digest == added->param->digest);
  BOOST_TEST(c->param_show("maya-copy", "style", 2)->param->digest ==
             c->param_show("maya", "style", 2)->param->digest);
  auto copy_big = c->param_show("maya-copy", "big", 1);
  BOOST_REQUIRE_MESSAGE(copy_big.ok(), why(copy_big));
  BOOST_TEST(copy_big->param->scale == 0.5f);
  BOOST_TEST(copy_big->param->bytes == big.size());
  // The control vector's sources are the copy's own memories, later ones included.
  auto copy_mood = c->param_show("maya-copy", "mood");
  BOOST_REQUIRE_MESSAGE(copy_mood.ok(), why(copy_mood));
  BOOST_TEST(copy_mood->sources.size() == mood->sources.size());
  for (std::uint64_t source : copy_mood->sources) {
    auto memory = c->get("maya-copy", source);
    BOOST_TEST(memory.ok(), "source " << source << " is not in the copy");
  }
  // Counted against the importer's adapters; the files are stored once.
  BOOST_TEST(c->tenant_usage()->param_bytes == 2 * bytes_before);
  // Exported files come back byte for byte, and chats use them as before.
  std::string exported;
  BOOST_REQUIRE(c->param_export("maya-copy", "big", 1, [&](std::string_view chunk) {
                   exported.append(chunk);
                   return true;
                 }).ok());
  BOOST_TEST((exported == big));
  // The copy's first four memories are fill()'s (plaintext ids ascend).
  std::vector<std::uint64_t> copy_ids = memos::testing::item_ids(*c, "maya-copy");
  copy_ids.resize(ids.size());
  auto r = c->chat("maya-copy", "Where does Maya live?", over(copy_ids, {{"style", 0}}));
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(r->adapters.front() == "style*1");
  BOOST_TEST(r->text == styled.text);
  // The copy exports to an archive that imports again.
  auto again = import_archive(*c, memos::testing::export_archive(*c, "maya-copy"), "maya-copy-2");
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(c->param_list("maya-copy-2")->size() == 2u);
  BOOST_TEST(c->param_show("maya-copy-2", "style", 2)->param->digest ==
             c->param_show("maya", "style", 2)->param->digest);
  // Removing the original leaves the copies' files in place.
  BOOST_REQUIRE(c->cube_remove("maya", true).ok());
  exported.clear();
  BOOST_REQUIRE(c->param_export("maya-copy-2", "big", 1, [&](std::string_view chunk) {
                   exported.append(chunk);
                   return true;
                 }).ok());
  BOOST_TEST((exported == big));
}

// An archive's adapter files are checked as they come: bytes that are not
// their digest, a file larger than store.max_adapter_mb, a bad name, a
// bound the policy sets. Each refusal leaves no cube behind (a file put
// before it is garbage that collection removes).
BOOST_AUTO_TEST_CASE(hostile_adapters_in_an_archive_are_refused_whole) {
  TempDir dir;
  auto p = start_with_policy(dir.path(), "[parametric]\nmax_mb = 1\n",
                             config("[store]\nmax_adapter_mb = 1\n"));
  auto connected = memos::Client::connect(p->socket());
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  const std::string style = read_file(models().style);
  using memos::ErrorCode;
  auto refused_import = [&](const std::string& archive, ErrorCode code, const std::string& part) {
    auto r = import_archive(c, archive, "crafted");
    if (r.ok()) return false;
    BOOST_TEST_MESSAGE(r.error().message);
    return r.error().code == code && r.error().message.find(part) != std::string::npos;
  };
  std::string tampered = style;
  tampered[tampered.size() / 2] ^= 1;
  BOOST_TEST(refused_import(crafted_archive(tampered, style), ErrorCode::bad_request,
                            "do not match its digest"));
  const std::string huge((1u << 20) + 1, 'x');
  BOOST_TEST(refused_import(crafted_archive(huge, huge), ErrorCode::bad_request,
                            "larger than store.max_adapter_mb"));
  BOOST_TEST(refused_import(crafted_archive(style, style, "no:name"), ErrorCode::bad_request,
                            "not an adapter name"));
  // The policy's parametric.max_mb counts an imported adapter as an upload.
  const std::string big1 = read_file(models().big1), big2 = read_file(models().big2);
  BOOST_REQUIRE(c.cube_create("maya").ok());
  BOOST_REQUIRE(c.param_add("maya", "big", big1).ok());
  BOOST_TEST(
      refused_import(crafted_archive(big2, big2), ErrorCode::quota_exceeded, "parametric.max_mb"));
  auto cubes = c.cube_list();
  BOOST_REQUIRE(cubes.ok());
  BOOST_TEST(cubes->size() == 1u);
  BOOST_TEST(c.tenant_usage()->param_bytes == big1.size());
  // A well-made one imports, and chats use it.
  auto fine = import_archive(c, crafted_archive(style, style), "crafted");
  BOOST_REQUIRE_MESSAGE(fine.ok(), why(fine));
  auto r = c.chat("crafted", "Where does Maya live?", over({}, {{"style", 0}}));
  BOOST_TEST(r.ok(), (r.ok() ? "" : r.error().message));
  // One made for another model, its record lying that it fits, imports
  // (the cube moves whole) and the executor checks its file at a chat as
  // at an upload, saying why it does not fit.
  fine = import_archive(c, crafted_archive(read_file(models().for_b), read_file(models().for_b)),
                        "for-b");
  BOOST_REQUIRE_MESSAGE(fine.ok(), why(fine));
  auto wrong = c.chat("for-b", "hi", over({}, {{"style", 0}}));
  BOOST_REQUIRE(!wrong.ok());
  BOOST_TEST(wrong.error().message.find("was made for base model") != std::string::npos,
             wrong.error().message);
  // A policy that leaves the parametric tier out refuses an archive with
  // adapters, as it refuses an upload.
  write_file(fs::path(dir.path()) / "tenants.d" / "default.toml",
             "[use]\ntiers = [\"plaintext\", \"activation\"]\n");
  BOOST_REQUIRE(c.policy_reload().ok());
  BOOST_TEST(refused_import(crafted_archive(style, style), ErrorCode::permission_denied,
                            "parametric tier"));
}

namespace {

// Follows a job to its end (a minute at most).
memos::Job wait_for(memos::Client& c, std::uint64_t id) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto j = c.job_show(id);
    BOOST_REQUIRE_MESSAGE(j.ok(), why(j));
    if (j->finished() || std::chrono::steady_clock::now() > deadline) return *j;
    std::this_thread::sleep_for(50ms);
  }
}

memos::DistillArgs distill_args(const std::string& name, std::uint32_t steps) {
  memos::DistillArgs a;
  a.cube = "maya";
  a.name = name;
  a.rank = 4;
  a.steps = steps;
  return a;
}

}  // namespace

// Plaintext into the parametric tier: a job distils the memories into an
// adapter, written once, with them as its sources; chats run with it. A
// cancelled job, one cut short by a crash, and a refused one write nothing.
BOOST_AUTO_TEST_CASE(a_distillation_job_writes_one_adapter_and_a_cut_short_one_none) {
  TempDir dir;
  auto d = std::make_unique<Daemon>(dir.path());
  auto c = d->client();
  const auto ids = fill(*c);
  auto started = c->param_distill(distill_args("facts", 6));
  BOOST_REQUIRE_MESSAGE(started.ok(), why(started));
  BOOST_TEST(started->kind == "distill");
  BOOST_TEST(started->memories == ids.size());
  BOOST_TEST((started->state == "queued" || started->state == "running"));
  const memos::Job done = wait_for(*c, started->id);
  BOOST_REQUIRE_MESSAGE(done.state == "done", done.state + ": " + done.message);
  BOOST_TEST(done.done == done.total);
  BOOST_TEST(done.total == 6u + 8u);  // 6 steps, then 2 layers x 4 matrices factored
  BOOST_TEST(done.tokens > 0u);
  auto made = c->param_show("maya", "facts");
  BOOST_REQUIRE_MESSAGE(made.ok(), why(made));
  BOOST_TEST(made->id == done.item);
  BOOST_TEST(made->version == done.version);
  BOOST_TEST(made->param->rank == 4u);
  BOOST_TEST(made->param->origin ==
             "distilled by job " + std::to_string(done.id) + " from every memory");
  BOOST_TEST((std::set<std::uint64_t>(made->sources.begin(), made->sources.end()) ==
              std::set<std::uint64_t>(ids.begin(), ids.end())));
  const memos::ChatReply with = chat(*c, ids, {{"facts", 0}});
  BOOST_REQUIRE(with.adapters.size() == 1u);
  BOOST_TEST(with.adapters.front() == "facts*1");
  // Again, from two named memories: a new version.
  auto named = distill_args("facts", 2);
  named.ids = {ids[0], ids[1]};
  auto again = c->param_distill(named);
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(again->memories == 2u);
  BOOST_TEST(wait_for(*c, again->id).state == "done");
  BOOST_TEST(c->param_show("maya", "facts")->version == 2u);

  // Cancelled: no item, and a second cancel is a conflict.
  auto long_one = c->param_distill(distill_args("never", 10000));
  BOOST_REQUIRE_MESSAGE(long_one.ok(), why(long_one));
  auto cancelled = c->job_cancel(long_one->id);
  BOOST_REQUIRE_MESSAGE(cancelled.ok(), why(cancelled));
  BOOST_TEST(wait_for(*c, long_one->id).state == "cancelled");
  BOOST_TEST(c->param_show("maya", "never").error().code == memos::ErrorCode::not_found);
  BOOST_TEST(c->job_cancel(long_one->id).error().code == memos::ErrorCode::conflict);
  auto listed = c->job_list();
  BOOST_REQUIRE(listed.ok());
  BOOST_TEST(listed->size() == 3u);

  // Refused up front: no such tag, cube or memory, both tag and ids, a bad
  // rank or name; an unknown job.
  using memos::ErrorCode;
  auto refused_job = [](const memos::Result<memos::Job>& r, ErrorCode code,
                        const std::string& part) {
    if (r.ok()) return false;
    BOOST_TEST_MESSAGE(r.error().message);
    return r.error().code == code && r.error().message.find(part) != std::string::npos;
  };
  auto tagged = distill_args("x", 2);
  tagged.tag = "absent";
  BOOST_TEST(refused_job(c->param_distill(tagged), ErrorCode::not_found, "tagged 'absent'"));
  tagged.ids = {ids[0]};
  BOOST_TEST(refused_job(c->param_distill(tagged), ErrorCode::bad_request, "not both"));
  auto nocube = distill_args("x", 2);
  nocube.cube = "nope";
  BOOST_TEST(refused_job(c->param_distill(nocube), ErrorCode::not_found, ""));
  auto ghost = distill_args("x", 2);
  ghost.ids = {ids[0] + 999};
  BOOST_TEST(refused_job(c->param_distill(ghost), ErrorCode::not_found, "not an active"));
  auto wide = distill_args("x", 2);
  wide.rank = 1000;
  BOOST_TEST(refused_job(c->param_distill(wide), ErrorCode::bad_request, "rank"));
  BOOST_TEST(refused_job(c->param_distill(distill_args("x:y", 2)), ErrorCode::bad_request, "name"));
  BOOST_TEST(c->job_show(999).error().code == ErrorCode::not_found);

  // memctl: detached, then followed.
  auto memctl = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {MEMOS_MEMCTL, "--socket", d->process->socket()});
    std::string err;
    return run_command(args, out, &err);
  };
  std::string out;
  BOOST_REQUIRE(memctl({"--json", "param", "distill", "maya", "--name", "cli", "--steps", "2",
                        "--rank", "2", "--detach"},
                       &out) == 0);
  const auto at = out.find("\"id\":");
  BOOST_REQUIRE(at != std::string::npos);
  const std::string job_id = std::to_string(std::stoull(out.substr(at + 5)));
  BOOST_TEST(memctl({"--json", "job", "show", job_id, "--wait"}, &out) == 0, out);
  BOOST_TEST(out.find("\"state\":\"done\"") != std::string::npos, out);
  BOOST_TEST(memctl({"job", "ls"}, &out) == 0);
  BOOST_TEST(out.find("maya/cli") != std::string::npos, out);
  BOOST_TEST(memctl({"job", "show", "x1"}, &out) == 2);
  BOOST_TEST(memctl({"param", "distill", "maya", "--name", "y", "--tag", "t", "--items",
                     memos::format_id(ids[0])},
                    &out) == 2);

  // A crash mid-job: nothing written, and the restarted memosd has no job.
  auto crashing = c->param_distill(distill_args("crash", 10000));
  BOOST_REQUIRE_MESSAGE(crashing.ok(), why(crashing));
  for (int i = 0; i < 200 && c->job_show(crashing->id)->done < 2; ++i)
    std::this_thread::sleep_for(20ms);
  BOOST_TEST(c->job_show(crashing->id)->state == "running");
  // A chat is not held behind the job: it is answered between two steps
  // while the job goes on.
  const memos::ChatReply between = chat(*c, ids);
  BOOST_TEST(!between.text.empty());
  auto still = c->job_show(crashing->id);
  BOOST_REQUIRE(still.ok());
  BOOST_TEST(still->state == "running");
  BOOST_TEST(still->done < still->total);
  c.reset();
  BOOST_TEST(d->process->stop(9) == 128 + 9);
  d.reset();
  Daemon d2(dir.path());
  auto c2 = d2.client();
  BOOST_TEST(c2->param_show("maya", "crash").error().code == ErrorCode::not_found);
  BOOST_TEST(c2->job_list()->empty());
  BOOST_TEST(c2->param_show("maya", "facts")->version == 2u);
}

// A policy's parametric.distill_after: a scheduler pass distils a cube's
// stable memories once enough of them are new to its adapter, and not
// again until more are.
BOOST_AUTO_TEST_CASE(the_scheduler_distils_stable_memories_past_the_policys_threshold) {
  TempDir dir;
  auto p = start_with_policy(
      dir.path(),
      "[parametric]\ndistill_after = 3\nstable_after_s = 0\ndistill_name = \"auto\"\n"
      "[scheduler]\nenabled = true\n");
  auto connected = memos::Client::connect(p->socket());
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  BOOST_REQUIRE(c.cube_create("maya").ok());
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 2; ++i) ids.push_back(c.add("maya", {kMemories[i]})->id);
  auto pass = c.sched_run();
  BOOST_REQUIRE_MESSAGE(pass.ok(), why(pass));
  BOOST_TEST(pass->distillations == 0u);  // two are fewer than three
  ids.push_back(c.add("maya", {kMemories[2]})->id);
  pass = c.sched_run();
  BOOST_REQUIRE(pass.ok());
  BOOST_TEST(pass->distillations == 1u);
  auto jobs = c.job_list();
  BOOST_REQUIRE(jobs.ok() && jobs->size() == 1u);
  // Not a second job while this one runs.
  BOOST_TEST(c.sched_run()->distillations == 0u);
  const memos::Job done = wait_for(c, jobs->front().id);
  BOOST_REQUIRE_MESSAGE(done.state == "done", done.state + ": " + done.message);
  auto made = c.param_show("maya", "auto");
  BOOST_REQUIRE_MESSAGE(made.ok(), why(made));
  BOOST_TEST((std::set<std::uint64_t>(made->sources.begin(), made->sources.end()) ==
              std::set<std::uint64_t>(ids.begin(), ids.end())));
  BOOST_TEST(made->param->origin.find("parametric.distill_after") != std::string::npos,
             made->param->origin);
  // Learned: no job until three more are new.
  BOOST_TEST(c.sched_run()->distillations == 0u);
  ids.push_back(c.add("maya", {kMemories[3]})->id);
  BOOST_TEST(c.sched_run()->distillations == 0u);
}
