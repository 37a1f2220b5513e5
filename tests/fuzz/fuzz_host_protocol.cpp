// fuzz_host_protocol — what memos-plugin-host sends memosd: a stream of
// host frames (plugins/loader/host_protocol.h) read with read_frame(), each
// COMPLETE frame turned into a call's result as IsolatedChannel::read_loop()
// does (the PARTIAL frames before it delivered to the call's sink as they
// came: a generate streams), and that result decoded by the kernel's client
// of the plugin kind
// the frame's call id picks: the embedder, a retriever (open, search, fuse),
// the executor (chat tokens, prefill, generate, status) or a router (route),
// exactly as memosd decodes a reply from an isolated plugin.
//
// Checked: whatever the host sends, each call succeeds or fails with a
// Status (never an exception or a crash); a successful embedding has the
// shape asked for, a successful route only tiers offered; partials that do
// not decode are skipped.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_embedder.h"
#include "kernel/plugin_executor.h"
#include "kernel/plugin_retriever.h"
#include "kernel/plugin_router.h"
#include "plugins/loader/host_protocol.h"
#include "tests/fuzz/fuzz_seeds.h"
#include "tests/support/route_reply.h"

namespace {

using namespace memos;
using namespace memos::kernel;
namespace hp = memos::plugins::host_protocol;
using plugin_wire::PluginResponse;

constexpr std::size_t kMaxReply = 1u << 20;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_host_protocol: %s\n", what);
    std::abort();
  }
}

// Answers each call with the next result the host sent.
class ScriptedChannel final : public plugins::PluginChannel {
 public:
  plugins::CallResult call(const std::string&, std::chrono::milliseconds, std::size_t,
                           const plugins::PartialSink& on_partial) override {
    // A second call for one reply: the host has not answered it (yet).
    if (results.empty()) return {MEMOS_ERR_BUSY, "", "timed out"};
    for (const std::string& p : partials) {
      if (on_partial && p.size() <= plugins::kMaxPartialBytes) on_partial(p);
    }
    partials.clear();
    plugins::CallResult r = std::move(results.front());
    results.pop_front();
    return r;
  }
  std::string health() const override { return "running"; }
  std::deque<plugins::CallResult> results;
  std::vector<std::string> partials;  // PARTIAL payloads ahead of the next result
};

// A COMPLETE frame as IsolatedChannel::read_loop() makes it a result.
plugins::CallResult result_of(hp::Frame& frame) {
  plugins::CallResult r;
  r.status = hp::call_status(frame.status);
  if (frame.flags & hp::kTextPayload) {
    r.message = frame.payload;
  } else if (frame.payload.size() > kMaxReply) {
    r.status = MEMOS_ERR_INTERNAL;
    r.message = "the plugin's reply is larger than the limit";
  } else {
    r.reply = std::move(frame.payload);
  }
  return r;
}

std::shared_ptr<ScriptedChannel> channel;
std::unique_ptr<PluginEmbedder> embedder;
std::unique_ptr<PluginRetriever> retriever;
std::unique_ptr<PluginExecutor> executor;
std::unique_ptr<PluginRouter> router;
int memfd = -1;

constexpr std::uint32_t kDimension = 4;
enum Call : std::uint64_t {
  kEmbed,
  kOpen,
  kSearch,
  kFuse,
  kChatTokens,
  kPrefill,
  kGenerate,
  kExecutorStatus,
  kRoute,
  kCalls
};

