// How the SDK reads the named values in memosd's replies, against a fake
// daemon that answers with whatever a test gives it: known names become the
// vocabulary's enums, names from a newer memosd fail that one call with
// protocol_error (the connection stays usable), and the two documented
// readings (an empty default retriever, an activation status this client
// does not know) hold.
#define BOOST_TEST_MODULE client_replies
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"

namespace {

using memos::testing::why;
using Answer = std::function<void(memos::wire::Request::Reader, memos::wire::Response::Builder)>;

// Listens on a socket in a temporary folder and answers each request of one
// connection with `answer` (which fills the response; the id is set here).
class FakeDaemon {
 public:
  explicit FakeDaemon(Answer answer) : answer_(std::move(answer)) {
    path_ = dir_.path() + "/fake.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = memos::testing::unix_address(path_);
    BOOST_REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_REQUIRE(::listen(listener_, 1) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    ::shutdown(listener_, SHUT_RDWR);
    if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    if (connection_ >= 0) ::close(connection_);
  }
  const std::string& socket() const { return path_; }

 private:
  void serve() {
    connection_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection_ < 0) return;
    memos::ipc::FrameDecoder decoder({16u << 20, 1u << 16});
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(connection_, buf, sizeof(buf), 0);
      if (n <= 0) return;
      std::vector<kj::Array<capnp::word>> frames;
      if (decoder.feed(
              std::span(reinterpret_cast<const std::byte*>(buf), static_cast<std::size_t>(n)),
              frames) != memos::ipc::FrameError::none) {
        return;
      }
      for (auto& received : frames) {
        capnp::FlatArrayMessageReader reader(received);
        auto request = reader.getRoot<memos::wire::Request>();
        capnp::MallocMessageBuilder message;
        auto response = message.initRoot<memos::wire::Response>();
        response.setId(request.getId());
        answer_(request, response);
        auto frame_words = memos::ipc::encode_frame(message);
        auto bytes = frame_words.asBytes();
        if (::send(connection_, bytes.begin(), bytes.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(bytes.size())) {
          return;
        }
      }
    }
  }

  memos::testing::TempDir dir_;
  std::string path_;
  Answer answer_;
  int listener_ = -1;
  int connection_ = -1;
  std::thread thread_;
};

std::unique_ptr<memos::Client> connect(const FakeDaemon& daemon) {
  auto c = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE_MESSAGE(c.ok(), why(c));
  return std::move(c.value());
}

// A cube reply whose default retriever is the cube's name, so one test sends
// several spellings.
void cube_named_as_its_retriever(memos::wire::Request::Reader request,
                                 memos::wire::Response::Builder response) {
  auto name = request.getCubeShow().getName();
  auto cube = response.initCube();
  cube.setName(name);
  if (name == "(empty)") {
    cube.setDefaultRetriever("");
  } else {
    cube.setDefaultRetriever(name);
  }
}

// A chat reply whose activation status is the prompt.
void chat_status_is_the_prompt(memos::wire::Request::Reader request,
                               memos::wire::Response::Builder response) {
  response.initChat().setActivationStatus(request.getChat().getPrompt());
}

}  // namespace

BOOST_AUTO_TEST_CASE(default_retrievers_read_as_modes_and_unknown_ones_fail_the_call) {
  FakeDaemon daemon(cube_named_as_its_retriever);
  auto c = connect(daemon);
  auto lexical = c->cube_show("lexical");
  BOOST_REQUIRE_MESSAGE(lexical.ok(), why(lexical));
  BOOST_TEST(lexical->default_retriever == memos::SearchMode::lexical);
  // A cube made before cubes had a default retriever: searched densely.
  auto old = c->cube_show("(empty)");
  BOOST_REQUIRE_MESSAGE(old.ok(), why(old));
  BOOST_TEST(old->default_retriever == memos::SearchMode::dense);
  for (const char* newer : {"sparse", "Hybrid", "hybrid "}) {
    auto r = c->cube_show(newer);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code == memos::ErrorCode::protocol_error);
    BOOST_TEST(r.error().message.find(newer) != std::string::npos, r.error().message);
  }
  // That failed the call only: the connection still answers.
  auto again = c->cube_show("hybrid");
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST(again->default_retriever == memos::SearchMode::hybrid);
}

BOOST_AUTO_TEST_CASE(activation_statuses_read_as_outcomes) {
  FakeDaemon daemon(chat_status_is_the_prompt);
  auto c = connect(daemon);
  auto status = [&](const std::string& text) {
    auto r = c->chat("c", text);
    BOOST_REQUIRE_MESSAGE(r.ok(), text << ": " << why(r));
    return r.value();
  };
  BOOST_TEST(status("none").activation_status == memos::ActivationOutcome{});
  BOOST_TEST(status("restored+stored").activation_status ==
             (memos::ActivationOutcome{.restored = true, .stored = true}));
  auto rejected = status("rejected: model hash differs");
  BOOST_TEST(rejected.activation_status.rejected == "model hash differs");
  BOOST_TEST(rejected.activation_status.not_stored.empty());
  // memosd appends why storing the block's state failed.
  auto full = status("restored; not stored: disk full");
  BOOST_TEST(full.activation_status ==
             (memos::ActivationOutcome{.restored = true, .not_stored = "disk full"}));
  auto both = status("rejected: bad magic; not stored: disk full");
  BOOST_TEST(both.activation_status.rejected == "bad magic");
  BOOST_TEST(both.activation_status.not_stored == "disk full");
  // An executor's status this client does not know: memosd dropped the
  // state, so it reads as a rejection for that reason.
  auto skipped = status("skipped");
  BOOST_TEST(skipped.activation_status.rejected == "skipped");
  // No status at all is not a reply memosd sends.
  auto empty = c->chat("c", "");
  BOOST_REQUIRE(!empty.ok());
  BOOST_TEST(empty.error().code == memos::ErrorCode::protocol_error);
}

