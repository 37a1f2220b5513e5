#define BOOST_TEST_MODULE plugin_loader
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_embedder.h"
#include "plugins/loader/host_protocol.h"
#include "plugins/loader/isolated.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"
#include "tests/support/memosd_process.h"
#include "tests/support/plugin_hosts.h"

using namespace memos::plugins;
using memos::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A folder with one manifest naming a test plugin built beside the tests.
struct OnePlugin {
  TempDir dir;
  Manifest manifest;
  std::string error;
  explicit OnePlugin(const std::string& plugin, const std::string& name = "",
                     const std::string& extra = "") {
    fs::copy_file(std::string(MEMOS_TEST_PLUGIN_DIR) + "/" + plugin + ".so",
                  dir.path() + "/" + plugin + ".so");
    std::ofstream(dir.path() + "/" + plugin + ".plugin.toml")
        << "name = \"" << (name.empty() ? plugin : name) << "\"\nkinds = [\"embedder\"]\n"
        << "abi_major = 1\nlibrary = \"" << plugin << ".so\"\n"
        << extra;
    error = read_manifest(dir.path() + "/" + plugin + ".plugin.toml", &manifest);
  }
  std::string load(LoadedLibrary* out) { return load_library(manifest, out); }
};

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::string any_request() {
  // A PluginRequest with describe set: these plugins answer anything alike.
  static const char bytes[] = {0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                               1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  return std::string(bytes, sizeof(bytes));
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_broken_descriptor_is_refused_with_its_reason) {
  struct Case {
    const char* plugin;
    const char* name;
    const char* expect;
  } cases[] = {
      {"bad-magic", "", "bad magic"},
      {"bad-major", "", "built for plugin ABI 2"},
      {"bad-short", "", "descriptor struct is too small"},
      {"bad-name", "", "calls itself 'someone-else'"},
      {"bad-no-symbol", "", "does not export memos_plugin_describe_v1"},
  };
  for (const auto& c : cases) {
    OnePlugin p(c.plugin, c.name);
    BOOST_REQUIRE_MESSAGE(p.error.empty(), p.error);
    LoadedLibrary lib;
    std::string err = p.load(&lib);
    BOOST_TEST(contains(err, c.expect), c.plugin << ": " << err);
  }
  // A manifest naming a library that is not there.
  OnePlugin p("bad-magic");
  p.manifest.library = p.dir.path() + "/missing.so";
  LoadedLibrary lib;
  BOOST_TEST(contains(p.load(&lib), "cannot load"));
}

BOOST_AUTO_TEST_CASE(a_plugin_from_an_older_minor_loads) {
  OnePlugin p("bad-old-vtable");
  LoadedLibrary lib;
  BOOST_REQUIRE_MESSAGE(p.load(&lib).empty(), p.load(&lib));
  std::string err;
  auto instance = PluginInstance::create(lib, &err);
  BOOST_REQUIRE_MESSAGE(instance, err);
  auto r = instance->call(any_request(), std::chrono::seconds(5), 1 << 20);
  BOOST_TEST(r.status == MEMOS_ERR_UNSUPPORTED);
}

BOOST_AUTO_TEST_CASE(misbehaving_calls_are_contained) {
  using namespace std::chrono_literals;
  {  // A reply that is not Cap'n Proto reaches the embedder as an error.
    OnePlugin p("bad-garbage-reply");
    LoadedLibrary lib;
    BOOST_REQUIRE(p.load(&lib).empty());
    std::string err;
    auto instance = PluginInstance::create(lib, &err);
    BOOST_REQUIRE(instance);
    memos::kernel::PluginEmbedder embedder(
        p.manifest.name, std::make_shared<InProcessChannel>(std::move(instance)), 5s, 16);
    std::vector<float> out;
    std::string why = embedder.embed("text", 32, &out).message;
    BOOST_TEST(contains(why, "bad-garbage-reply"), why);
  }
  {  // An oversized reply is refused before it is copied.
    OnePlugin p("bad-huge-reply");
    LoadedLibrary lib;
    BOOST_REQUIRE(p.load(&lib).empty());
    std::string err;
    auto instance = PluginInstance::create(lib, &err);
    auto r = instance->call(any_request(), 5s, 1 << 20);
    BOOST_TEST(r.status == MEMOS_ERR_INTERNAL);
    BOOST_TEST(contains(r.message, "larger than the limit"));
    BOOST_TEST(r.reply.empty());
  }
  {  // A second completion is ignored.
    OnePlugin p("bad-twice");
    LoadedLibrary lib;
    BOOST_REQUIRE(p.load(&lib).empty());
    std::string err;
    auto instance = PluginInstance::create(lib, &err);
    for (int i = 0; i < 3; ++i) {
      BOOST_TEST(instance->call(any_request(), 5s, 1 << 20).status == MEMOS_ERR_UNSUPPORTED);
    }
  }
  {  // A call never completed ends at its deadline.
    OnePlugin p("bad-silent");
    LoadedLibrary lib;
    BOOST_REQUIRE(p.load(&lib).empty());
    std::string err;
    auto instance = PluginInstance::create(lib, &err);
    auto started = std::chrono::steady_clock::now();
    auto r = instance->call(any_request(), 200ms, 1 << 20);
    BOOST_TEST(r.status == MEMOS_ERR_BUSY);
    BOOST_TEST(contains(r.message, "did not answer in time"));
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
  }
}

// An isolated plugin's incarnation() changes once per host that dies (a
// crash, a hang memosd kills, a kill from outside), and by the time the
// failed call returns, so that a caller keeping state in the plugin (a
// retriever's collections) learns from that very failure that the state is
// gone. plugin_faults() counts only the deaths the plugin brought on itself.
BOOST_AUTO_TEST_CASE(an_isolated_hosts_death_changes_its_incarnation_once) {
  using namespace std::chrono_literals;
  OnePlugin p("crasher", "", "isolation = \"isolated\"\n");
  BOOST_REQUIRE_MESSAGE(p.error.empty(), p.error);
  IsolationPolicy policy;
  policy.host_binary = MEMOS_PLUGIN_HOST;
  policy.max_crashes = 100;
  policy.backoff_initial = 10ms;
  auto channel = std::make_shared<IsolatedChannel>(p.manifest, policy);
  BOOST_REQUIRE(channel->start().empty());
  memos::kernel::PluginEmbedder embedder(p.manifest.name, channel, 300ms, 16);
  std::vector<float> out;
  auto embed_until_served = [&](const char* text) {
    for (int i = 0; i < 200; ++i) {
      if (embedder.embed(text, 32, &out).ok()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  BOOST_REQUIRE(embed_until_served("an ordinary text"));
  BOOST_TEST(channel->incarnation() == 0u);

  BOOST_TEST(!embedder.embed("segfault", 32, &out).ok());
  BOOST_TEST(channel->incarnation() == 1u);
  BOOST_TEST(channel->plugin_faults() == 1u);
  BOOST_REQUIRE(embed_until_served("an ordinary text"));
  BOOST_TEST(channel->incarnation() == 1u);

  // A hang: counted when the call gives up, not again when the reader
  // later sees the killed host go.
  BOOST_TEST(!embedder.embed("hang", 32, &out).ok());
  BOOST_TEST(channel->incarnation() == 2u);
  BOOST_TEST(channel->plugin_faults() == 2u);
  std::this_thread::sleep_for(300ms);
  BOOST_REQUIRE(embed_until_served("an ordinary text"));
  BOOST_TEST(channel->incarnation() == 2u);

  // Killed from outside (as the OOM killer would): a new incarnation, and
  // not the plugin's fault.
  auto hosts = memos::testing::plugin_hosts(::getpid());
  BOOST_REQUIRE_EQUAL(hosts.size(), 1u);
  BOOST_REQUIRE(::kill(hosts.front(), SIGKILL) == 0);
  for (int i = 0; i < 200 && channel->incarnation() == 2u; ++i) std::this_thread::sleep_for(10ms);
  BOOST_TEST(channel->incarnation() == 3u);
  BOOST_TEST(channel->plugin_faults() == 2u);
}

BOOST_AUTO_TEST_CASE(the_sdk_catches_what_a_plugin_throws) {
  OnePlugin p("thrower");
  LoadedLibrary lib;
  BOOST_REQUIRE(p.load(&lib).empty());
  std::string err;
  auto instance = PluginInstance::create(lib, &err);
  BOOST_REQUIRE(instance);
  memos::kernel::PluginEmbedder embedder(p.manifest.name,
                                         std::make_shared<InProcessChannel>(std::move(instance)),
                                         std::chrono::seconds(5), 16);
  std::vector<float> out;
  std::string why = embedder.embed("text", 32, &out).message;
  BOOST_TEST(contains(why, "thrown inside the plugin"), why);
  // A constructor that throws std::invalid_argument fails create() cleanly.
  lib.manifest.settings["fail_create"] = "yes";
  BOOST_TEST(!PluginInstance::create(lib, &err));
  BOOST_TEST(contains(err, "create() failed"), err);
}

namespace {

// A tokenize request whose text tells the streamer what to send.
std::string tokenize_request(const std::string& how) {
  capnp::MallocMessageBuilder message;
  message.initRoot<memos::plugin_wire::PluginRequest>().initTokenize().setText(how);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// The tokens of a reply (the streamer's [accepted, streams]); empty if none.
std::vector<std::int32_t> reply_tokens(const std::string& reply) {
  std::vector<std::int32_t> out;
  if (reply.empty() || reply.size() % sizeof(capnp::word) != 0) return out;
  std::vector<capnp::word> words(reply.size() / sizeof(capnp::word));
  std::memcpy(words.data(), reply.data(), reply.size());
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
  auto r = reader.getRoot<memos::plugin_wire::PluginResponse>();
  if (r.isTokens())
    for (std::int32_t t : r.getTokens()) out.push_back(t);
  return out;
}

}  // namespace

// Partials (memos_host_api.partial, ABI minor 1) reach the caller's sink in
// order and before its call returns, in process and isolated alike; one
// over the limit is dropped, and a caller that takes none loses nothing else.
BOOST_AUTO_TEST_CASE(partials_reach_the_caller_in_order_before_the_reply) {
  using namespace std::chrono_literals;
  for (bool isolated : {false, true}) {
    BOOST_TEST_CONTEXT((isolated ? "isolated" : "in process")) {
      OnePlugin p("streamer", "", isolated ? "isolation = \"isolated\"\n" : "");
      BOOST_REQUIRE_MESSAGE(p.error.empty(), p.error);
      std::shared_ptr<PluginChannel> channel;
      if (isolated) {
        IsolationPolicy policy;
        policy.host_binary = MEMOS_PLUGIN_HOST;
        auto c = std::make_shared<IsolatedChannel>(p.manifest, policy);
        BOOST_REQUIRE(c->start().empty());
        channel = c;
      } else {
        LoadedLibrary lib;
        BOOST_REQUIRE(p.load(&lib).empty());
        std::string err;
        auto instance = PluginInstance::create(lib, &err);
        BOOST_REQUIRE_MESSAGE(instance, err);
        channel = std::make_shared<InProcessChannel>(std::move(instance));
      }
      std::vector<std::string> pieces;
      bool returned = false;
      PartialSink sink = [&](std::string_view bytes) {
        BOOST_TEST(!returned, "a partial came after its call returned");
        std::vector<capnp::word> words(bytes.size() / sizeof(capnp::word));
        std::memcpy(words.data(), bytes.data(), bytes.size());
        capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
        pieces.push_back(reader.getRoot<memos::plugin_wire::PluginPartial>().getText());
      };
      auto r = channel->call(tokenize_request("200"), 10s, 1 << 20, sink);
      returned = true;
      BOOST_TEST(r.status == MEMOS_OK);
      BOOST_TEST((reply_tokens(r.reply) == std::vector<std::int32_t>{200, 1}));
      BOOST_REQUIRE_EQUAL(pieces.size(), 200u);
      for (std::size_t i = 0; i < pieces.size(); ++i)
        BOOST_TEST(pieces[i] == "piece-" + std::to_string(i));

      pieces.clear();
      returned = false;
      r = channel->call(tokenize_request("huge"), 10s, 1 << 20, sink);
      returned = true;
      BOOST_TEST((reply_tokens(r.reply) == std::vector<std::int32_t>{1, 1}));
      BOOST_TEST(pieces.empty(), "a partial over kMaxPartialBytes was delivered");

      r = channel->call(tokenize_request("5"), 10s, 1 << 20);  // no sink
      BOOST_TEST((reply_tokens(r.reply) == std::vector<std::int32_t>{5, 1}));
    }
  }
}

// A host of ABI minor 0 has no partial(): the SDK sees it from the host's
// struct_size and sends nothing, and the call is answered as before.
BOOST_AUTO_TEST_CASE(a_host_of_minor_0_is_sent_no_partials) {
  OnePlugin p("streamer");
  LoadedLibrary lib;
  BOOST_REQUIRE(p.load(&lib).empty());
  struct Outcome {
    bool done = false;
    std::string reply;
  } outcome;
  memos_host_api api{};
  api.struct_size = offsetof(memos_host_api, partial);  // what a minor 0 host knew
  api.abi_minor = 0;
  api.log = [](void*, int, const char*, std::size_t) {};
  api.complete = [](memos_call* call, memos_status, const std::uint8_t* reply, std::size_t size) {
    auto* o = reinterpret_cast<Outcome*>(call);
    o->reply.assign(reinterpret_cast<const char*>(reply), size);
    o->done = true;
  };
  api.is_cancelled = [](memos_call*) { return 0; };
  api.partial = [](memos_call*, const std::uint8_t*, std::size_t) {
    std::abort();
  };  // past struct_size
  const std::string config = config_message({});
  memos_instance* instance = nullptr;
  const memos_plugin_vtable* v = lib.descriptor->vtable;
  BOOST_REQUIRE(v->create(&api, reinterpret_cast<const std::uint8_t*>(config.data()), config.size(),
                          &instance) == MEMOS_OK);
  const std::string request = tokenize_request("3");
  v->call(instance, reinterpret_cast<memos_call*>(&outcome),
          reinterpret_cast<const std::uint8_t*>(request.data()), request.size());
  v->destroy(instance);
  BOOST_REQUIRE(outcome.done);
  BOOST_TEST((reply_tokens(outcome.reply) == std::vector<std::int32_t>{0, 0}));
}

BOOST_AUTO_TEST_CASE(manifests_are_checked_and_untrusted_files_refused) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() + "/" + name) << text;
    return dir.path() + "/" + name;
  };
  Manifest m;
  BOOST_TEST(contains(read_manifest(write("a.plugin.toml",
                                          "name = \"a\"\nkinds = [\"embedder\"]\n"
                                          "abi_major = 1\nlibrary = \"../x.so\"\n"),
                                    &m),
                      "library must be a file name"));
  BOOST_TEST(contains(read_manifest(write("b.plugin.toml",
                                          "name = \"b\"\nkinds = [\"mind-reader\"]\n"
                                          "abi_major = 1\nlibrary = \"b.so\"\n"),
                                    &m),
                      "unknown kind"));
  BOOST_TEST(contains(read_manifest(write("c.plugin.toml",
                                          "name = \"c\"\nkinds = [\"embedder\"]\n"
                                          "abi_major = 1\nlibrary = \"c.so\"\n"
                                          "colour = \"blue\"\n"),
                                    &m),
                      "unknown key 'colour'"));
  BOOST_TEST(contains(read_manifest(write("d.plugin.toml", "name = [\n"), &m), "d.plugin.toml:"));
  BOOST_TEST(contains(read_manifest(write("e.plugin.toml",
                                          "name = \"e\"\nkinds = [\"embedder\"]\n"
                                          "abi_major = 1\nlibrary = \"e.so\"\n"
                                          "isolation = \"sandboxed\"\n"),
                                    &m),
                      "isolation must be"));
  std::string good = write("f.plugin.toml",
                           "name = \"f\"\nkinds = [\"embedder\"]\n"
                           "abi_major = 1\nlibrary = \"f.so\"\n");
  BOOST_TEST(read_manifest(good, &m).empty());
  BOOST_TEST(m.library == dir.path() + "/f.so");
  chmod(good.c_str(), 0666);
  BOOST_TEST(contains(check_trusted(good), "writable by anyone"));
  Listing listing = list_plugins({dir.path()});
  BOOST_TEST(listing.plugins.empty());  // every manifest above is refused
  BOOST_TEST(listing.problems.size() == 6u);
  // The shipped plugin folder lists the plugins memosd uses by default.
  Listing shipped = list_plugins({MEMOS_PLUGIN_DIR});
  std::set<std::string> names;
  for (const auto& p : shipped.plugins) names.insert(p.name);
  BOOST_TEST(shipped.problems.empty());
  // The llama.cpp plugins are there when memosd was built with llama.cpp.
  names.erase("llama-executor");
  names.erase("llama-embedder");
  BOOST_TEST((names == std::set<std::string>{"hash-embedder", "faiss-retriever", "xapian-retriever",
                                             "hybrid-fuser", "router-policy"}));
}

// A host's COMPLETE frame carries its status in a byte: one memosd does not
// know is an internal error, never an out-of-range memos_status (UBSan's
// finding in fuzz_host_protocol: a status of 162 reached the kernel).
BOOST_AUTO_TEST_CASE(a_status_byte_the_protocol_does_not_have_is_internal) {
  namespace hp = memos::plugins::host_protocol;
  BOOST_TEST(hp::call_status(MEMOS_OK) == MEMOS_OK);
  BOOST_TEST(hp::call_status(MEMOS_ERR_BUSY) == MEMOS_ERR_BUSY);
  BOOST_TEST(hp::call_status(MEMOS_ERR_BUSY + 1) == MEMOS_ERR_INTERNAL);
  BOOST_TEST(hp::call_status(162) == MEMOS_ERR_INTERNAL);
  BOOST_TEST(hp::call_status(255) == MEMOS_ERR_INTERNAL);
}