void make_call(std::uint64_t which) {
  switch (which % kCalls) {
    case kEmbed: {
      std::vector<float> out;
      std::vector<std::string_view> texts{"the cat", "sat on the mat"};
      if (embedder->embed(texts, kDimension, &out).ok()) {
        check(out.size() == texts.size() * kDimension, "an embedding of another shape");
      }
      break;
    }
    case kOpen: {
      CollectionState state;
      (void)retriever->open(7, kDimension, "english", &state);
      break;
    }
    case kSearch: {
      std::vector<RankedHit> hits;
      std::vector<float> vector(kDimension, 0.5f);
      (void)retriever->search(7, "cat", vector, 10, RetrievalFilter{}, &hits);
      break;
    }
    case kFuse: {
      FuseInput input;
      input.k = 5;
      input.lists = {{"dense", 1, {{1, 0.9f}, {2, 0.5f}}}, {"lexical", 1, {{2, 3.0f}}}};
      input.candidates = {{1, 10, 0.5f, {}}, {2, 20, 0.1f, {}}};
      std::vector<RankedHit> hits;
      (void)retriever->fuse(input, &hits);
      break;
    }
    case kChatTokens: {
      std::vector<std::int32_t> block, question;
      std::string format;
      (void)executor->chat_tokens("memories", "what?", &block, &question, &format);
      break;
    }
    case kPrefill: {
      std::string state;
      double ms = 0;
      (void)executor->prefill({1, 2, 3, 4}, "uid 1", &state, &ms);
      break;
    }
    case kGenerate: {
      GenerateArgs args;
      args.tokens = {1, 2, 3};
      args.max_tokens = 8;
      args.want_logits = true;
      args.export_tokens = 3;
      args.cache_scope = "uid 1";
      std::size_t streamed = 0;
      args.on_text = [&](std::string_view text) { streamed += text.size(); };
      args.on_prefill = [&](std::uint32_t done, std::uint32_t total) { streamed += done + total; };
      GenerateResult out;
      (void)executor->generate(args, &out);
      (void)streamed;  // any count: the sinks ran without crashing
      break;
    }
    case kExecutorStatus: {
      ExecutorStatus status;
      (void)executor->status(&status);
      break;
    }
    case kRoute: {
      // Retrieve at any tier, the others low or mid: an answer with
      // temporal=high (or any module left out) must be refused.
      RouterAsk ask;
      ask.query = "when did the cat sit?";
      ask.features = {{"words", 5}, {"time_question", 1}};
      ask.offered = {{Module::retrieve, {CostTier::low, CostTier::mid, CostTier::high}},
                     {Module::temporal, {CostTier::low, CostTier::mid}},
                     {Module::expand, {CostTier::low, CostTier::mid}},
                     {Module::compress, {CostTier::low, CostTier::mid}}};
      ask.lambda = 0.3f;
      RouterAnswer out;
      if (router->route(ask, &out).ok()) {
        for (Module m : {Module::temporal, Module::expand, Module::compress})
          check(out.route[m] != CostTier::high, "a route with a tier not offered");
      }
      break;
    }
  }
}