BOOST_AUTO_TEST_CASE(unknown_tiers_states_modes_and_plugin_states_fail_the_call) {
  // The request says what to break: the item id picks the field.
  FakeDaemon daemon(
      [](memos::wire::Request::Reader request, memos::wire::Response::Builder response) {
        if (request.isPluginInfo()) {
          auto p = response.initPlugin();
          p.setName(request.getPluginInfo());
          p.setState(request.getPluginInfo());  // the name is the state
          return;
        }
        if (request.isSearch()) {
          auto hit = response.initHits(1)[0];
          hit.initItem().setId(1);
          auto rank = hit.initRanks(1)[0];
          rank.setRetriever(request.getSearch().getQuery());  // the query is the retriever
          return;
        }
        auto get = request.getGet();
        auto item = response.initItem();
        item.setId(get.getItemId());
        if (get.getItemId() == 1) item.setTier(static_cast<memos::wire::Tier>(7));
        if (get.getItemId() == 2) item.setState(static_cast<memos::wire::State>(9));
        if (get.getItemId() == 3) item.setState(memos::wire::State::FROZEN);
      });
  auto c = connect(daemon);
  auto expect_protocol_error = [](const auto& r, const std::string& what) {
    BOOST_REQUIRE_MESSAGE(!r.ok(), what);
    BOOST_TEST(r.error().code == memos::ErrorCode::protocol_error, what);
    BOOST_TEST(r.error().message.find(what) != std::string::npos, r.error().message);
  };
  expect_protocol_error(c->get("c", 1), "tier 7");
  expect_protocol_error(c->get("c", 2), "state 9");
  auto frozen = c->get("c", 3);
  BOOST_REQUIRE_MESSAGE(frozen.ok(), why(frozen));
  BOOST_TEST(frozen->state == memos::State::frozen);

  expect_protocol_error(c->search("c", "telepathy"), "telepathy");
  auto lexical = c->search("c", "lexical");
  BOOST_REQUIRE_MESSAGE(lexical.ok(), why(lexical));
  BOOST_TEST(lexical->front().ranks.front().retriever == memos::SearchMode::lexical);

  expect_protocol_error(c->plugin_info("quarantined"), "quarantined");
  auto loaded = c->plugin_info_async("loaded").get();
  BOOST_REQUIRE_MESSAGE(loaded.ok(), why(loaded));
  BOOST_TEST(loaded->state == memos::PluginState::loaded);
}

BOOST_AUTO_TEST_CASE(requests_carry_the_vocabularys_names) {
  std::vector<std::string> seen;
  std::mutex mutex;
  FakeDaemon daemon([&](memos::wire::Request::Reader request,
                        memos::wire::Response::Builder response) {
    std::lock_guard lock(mutex);
    if (request.isCubeCreate()) {
      seen.push_back("retriever=" + std::string(request.getCubeCreate().getRetriever()));
      response.initCube().setDefaultRetriever("hybrid");
    } else if (request.isSearch()) {
      auto s = request.getSearch();
      std::string line = "mode=" + std::string(s.getMode());
      for (auto t : s.getTiers()) line += " tier" + std::to_string(static_cast<int>(t));
      for (auto st : s.getStates()) line += " state" + std::to_string(static_cast<int>(st));
      seen.push_back(line);
      response.initHits(0);
    } else if (request.isSetState()) {
      seen.push_back("set " + std::to_string(static_cast<int>(request.getSetState().getState())));
      response.initItem();
    } else {
      seen.push_back("chat mode=" + std::string(request.getChat().getMode()));
      response.initChat().setActivationStatus("none");
    }
  });
  auto c = connect(daemon);
  BOOST_REQUIRE(c->cube_create("a").ok());
  BOOST_REQUIRE(c->cube_create("b", memos::SearchMode::lexical).ok());
  BOOST_REQUIRE(c->search("a", "q").ok());
  memos::SearchOptions o;
  o.mode = memos::SearchMode::hybrid;
  o.tiers = {memos::Tier::parametric};
  o.states = {memos::State::archived, memos::State::frozen};
  BOOST_REQUIRE(c->search("a", "q", o).ok());
  BOOST_REQUIRE(c->set_state("a", 1, memos::State::frozen).ok());
  memos::ChatOptions chat;
  chat.mode = memos::SearchMode::dense;
  BOOST_REQUIRE(c->chat("a", "hi", chat).ok());
  const std::vector<std::string> expected = {"retriever=", "retriever=lexical",
                                             "mode=",      "mode=hybrid tier2 state1 state2",
                                             "set 2",      "chat mode=dense"};
  BOOST_TEST(seen == expected, boost::test_tools::per_element());
}
