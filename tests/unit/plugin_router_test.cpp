// The kernel's router client (kernel/plugin_router.h) against hostile
// replies: a router that leaves a module out, names one twice, names a tier
// memosd did not offer or does not know, hides a NUL in a name, answers
// something else or garbage, or sends an oversized reason gets a clear
// error (and memosd routes at its default tier), never a route it cannot run.
#define BOOST_TEST_MODULE plugin_router
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <boost/test/unit_test.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_router.h"
#include "tests/support/route_reply.h"

using memos::CostTier;
using memos::Module;
using memos::kernel::PluginRouter;
using memos::kernel::RouterAnswer;
using memos::kernel::RouterAsk;
namespace pw = memos::plugin_wire;

namespace {

// Answers every call with `reply`, and keeps the request it was sent.
class CannedChannel final : public memos::plugins::PluginChannel {
 public:
  memos::plugins::CallResult call(const std::string& request, std::chrono::milliseconds,
                                  std::size_t max_reply,
                                  const memos::plugins::PartialSink&) override {
    last_request = request;
    if (reply.size() > max_reply) return {MEMOS_ERR_INTERNAL, "", "the reply is too large"};
    return {MEMOS_OK, reply, ""};
  }
  std::string health() const override { return "running"; }
  std::string reply;
  std::string last_request;
};

std::string bytes_of(capnp::MallocMessageBuilder& m) {
  auto words = capnp::messageToFlatArray(m);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

using Tiers = memos::testing::RouteTiers;

std::string route_reply(const Tiers& tiers, const std::string& reason = "why") {
  capnp::MallocMessageBuilder m;
  memos::testing::fill_route(m.initRoot<pw::PluginResponse>(), tiers, reason,
                             "retrieve=mid,temporal=low,expand=mid,compress=mid", 0.8f);
  return bytes_of(m);
}

const Tiers kGood = {
    {"retrieve", "mid"}, {"temporal", "low"}, {"expand", "mid"}, {"compress", "mid"}};

RouterAsk ask() {
  RouterAsk a;
  a.query = "when did we meet?";
  a.features = {{"words", 1.5f}};
  a.offered = {{Module::retrieve, {CostTier::low, CostTier::mid, CostTier::high}},
               {Module::temporal, {CostTier::low, CostTier::mid}},
               {Module::expand, {CostTier::low, CostTier::mid}},
               {Module::compress, {CostTier::low, CostTier::mid}}};
  a.lambda = 0.3f;
  return a;
}

struct Fixture {
  std::shared_ptr<CannedChannel> channel = std::make_shared<CannedChannel>();
  PluginRouter router{"router", channel, std::chrono::milliseconds(1000), {}};
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_good_answer_is_read_and_the_request_carries_the_ask, Fixture) {
  channel->reply = route_reply(kGood);
  RouterAnswer out;
  auto st = router.route(ask(), &out);
  BOOST_TEST_REQUIRE(st.ok(), st.message);
  BOOST_TEST((out.route[Module::retrieve] == CostTier::mid));
  BOOST_TEST((out.route[Module::temporal] == CostTier::low));
  BOOST_TEST(out.reason == "why");
  BOOST_REQUIRE(out.scores.size() == 1u);
  // The request as the plugin reads it.
  std::vector<capnp::word> words(channel->last_request.size() / 8);
  std::memcpy(words.data(), channel->last_request.data(), channel->last_request.size());
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
  auto r = reader.getRoot<pw::PluginRequest>().getRoute();
  BOOST_TEST(std::string(r.getQuery().cStr()) == "when did we meet?");
  BOOST_TEST(r.getTiers().size() == 4u);
  BOOST_TEST(r.getTiers()[0].getTiers().size() == 3u);
  BOOST_TEST(r.getLambda() == 0.3f);
  BOOST_TEST(std::string(r.getFeatures()[0].getName().cStr()) == "words");
}

BOOST_FIXTURE_TEST_CASE(answers_memosd_cannot_run_are_errors, Fixture) {
  struct Case {
    const char* name;
    Tiers tiers;
    const char* says;
  } cases[] = {
      {"a module left out",
       {{"retrieve", "mid"}, {"temporal", "low"}, {"expand", "mid"}},
       "left out compress"},
      {"a module twice",
       {{"retrieve", "mid"},
        {"retrieve", "low"},
        {"temporal", "low"},
        {"expand", "mid"},
        {"compress", "mid"}},
       "twice"},
      {"a tier not offered",
       {{"retrieve", "mid"}, {"temporal", "high"}, {"expand", "mid"}, {"compress", "mid"}},
       "did not offer"},
      {"an unknown tier",
       {{"retrieve", "max"}, {"temporal", "low"}, {"expand", "mid"}, {"compress", "mid"}},
       "unknown"},
      {"an unknown module",
       {{"summary", "mid"},
        {"retrieve", "mid"},
        {"temporal", "low"},
        {"expand", "mid"},
        {"compress", "mid"}},
       "unknown"},
      {"the answer, which memosd routes itself",
       {{"answer", "mid"},
        {"retrieve", "mid"},
        {"temporal", "low"},
        {"expand", "mid"},
        {"compress", "mid"}},
       "did not offer"},
      {"a NUL in a name",
       {{std::string("retrieve\0x", 10), "mid"},
        {"temporal", "low"},
        {"expand", "mid"},
        {"compress", "mid"}},
       "unknown"},
      {"nothing", {}, "left out"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      channel->reply = route_reply(c.tiers);
      RouterAnswer out;
      auto st = router.route(ask(), &out);
      BOOST_TEST(!st.ok());
      BOOST_TEST(st.message.find(c.says) != std::string::npos, st.message);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(other_replies_garbage_and_oversize_are_errors, Fixture) {
  capnp::MallocMessageBuilder m;
  m.initRoot<pw::PluginResponse>().initHits(1);
  channel->reply = bytes_of(m);
  RouterAnswer out;
  BOOST_TEST(!router.route(ask(), &out).ok());
  channel->reply = std::string(64, '\xff');
  BOOST_TEST(!router.route(ask(), &out).ok());
  channel->reply = std::string(7, 'x');  // not whole words
  BOOST_TEST(!router.route(ask(), &out).ok());
  channel->reply = route_reply(kGood, std::string(1 << 17, 'r'));  // over the reply limit
  BOOST_TEST(!router.route(ask(), &out).ok());
  // A long reason within the limit is cut.
  channel->reply = route_reply(kGood, std::string(5000, 'r'));
  auto st = router.route(ask(), &out);
  BOOST_TEST_REQUIRE(st.ok(), st.message);
  BOOST_TEST(out.reason.size() <= 256u);
}