// The bytes the protocol's own writer puts on the socket for `frame`.
std::string frame_bytes(const hp::Frame& frame) {
  int fds[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair failed");
  check(hp::write_frame(fds[0], frame), "cannot write a seed frame");
  ::close(fds[0]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[1], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[1]);
  return out;
}

// A host's COMPLETE frame for call `which`, carrying `build`'s response.
template <class Build>
std::string complete_frame(std::uint64_t which, Build build) {
  capnp::MallocMessageBuilder message;
  build(message.initRoot<PluginResponse>());
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  hp::Frame frame;
  frame.kind = hp::kComplete;
  frame.status = MEMOS_OK;
  frame.id = which;
  frame.payload.assign(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  return frame_bytes(frame);
}

void write_seeds(const fuzz::EmitSeed& emit) {
  emit("embeddings", complete_frame(kEmbed, [](PluginResponse::Builder r) {
         auto e = r.initEmbeddings();
         e.setDimension(kDimension);
         auto v = e.initValues(2 * kDimension);
         for (unsigned i = 0; i < v.size(); ++i) v.set(i, 0.1f * static_cast<float>(i));
       }));
  emit("collection", complete_frame(kOpen, [](PluginResponse::Builder r) {
         auto c = r.initCollection();
         c.setCollection(7);
         c.setVersion(12);
         c.setDocuments(3);
         c.setDetail("hnsw, 0 tombstones");
       }));
  auto hits = [](PluginResponse::Builder r) {
    auto h = r.initHits(2);
    h[0].setId(1);
    h[0].setScore(0.9f);
    h[1].setId(2);
    h[1].setScore(0.4f);
  };
  emit("search_hits", complete_frame(kSearch, hits));
  emit("fuse_hits", complete_frame(kFuse, hits));
  emit("chat_tokens", complete_frame(kChatTokens, [](PluginResponse::Builder r) {
         auto c = r.initChatTokens();
         auto b = c.initBlock(3);
         for (unsigned i = 0; i < 3; ++i) b.set(i, static_cast<int>(i) + 1);
         c.initQuestion(1).set(0, 42);
         c.setFormat("chat template");
       }));
  emit("prefilled", complete_frame(kPrefill, [](PluginResponse::Builder r) {
         auto p = r.initPrefilled();
         std::string state(64, 's');
         p.setState(kj::arrayPtr(reinterpret_cast<const capnp::byte*>(state.data()), state.size()));
         p.setTokens(4);
         p.setPrefillMs(1.5);
       }));
  emit("generated", complete_frame(kGenerate, [](PluginResponse::Builder r) {
         auto g = r.initGenerated();
         g.setText("a cat");
         auto t = g.initTokens(2);
         t.set(0, 5);
         t.set(1, 6);
         g.setPromptTokens(3);
         g.setStateStatus("none");
         g.setFinish("length");
         g.initLogits(4).set(0, 1.0f);
       }));
  emit("executor_status", complete_frame(kExecutorStatus, [](PluginResponse::Builder r) {
         auto s = r.initExecutorStatus();
         s.setResidentStates(1);
         s.setResidentBytes(4096);
         s.setResidentBudgetBytes(1 << 20);
       }));
  emit("plugin_error", complete_frame(kSearch, [](PluginResponse::Builder r) {
         auto e = r.initError();
         e.setCode(plugin_wire::ErrorCode::INVALID);
         e.setMessage("no such collection");
       }));
  emit("route", complete_frame(kRoute, [](PluginResponse::Builder r) {
         memos::testing::fill_route(
             r, {{"retrieve", "high"}, {"temporal", "mid"}, {"expand", "mid"}, {"compress", "mid"}},
             "best predicted recall", "retrieve=high,temporal=mid,expand=mid,compress=mid", 0.7f);
       }));
  // A streamed generate: progress and text pieces, then its reply.
  auto partial_frame = [](auto build) {
    capnp::MallocMessageBuilder message;
    build(message.initRoot<plugin_wire::PluginPartial>());
    auto words = capnp::messageToFlatArray(message);
    auto bytes = words.asBytes();
    hp::Frame frame;
    frame.kind = hp::kPartial;
    frame.id = kGenerate;
    frame.payload.assign(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
    return frame_bytes(frame);
  };
  emit("streamed_generate",
       partial_frame([](plugin_wire::PluginPartial::Builder p) { p.initPrefill().setTotal(3); }) +
           partial_frame([](plugin_wire::PluginPartial::Builder p) { p.setText("a "); }) +
           partial_frame([](plugin_wire::PluginPartial::Builder p) { p.setText("cat"); }) +
           complete_frame(kGenerate, [](PluginResponse::Builder r) {
             auto g = r.initGenerated();
             g.setText("a cat");
             g.setStateStatus("none");
             g.setFinish("length");
           }));
  // A stream: a READY, then several calls' replies.
  emit("ready_then_calls",
       frame_bytes(hp::Frame{}) + complete_frame(kEmbed, [](PluginResponse::Builder r) {
         auto e = r.initEmbeddings();
         e.setDimension(kDimension);
         e.initValues(2 * kDimension);
       }) + complete_frame(kSearch, hits));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(write_seeds);
  channel = std::make_shared<ScriptedChannel>();
  std::chrono::milliseconds timeout(1000);
  embedder = std::make_unique<PluginEmbedder>("embedder", channel, timeout, 64);
  retriever = std::make_unique<PluginRetriever>("retriever", channel, timeout,
                                                std::vector<SearchMode>{SearchMode::dense});
  ExecutorInfo info;
  info.model = "tiny";
  info.context_tokens = 512;
  info.batch_tokens = 64;
  info.vocabulary = 32000;
  executor = std::make_unique<PluginExecutor>("executor", channel, info, timeout, kMaxReply);
  router = std::make_unique<PluginRouter>("router", channel, timeout, RouterInfo{"linear", 0, ""});
  memfd = ::memfd_create("host-stream", MFD_CLOEXEC);
  check(memfd >= 0, "memfd_create failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The host's side of the socketpair, as a file read from its start.
  check(::ftruncate(memfd, 0) == 0 &&
            ::pwrite(memfd, data, size, 0) == static_cast<ssize_t>(size) &&
            ::lseek(memfd, 0, SEEK_SET) == 0,
        "cannot stage the input");
  hp::Frame frame;
  channel->partials.clear();
  while (hp::read_frame(memfd, &frame)) {
    if (frame.kind == hp::kPartial) {
      channel->partials.push_back(std::move(frame.payload));
      continue;
    }
    if (frame.kind != hp::kComplete) continue;  // READY and stray CALLs: read_loop skips them
    std::uint64_t which = frame.id;
    channel->results.push_back(result_of(frame));
    make_call(which);
    channel->results.clear();  // a call the client did not make (none is left otherwise)
  }
  return 0;
}
