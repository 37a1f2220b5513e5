// Integration tests: a real memosd on a temporary socket and data folder,
// driven through the SDK and raw sockets.
#define BOOST_TEST_MODULE daemon
#include <capnp/message.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <thread>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "memos/client.h"
#include "tests/support/archive_ids.h"
#include "tests/support/child_as.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/printing.h"
#include "tests/support/small_filesystem.h"

using memos::testing::can_mount;
using memos::testing::Daemon;
using memos::testing::MemosdProcess;
using memos::testing::SmallFilesystem;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;

namespace {

// A socket the test drives byte by byte, as a misbehaving client would.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = memos::testing::unix_address(path);
    BOOST_REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~RawConnection() { close(fd_); }
  int fd() const { return fd_; }
  // Sends what it can without blocking; returns bytes sent or -1 on error.
  ssize_t send_some(const void* data, std::size_t size) {
    return ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  bool send_all(const void* data, std::size_t size) {
    return ::send(fd_, data, size, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
  }
  // Reads until the daemon closes the connection; false on timeout.
  bool wait_closed(std::chrono::milliseconds timeout, std::string* received = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      if (received) received->append(buf, static_cast<std::size_t>(n));
    }
    return false;
  }

 private:
  int fd_;
};

std::vector<char> search_frame(std::uint64_t id, const std::string& cube) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<memos::wire::Request>();
  r.setId(id);
  auto s = r.initSearch();
  s.setCube(cube);
  s.setQuery("some query words to embed");
  s.setK(50);
  auto words = memos::ipc::encode_frame(message);
  auto bytes = words.asBytes();
  return std::vector<char>(bytes.begin(), bytes.end());
}

std::vector<std::uint32_t> le(std::initializer_list<std::uint32_t> v) {
  return v;
}

void expect_error(const memos::Result<memos::Item>& r, memos::ErrorCode code) {
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(memos::to_string(r.error().code) == memos::to_string(code), r.error().message);
}

}  // namespace

BOOST_AUTO_TEST_CASE(full_round_trip_through_the_sdk) {
  Daemon d;
  auto c = d.client();
  auto status = c->status();
  BOOST_REQUIRE(status.ok());
  BOOST_TEST(status->tenant_uid == geteuid());
  BOOST_TEST(status->pid == static_cast<std::uint32_t>(d.process->pid()));

  auto cube = c->cube_create("notes");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->embedder == "hash-v1");
  BOOST_TEST(c->cube_create("notes").error().code == memos::ErrorCode::already_exists);

  auto peanuts =
      c->add("notes", {"Maya is allergic to peanuts", {"health", "food"}, {{"src", "chat"}}});
  BOOST_REQUIRE(peanuts.ok());
  BOOST_REQUIRE(c->add("notes", {"Maya swims at Carcavelos on Saturdays", {"hobby"}, {}}).ok());
  BOOST_REQUIRE(c->add("notes", {"The lab budget meeting is on Monday", {"work"}, {}}).ok());

  auto hits = c->search("notes", "what is Maya allergic to", {3, {}});
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 3u);
  BOOST_TEST(hits->front().item.id == peanuts->id);
  BOOST_TEST(hits->front().score > (*hits)[1].score);
  auto filtered = c->search("notes", "Maya", {10, {"hobby"}});
  BOOST_REQUIRE(filtered.ok());
  BOOST_REQUIRE_EQUAL(filtered->size(), 1u);
  BOOST_TEST(filtered->front().item.tags == std::vector<std::string>{"hobby"});

  auto updated =
      c->update("notes", peanuts->id, {"Maya is allergic to peanuts and cashews", {}, {}});
  BOOST_REQUIRE(updated.ok());
  BOOST_TEST(updated->version == 2u);
  BOOST_TEST(updated->tags == (std::vector<std::string>{"health", "food"}));
  auto head = c->get("notes", peanuts->id);
  BOOST_REQUIRE(head.ok());
  BOOST_TEST(head->text == "Maya is allergic to peanuts and cashews");
  BOOST_TEST(head->meta == (std::vector<memos::MetaEntry>{{"src", "chat"}}));
  // The index follows the update: the new words are searchable at once.
  auto cashews = c->search("notes", "cashews", {1, {}});
  BOOST_REQUIRE(cashews.ok());
  BOOST_TEST(cashews->front().item.id == peanuts->id);

  auto removed = c->remove("notes", peanuts->id);
  BOOST_REQUIRE(removed.ok());
  BOOST_TEST(removed->deleted);
  BOOST_TEST(removed->version == 3u);
  expect_error(c->get("notes", peanuts->id), memos::ErrorCode::not_found);
  expect_error(c->remove("notes", peanuts->id), memos::ErrorCode::not_found);
  auto v1 = c->get("notes", peanuts->id, 1);
  BOOST_REQUIRE(v1.ok());
  BOOST_TEST(v1->text == "Maya is allergic to peanuts");
  auto history = c->history("notes", peanuts->id);
  BOOST_REQUIRE(history.ok());
  BOOST_REQUIRE_EQUAL(history->size(), 3u);
  BOOST_TEST(history->back().deleted);
  auto after = c->search("notes", "peanuts cashews allergic", {10, {}});
  BOOST_REQUIRE(after.ok());
  for (const auto& h : after.value()) BOOST_TEST(h.item.id != peanuts->id);

  auto shown = c->cube_show("notes");
  BOOST_REQUIRE(shown.ok());
  BOOST_TEST(shown->live_items == 2u);
  BOOST_TEST(c->cube_remove("notes").error().code == memos::ErrorCode::conflict);
  BOOST_REQUIRE(c->cube_remove("notes", true).ok());
  BOOST_TEST(c->cube_list()->empty());
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(bad_input_gets_clear_errors_and_loses_nothing) {
  Daemon d("[store]\nmax_text_bytes = 1000\nmax_tags = 4\n[search]\nmax_k = 50\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("c").ok());
  auto kept = c->add("c", {"kept", {}, {}});
  BOOST_REQUIRE(kept.ok());
  using memos::ErrorCode;
  expect_error(c->add("c", {std::string(1001, 'x'), {}, {}}), ErrorCode::too_large);
  expect_error(c->add("c", {std::string("\xff\xfe"), {}, {}}), ErrorCode::bad_request);
  expect_error(c->add("c", {"x", {"a", "a"}, {}}), ErrorCode::bad_request);
  expect_error(c->add("c", {"x", {"a", "b", "c", "d", "e"}, {}}), ErrorCode::too_large);
  expect_error(c->add("c", {"x", {}, {{"", "v"}}}), ErrorCode::bad_request);
  expect_error(c->add("missing", {"x", {}, {}}), ErrorCode::not_found);
  expect_error(c->get("c", 12345), ErrorCode::not_found);
  expect_error(c->get("c", kept->id, 7), ErrorCode::not_found);
  expect_error(c->update("c", 0, {"x", {}, {}}), ErrorCode::bad_request);
  BOOST_TEST(c->search("c", "q", {51, {}}).error().code == ErrorCode::too_large);
  BOOST_TEST(c->cube_create("../etc").error().code == ErrorCode::bad_request);
  BOOST_TEST(c->cube_create(std::string(65, 'a')).error().code == ErrorCode::bad_request);
  BOOST_TEST(c->cube_show("nope").error().code == ErrorCode::not_found);
  // Nothing was lost or half-written.
  auto all = c->search("c", "kept", {50, {}});
  BOOST_REQUIRE(all.ok());
  BOOST_REQUIRE_EQUAL(all->size(), 1u);
  BOOST_TEST(c->cube_show("c")->live_items == 1u);
}

BOOST_AUTO_TEST_CASE(a_restart_keeps_everything_even_after_sigkill) {
  Daemon d;
  std::vector<memos::Item> items;
  {
    auto c = d.client();
    BOOST_REQUIRE(c->cube_create("keep").ok());
    std::vector<std::future<memos::Result<memos::Item>>> futures;
    for (int i = 0; i < 300; ++i) {
      futures.push_back(c->add_async("keep", {"memory number " + std::to_string(i), {"t"}, {}}));
    }
    for (auto& f : futures) {
      auto r = f.get();
      BOOST_REQUIRE(r.ok());
      items.push_back(r.value());
    }
    BOOST_REQUIRE(c->update("keep", items[0].id, {"changed", {}, {}}).ok());
  }
  BOOST_TEST(d.process->stop(SIGTERM) == 0);
  BOOST_REQUIRE(d.process->start());
  {
    auto c = d.client();
    BOOST_TEST(c->cube_show("keep")->live_items == 300u);
    for (std::size_t i = 1; i < items.size(); ++i) {
      auto got = c->get("keep", items[i].id);
      BOOST_REQUIRE(got.ok());
      BOOST_TEST(got->text == items[i].text);
    }
    BOOST_TEST(c->history("keep", items[0].id)->size() == 2u);
    auto hits = c->search("keep", "changed", {1, {}});
    BOOST_REQUIRE(hits.ok());
    BOOST_TEST(hits->front().item.id == items[0].id);  // the index was rebuilt
    BOOST_REQUIRE(c->add("keep", {"acknowledged just before the kill", {}, {}}).ok());
  }
  d.process->stop(SIGKILL);
  BOOST_REQUIRE(d.process->start());
  auto c = d.client();
  BOOST_TEST(c->cube_show("keep")->live_items == 301u);
  BOOST_TEST(c->search("keep", "acknowledged just before the kill", {1, {}})->front().item.text ==
             "acknowledged just before the kill");
}

BOOST_AUTO_TEST_CASE(two_clients_pipelining_at_once) {
  Daemon d;
  BOOST_REQUIRE(d.client()->cube_create("shared").ok());
  constexpr int kPerClient = 400;
  std::vector<std::uint64_t> ids[2];
  // Each thread reports what failed ("" for nothing): Boost.Test's
  // assertions are for the main thread only (they are not thread-safe).
  std::string failed[2];
  auto work = [&](int who) {
    auto c = memos::Client::connect(d.process->socket());
    if (!c.ok()) {
      failed[who] = "connect: " + c.error().message;
      return;
    }
    std::vector<std::future<memos::Result<memos::Item>>> adds;
    for (int i = 0; i < kPerClient; ++i) {
      adds.push_back(c.value()->add_async(
          "shared", {"client " + std::to_string(who) + " item " + std::to_string(i), {}, {}}));
    }
    // Reads pipelined behind the writes on the same connection.
    std::vector<std::future<memos::Result<std::vector<memos::Hit>>>> searches;
    for (int i = 0; i < 50; ++i)
      searches.push_back(c.value()->search_async("shared", "item", {5, {}}));
    for (auto& f : adds) {
      auto r = f.get();
      if (!r.ok()) {
        failed[who] = "add: " + r.error().message;
        continue;
      }
      ids[who].push_back(r->id);
    }
    for (auto& f : searches) {
      if (auto r = f.get(); !r.ok()) failed[who] = "search: " + r.error().message;
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  BOOST_REQUIRE_MESSAGE(failed[0].empty() && failed[1].empty(), failed[0] << failed[1]);
  std::set<std::uint64_t> unique(ids[0].begin(), ids[0].end());
  unique.insert(ids[1].begin(), ids[1].end());
  BOOST_TEST(unique.size() == 2u * kPerClient);
  BOOST_TEST(d.client()->cube_show("shared")->live_items == 2u * kPerClient);
}

// Many gets (and a few statuses) in one write: the daemon decodes every
// frame a read brings, serves them (on the loop or a worker) and writes their
// replies in batches; each reply must still carry its own request's id and
// item, a large item's included.
BOOST_AUTO_TEST_CASE(pipelined_gets_in_one_write_are_each_answered_with_their_own_item) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("reads").ok());
  std::vector<std::uint64_t> ids;
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) {
    // One item close to the text limit (1 MiB): served like the others.
    std::string text = i == 7 ? std::string(900 * 1024, 'x') : "item number " + std::to_string(i);
    auto added = c->add("reads", {text, {}, {}});
    BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
    ids.push_back(added->id);
    texts.push_back(text);
  }
  constexpr std::uint64_t kRequests = 300;
  auto item_of = [&](std::uint64_t request) { return (request * 7) % ids.size(); };
  std::vector<char> batch;
  for (std::uint64_t id = 1; id <= kRequests; ++id) {
    capnp::MallocMessageBuilder message;
    auto r = message.initRoot<memos::wire::Request>();
    r.setId(id);
    if (id % 10 == 0) {
      r.setStatus();
    } else if (id % 37 == 0) {
      auto g = r.initGet();  // an item that does not exist
      g.setCube("reads");
      g.setItemId(ids.back() + 1000);
    } else {
      auto g = r.initGet();
      g.setCube("reads");
      g.setItemId(ids[item_of(id)]);
    }
    auto words = memos::ipc::encode_frame(message);
    auto bytes = words.asBytes();
    batch.insert(batch.end(), bytes.begin(), bytes.end());
  }
  RawConnection raw(d.process->socket());
  BOOST_REQUIRE(raw.send_all(batch.data(), batch.size()));

  memos::ipc::FrameDecoder decoder({});
  std::vector<kj::Array<capnp::word>> frames;
  std::vector<char> buf(256 * 1024);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (frames.size() < kRequests && std::chrono::steady_clock::now() < deadline) {
    pollfd p{raw.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(raw.fd(), buf.data(), buf.size(), 0);
    BOOST_REQUIRE_MESSAGE(n > 0, "memosd closed the connection");
    BOOST_REQUIRE(decoder.feed(std::span(reinterpret_cast<const std::byte*>(buf.data()),
                                         static_cast<std::size_t>(n)),
                               frames) == memos::ipc::FrameError::none);
  }
  BOOST_REQUIRE_EQUAL(frames.size(), kRequests);
  std::set<std::uint64_t> answered;
  for (auto& frame : frames) {
    capnp::FlatArrayMessageReader reader(frame, memos::ipc::frame_reader_options(frame.size(), 64));
    auto r = reader.getRoot<memos::wire::Response>();
    const std::uint64_t id = r.getId();
    BOOST_TEST_REQUIRE((id >= 1 && id <= kRequests));
    BOOST_TEST(answered.insert(id).second, "request " << id << " answered twice");
    if (id % 10 == 0) {
      BOOST_TEST(r.isStatus(), "request " << id);
    } else if (id % 37 == 0) {
      BOOST_TEST_REQUIRE(r.isError(), "request " << id);
      BOOST_TEST((r.getError().getCode() == memos::wire::ErrorCode::NOT_FOUND));
    } else {
      BOOST_TEST_REQUIRE(r.isItem(), "request " << id);
      BOOST_TEST(r.getItem().getId() == ids[item_of(id)]);
      BOOST_TEST((std::string(r.getItem().getText().cStr()) == texts[item_of(id)]));
    }
  }
}

BOOST_AUTO_TEST_CASE(garbage_senders_are_disconnected_while_others_keep_working) {
  Daemon d;
  auto good = d.client();
  BOOST_REQUIRE(good->cube_create("c").ok());

  std::mt19937_64 rng(3);
  std::vector<std::vector<char>> attacks;
  auto from_words = [](std::vector<std::uint32_t> words) {
    std::vector<char> out(words.size() * 4);
    std::memcpy(out.data(), words.data(), out.size());
    return out;
  };
  attacks.push_back(from_words(le({0xFFFFFFFFu, 0})));                  // segment count 0xFFFFFFFF
  attacks.push_back(from_words(le({0, 0x80000000u})));                  // one 16 GiB segment
  attacks.push_back(from_words(le({100000, 1, 1})));                    // too many segments
  attacks.push_back(from_words(le({0, 4, 0xDEADBEEF, 0xDEADBEEF,        // a frame whose root
                                   0xDEADBEEF, 0xDEADBEEF, 0xDEADBEEF,  // pointer is junk
                                   0xDEADBEEF, 0xDEADBEEF, 0xDEADBEEF})));
  std::vector<char> random(4096);
  for (auto& ch : random) ch = static_cast<char>(rng());
  attacks.push_back(random);

  for (std::size_t i = 0; i < attacks.size(); ++i) {
    RawConnection raw(d.process->socket());
    BOOST_REQUIRE(raw.send_all(attacks[i].data(), attacks[i].size()));
    std::string reply;
    BOOST_TEST(raw.wait_closed(5s, &reply), "the daemon kept a garbage connection open");
    // A text of its own each time: a second identical add would be a duplicate.
    BOOST_REQUIRE(good->add("c", {"still working " + std::to_string(i), {}, {}}).ok());
  }
  // A truncated frame followed by a hang-up is also handled.
  {
    RawConnection raw(d.process->socket());
    auto frame = search_frame(1, "c");
    BOOST_REQUIRE(raw.send_all(frame.data(), frame.size() / 2));
    shutdown(raw.fd(), SHUT_WR);
    BOOST_TEST(raw.wait_closed(5s));
  }
  BOOST_TEST(good->cube_show("c")->live_items == attacks.size());
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(a_client_that_never_reads_does_not_stall_the_daemon) {
  // max_inflight_per_connection bounds how much of the worker pool one
  // connection can queue ahead of others.
  Daemon d(
      "[ipc]\nreply_buffer_bytes = 4096\nslow_client_timeout_ms = 500\n"
      "max_inflight_per_connection = 32\n");
  auto good = d.client();
  BOOST_REQUIRE(good->cube_create("c").ok());
  for (int i = 0; i < 50; ++i)
    BOOST_REQUIRE(good->add("c", {"item " + std::to_string(i), {}, {}}).ok());

  RawConnection greedy(d.process->socket());
  int buffer = 4096;
  setsockopt(greedy.fd(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  // Pipeline searches (each reply ~ several KiB) without ever reading.
  std::uint64_t sent = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 2s) {
    auto frame = search_frame(++sent, "c");
    if (greedy.send_some(frame.data(), frame.size()) < 0) break;
  }
  // Meanwhile another client is served promptly.
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    BOOST_REQUIRE(good->search("c", "item", {5, {}}).ok());
    // A liveness bound, not a speed test: generous for sanitizer builds.
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 20s));
  }
  // The greedy client is dropped once it has been paused long enough.
  bool dropped = false;
  for (int i = 0; i < 100 && !dropped; ++i) {
    std::this_thread::sleep_for(100ms);
    dropped = d.process->log().find("does not read its replies") != std::string::npos;
  }
  BOOST_TEST(dropped, d.process->log());
  BOOST_TEST(good->status().ok());
}

BOOST_AUTO_TEST_CASE(a_second_memosd_on_the_same_data_folder_refuses_to_start) {
  Daemon d;
  TempDir other;
  std::string out, err;
  int rc = memos::testing::run_command(
      {MEMOS_MEMOSD, "--socket", other.path() + "/s.sock", "--data", d.process->data_dir()}, &out,
      &err);
  BOOST_TEST(rc == 1);
  BOOST_TEST(err.find("is in use by another memosd (pid " + std::to_string(d.process->pid()) +
                      ")") != std::string::npos,
             err);
  // Nor may it take over a socket a live daemon answers on.
  rc = memos::testing::run_command(
      {MEMOS_MEMOSD, "--socket", d.process->socket(), "--data", other.path() + "/data"}, &out,
      &err);
  BOOST_TEST(rc == 1);
  BOOST_TEST(err.find("already listening") != std::string::npos, err);
  BOOST_TEST(d.client()->status().ok());
}

BOOST_AUTO_TEST_CASE(sigterm_finishes_requests_in_flight) {
  Daemon d;
  BOOST_REQUIRE(d.client()->cube_create("c").ok());
  auto c = d.client();
  std::vector<std::future<memos::Result<memos::Item>>> futures;
  for (int i = 0; i < 500; ++i)
    futures.push_back(c->add_async("c", {"in flight " + std::to_string(i), {}, {}}));
  kill(d.process->pid(), SIGTERM);
  std::vector<memos::Item> acknowledged;
  for (auto& f : futures) {
    auto r = f.get();
    if (r.ok()) {
      acknowledged.push_back(r.value());
    } else {
      BOOST_TEST(r.error().retryable, r.error().message);
    }
  }
  BOOST_TEST(d.process->stop() == 0);
  BOOST_REQUIRE(d.process->start());
  auto after = d.client();
  for (const auto& item : acknowledged) BOOST_TEST(after->get("c", item.id).ok());
  BOOST_TEST_MESSAGE(acknowledged.size() << " of 500 acknowledged before the stop");
}

// Connects as another uid: needs root.
BOOST_AUTO_TEST_CASE(tenants_see_only_their_own_cubes,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  Daemon d;
  chmod(d.folder.c_str(), 0755);
  auto root = d.client();
  BOOST_REQUIRE(root->cube_create("private").ok());
  BOOST_REQUIRE(root->add("private", {"root's secret", {}, {}}).ok());

  // As uid 65534: the same names resolve to nothing of root's.
  std::string seen = memos::testing::as_uid(65534, [&]() -> std::string {
    auto c = memos::Client::connect(d.process->socket());
    if (!c.ok()) return "connect: " + c.error().message;
    auto& client = *c.value();
    if (client.status()->tenant_uid != 65534) return "status: another tenant";
    if (!client.cube_list()->empty()) return "cube ls lists root's cube";
    if (client.cube_show("private").ok()) return "cube show finds root's cube";
    if (client.search("private", "secret").ok()) return "search reaches root's cube";
    if (!client.cube_create("private").ok()) return "cannot make a cube of the same name";
    if (!client.search("private", "secret")->empty()) return "its own cube finds root's item";
    return "";
  });
  BOOST_TEST(seen == "");
  BOOST_TEST(root->cube_list()->size() == 1u);
  BOOST_TEST(root->cube_show("private")->live_items == 1u);
}

BOOST_AUTO_TEST_CASE(expired_items_leave_search_and_provenance_is_recorded) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("t").ok());
  memos::NewItem brief{"a short-lived reminder about the dentist", {"tmp"}};
  brief.ttl_ms = 1;
  brief.session_id = "s-1";
  auto a = c->add("t", brief);
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->expires_at_ms > 0);
  BOOST_TEST(a->writer_uid == geteuid());
  BOOST_TEST(a->session_id == "s-1");
  memos::NewItem lasting{"a lasting note about the dentist", {}};
  lasting.sources = {a->id};
  auto b = c->add("t", lasting);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->sources == std::vector<std::uint64_t>{a->id});
  std::this_thread::sleep_for(5ms);
  auto hits = c->search("t", "dentist reminder", {10});
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 1u);
  BOOST_TEST(hits->front().item.id == b->id);
  BOOST_TEST(c->get("t", a->id).ok());  // still stored until retention purges it
  memos::NewItem bad{"x", {}};
  bad.importance = 2;
  expect_error(c->add("t", bad), memos::ErrorCode::bad_request);
  bad.importance = 0;
  bad.ttl_ms = -5;
  expect_error(c->add("t", bad), memos::ErrorCode::bad_request);
}

BOOST_AUTO_TEST_CASE(a_retry_with_an_idempotency_key_does_not_duplicate) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("k").ok());
  memos::NewItem item{"written once, however often it is sent", {"x"}};
  item.idempotency_key = "add-42";
  auto first = c->add("k", item);
  BOOST_REQUIRE(first.ok());
  // The reply was "lost": the client retries, even across a restart.
  BOOST_TEST(d.process->stop() == 0);
  BOOST_REQUIRE(d.process->start());
  c = d.client();
  auto again = c->add("k", item);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->id == first->id);
  BOOST_TEST(again->version == first->version);
  BOOST_TEST(c->cube_show("k")->live_items == 1u);
  // Pipelined duplicates in one group commit also collapse to one write.
  std::vector<std::future<memos::Result<memos::Item>>> burst;
  memos::NewItem other{"another", {}};
  other.idempotency_key = "add-43";
  for (int i = 0; i < 20; ++i) burst.push_back(c->add_async("k", other));
  std::set<std::uint64_t> ids;
  for (auto& f : burst) {
    auto r = f.get();
    BOOST_REQUIRE(r.ok());
    ids.insert(r->id);
  }
  BOOST_TEST(ids.size() == 1u);
  BOOST_TEST(c->cube_show("k")->live_items == 2u);
  // A replayed update returns the version it first wrote, even after more changes.
  memos::ItemChange change{"changed once", std::nullopt, std::nullopt};
  change.idempotency_key = "upd-1";
  auto v2 = c->update("k", first->id, change);
  BOOST_REQUIRE(v2.ok());
  BOOST_REQUIRE(c->update("k", first->id, {"changed again"}).ok());
  auto replay = c->update("k", first->id, change);
  BOOST_REQUIRE(replay.ok());
  BOOST_TEST(replay->version == v2->version);
  BOOST_TEST(c->get("k", first->id)->text == "changed again");  // nothing rewritten
  // A retried remove answers with its tombstone, not "already deleted".
  auto gone = c->add("k", {"to be removed"});
  BOOST_REQUIRE(gone.ok());
  auto removed = c->remove("k", gone->id, "rm-1");
  BOOST_REQUIRE(removed.ok());
  auto removed_again = c->remove("k", gone->id, "rm-1");
  BOOST_REQUIRE_MESSAGE(removed_again.ok(),
                        (removed_again.ok() ? "" : removed_again.error().message));
  BOOST_TEST(removed_again->version == removed->version);
  BOOST_TEST(removed_again->deleted);
  // The same key for a different write is refused; an oversized key too.
  auto misuse = c->remove("k", first->id, "upd-1");
  BOOST_REQUIRE(!misuse.ok());
  BOOST_TEST(misuse.error().code == memos::ErrorCode::conflict);
  memos::NewItem big{"x", {}};
  big.idempotency_key = std::string(129, 'k');
  expect_error(c->add("k", big), memos::ErrorCode::too_large);
}

BOOST_AUTO_TEST_CASE(a_full_store_is_a_retryable_error_and_writes_resume_when_space_returns) {
  Daemon d("[store]\nmap_size_mb = 1\nmax_map_size_mb = 2\nmax_text_bytes = 65536\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("big").ok());
  BOOST_REQUIRE(c->cube_create("small").ok());
  std::string filler(16000, 'f');
  memos::Result<memos::Item> last = c->add("big", {filler});
  int added = 0;
  while (last.ok() && added < 1000) {
    ++added;
    last = c->add("big", {filler + std::to_string(added)});
  }
  BOOST_REQUIRE(!last.ok());
  BOOST_TEST(last.error().code == memos::ErrorCode::storage_full, last.error().message);
  BOOST_TEST(last.error().retryable);
  // The 1 MiB map grew to 2 MiB first: 1 MiB holds at most 32 of these
  // adds (each writes its 16 kB text twice, head and version), 2 MiB about
  // 60, less the pages of the tables that grow with them.
  BOOST_TEST(added > 48);
  BOOST_TEST(d.process->log().find("map grown to 2 MiB") != std::string::npos, d.process->log());
  // The daemon stays up and reads still work.
  BOOST_TEST(c->cube_show("big")->live_items == static_cast<std::uint64_t>(added));
  BOOST_REQUIRE(c->search("big", "f", {1}).ok());
  // Free space, and writes resume.
  auto freed = c->cube_remove("big", true);
  BOOST_REQUIRE_MESSAGE(freed.ok(), (freed.ok() ? "" : freed.error().message));
  BOOST_TEST(c->add("small", {"fits again"}).ok());
}

BOOST_AUTO_TEST_CASE(retention_expires_items_in_the_background) {
  Daemon d("[store]\nretention_interval_ms = 100\ntombstone_retention_s = 0\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("ttl").ok());
  memos::NewItem brief{"gone soon"};
  brief.ttl_ms = 50;
  auto a = c->add("ttl", brief);
  BOOST_REQUIRE(a.ok());
  BOOST_REQUIRE(c->add("ttl", {"stays"}).ok());
  bool purged = false;
  for (int i = 0; i < 100 && !purged; ++i) {
    std::this_thread::sleep_for(50ms);
    auto h = c->history("ttl", a->id);
    purged = !h.ok() && h.error().code == memos::ErrorCode::not_found;
  }
  BOOST_TEST(purged, "the expired item was not purged");
  BOOST_TEST(c->cube_show("ttl")->live_items == 1u);
  BOOST_TEST(c->search("ttl", "gone soon stays", {10})->size() == 1u);
}

namespace {

// Every version of every item, with the fields an archive must carry exactly
// (an import gives the items fresh ids: `ids` are the cube's own).
std::string cube_contents(memos::Client& c, const std::string& cube,
                          const std::vector<std::uint64_t>& ids) {
  std::ostringstream out;
  for (auto id : ids) {
    auto h = c.history(cube, id);
    BOOST_REQUIRE(h.ok());
    for (const auto& v : h.value()) {
      out << v.version << ' ' << memos::to_string(v.state) << ' ' << v.text << ' ' << v.tags.size()
          << ' ' << v.meta.size() << ' ' << v.created_at_ms << ' ' << v.recorded_at_ms << ' '
          << v.valid_from_ms << ' ' << v.valid_to_ms << ' ' << v.expires_at_ms << ' '
          << v.importance << ' ' << v.writer_uid << ' ' << v.session_id << ' ' << v.sources.size()
          << ' ' << v.cube_version << '\n';
    }
  }
  auto snaps = c.snapshot_list(cube);
  BOOST_REQUIRE(snaps.ok());
  for (const auto& s : snaps.value())
    out << s.tag << ' ' << s.cube_version << ' ' << s.live_items << '\n';
  return out.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(export_then_import_is_exact_and_bad_archives_leave_nothing) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("src").ok());
  std::vector<std::uint64_t> ids;
  std::string big(8000, 'b');
  for (int i = 0; i < 300; ++i) {  // ~2.4 MB: several export chunks
    memos::NewItem item{"memory " + std::to_string(i) + " " + big, {"t" + std::to_string(i % 3)}};
    item.meta = {{"n", std::to_string(i)}};
    item.session_id = "s";
    auto r = c->add("src", item);
    BOOST_REQUIRE(r.ok());
    ids.push_back(r->id);
  }
  BOOST_REQUIRE(c->snapshot_create("src", "early").ok());
  BOOST_REQUIRE(c->update("src", ids[0], {"changed"}).ok());
  BOOST_REQUIRE(c->remove("src", ids[1]).ok());
  BOOST_REQUIRE(c->set_state("src", ids[2], memos::State::archived).ok());
  memos::NewItem later{"a later fact"};
  later.valid_from_ms = 4'000'000'000'000;
  later.supersedes = ids[3];
  auto sup = c->add("src", later);
  BOOST_REQUIRE(sup.ok());
  ids.push_back(sup->id);
  BOOST_REQUIRE(c->snapshot_create("src", "late").ok());

  std::string archive;
  auto exported = c->export_cube("src", [&](std::string_view bytes) {
    archive.append(bytes);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(exported.ok(), (exported.ok() ? "" : exported.error().message));
  BOOST_TEST(*exported == archive.size());
  auto reader = [](const std::string& bytes) {
    auto at = std::make_shared<std::size_t>(0);
    return [&bytes, at](char* buf, std::size_t n) {
      std::size_t take = std::min(n, bytes.size() - *at);
      std::memcpy(buf, bytes.data() + *at, take);
      *at += take;
      return take;
    };
  };
  auto imported = c->import_cube(reader(archive), "copy");
  BOOST_REQUIRE_MESSAGE(imported.ok(), (imported.ok() ? "" : imported.error().message));
  auto src = c->cube_show("src"), copy = c->cube_show("copy");
  BOOST_TEST(copy->live_items == src->live_items);
  BOOST_TEST(copy->head_version == src->head_version);
  // Fresh ids, in the same order.
  std::vector<std::uint64_t> copy_ids = memos::testing::item_ids(*c, "copy");
  BOOST_REQUIRE(copy_ids.size() == ids.size());
  BOOST_TEST(copy_ids.front() > ids.back());
  BOOST_TEST(cube_contents(*c, "copy", copy_ids) == cube_contents(*c, "src", ids));
  BOOST_TEST(c->snapshot_diff("copy", "early", "late")->size() ==
             c->snapshot_diff("src", "early", "late")->size());
  auto hits = c->search("copy", "memory 42", {1});
  BOOST_REQUIRE(hits.ok());
  BOOST_TEST(hits->front().item.id == copy_ids[42]);  // indexed on import

  // Truncated, corrupted, or named like an existing cube: refused, and no
  // cube (not even a staging one) is left behind.
  auto cubes_before = c->cube_list()->size();
  for (std::size_t cut :
       {std::size_t{0}, std::size_t{10}, archive.size() / 2, archive.size() - 1}) {
    std::string truncated = archive.substr(0, cut);
    auto r = c->import_cube(reader(truncated), "broken");
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code == memos::ErrorCode::bad_request, r.error().message);
  }
  std::string flipped = archive;
  flipped[archive.size() / 3] ^= 0x10;
  auto r = c->import_cube(reader(flipped), "broken");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == memos::ErrorCode::bad_request, r.error().message);
  r = c->import_cube(reader(archive), "src");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == memos::ErrorCode::already_exists);
  r = c->import_cube(reader(archive));  // the archive's own name, "src", is taken
  BOOST_TEST(!r.ok());
  for (int i = 0; i < 100 && c->cube_list()->size() != cubes_before; ++i) {
    std::this_thread::sleep_for(10ms);  // abandoned staging cubes go in a later commit
  }
  BOOST_TEST(c->cube_list()->size() == cubes_before);
}

BOOST_AUTO_TEST_CASE(an_import_cut_short_by_a_crash_is_removed_at_start) {
  Daemon d;
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("src").ok());
  for (int i = 0; i < 50; ++i) BOOST_REQUIRE(c->add("src", {"item " + std::to_string(i)}).ok());
  std::string archive;
  BOOST_REQUIRE(c->export_cube("src", [&](std::string_view b) {
                   archive.append(b);
                   return true;
                 }).ok());
  // Send half the archive, then kill the daemon mid-import.
  std::size_t sent = 0;
  bool killed = false;
  auto half = archive.substr(0, archive.size() / 2);
  std::thread importer([&] {
    auto r = c->import_cube([&](char* buf, std::size_t n) -> std::size_t {
      if (sent >= half.size()) {
        if (!killed) {
          d.process->stop(SIGKILL);
          killed = true;
        }
        return 0;
      }
      std::size_t take = std::min(n, half.size() - sent);
      std::memcpy(buf, half.data() + sent, take);
      sent += take;
      return take;
    });
    BOOST_TEST(!r.ok());
  });
  importer.join();
  BOOST_REQUIRE(d.process->start());
  BOOST_TEST(
      d.process->log().find("removed 1 import(s) left unfinished by a crash") != std::string::npos,
      d.process->log());
  auto after = d.client();
  BOOST_TEST(after->cube_list()->size() == 1u);
}

namespace {}  // namespace

BOOST_AUTO_TEST_CASE(a_full_disk_is_a_retryable_error_and_writes_resume_when_space_returns,
                     *boost::unit_test::label("mount") *
                         boost::unit_test::precondition(can_mount)) {
  TempDir dir;
  SmallFilesystem fs(dir.path() + "/small", "4m");
  BOOST_REQUIRE_MESSAGE(fs.mounted(), "mounting a tmpfs worked for the precondition, not now");
  // Ballast to delete later, so space can come back.
  std::string ballast = dir.path() + "/small/ballast";
  std::ofstream(ballast) << std::string(1 << 20, 'b');
  // The default map (1 GiB) is far larger than the disk: the disk fills first.
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), dir.path() + "/memosd.sock",
                       dir.path() + "/small/data");
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  auto connected = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  BOOST_REQUIRE(c.cube_create("disk").ok());
  std::string filler(16000, 'd');
  memos::Result<memos::Item> last = c.add("disk", {filler});
  int added = 0;
  while (last.ok() && added < 2000) {
    ++added;
    last = c.add("disk", {filler + std::to_string(added)});
  }
  BOOST_REQUIRE(!last.ok());
  BOOST_TEST(last.error().code == memos::ErrorCode::storage_full, last.error().message
                                                                      << "\n"
                                                                      << daemon.log());
  BOOST_TEST(last.error().retryable);
  // Still up, still readable, and nothing acknowledged is lost.
  BOOST_TEST(c.cube_show("disk")->live_items == static_cast<std::uint64_t>(added));
  BOOST_TEST(c.status().ok());
  std::filesystem::remove(ballast);
  memos::Result<memos::Item> again = c.add("disk", {"after space returned"});
  BOOST_TEST(again.ok(), (again.ok() ? "" : again.error().message));
  BOOST_TEST(daemon.stop() == 0);
  BOOST_REQUIRE(daemon.start());
  auto reconnected = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE(reconnected.ok());
  BOOST_TEST(reconnected.value()->cube_show("disk")->live_items ==
             static_cast<std::uint64_t>(added + 1));
  BOOST_TEST(daemon.stop() == 0);
}

// A restart on a full disk once exited: the lexical index rebuild could
// not create its database, so reads were down until space was freed. Now
// memosd starts, serves reads, refuses the cube's search as unavailable
// (retryable), and builds the indexes once space returns.
BOOST_AUTO_TEST_CASE(a_restart_on_a_full_disk_serves_reads_and_indexes_when_space_returns,
                     *boost::unit_test::label("mount") *
                         boost::unit_test::precondition(can_mount)) {
  TempDir dir;
  SmallFilesystem fs(dir.path() + "/small", "8m");
  BOOST_REQUIRE_MESSAGE(fs.mounted(), "mounting a tmpfs worked for the precondition, not now");
  const std::string data = dir.path() + "/small/data";
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), dir.path() + "/memosd.sock", data);
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  std::uint64_t id = 0;
  {
    auto c = memos::Client::connect(daemon.socket());
    BOOST_REQUIRE(c.ok());
    BOOST_REQUIRE(c.value()->cube_create("kept").ok());
    for (int i = 0; i < 50; ++i) {
      auto added = c.value()->add("kept", {"a kept memory number " + std::to_string(i)});
      BOOST_REQUIRE(added.ok());
      id = added->id;
    }
  }
  BOOST_TEST(daemon.stop() == 0);
  // The indexes must be rebuilt at the next start, and the disk is full.
  std::filesystem::remove_all(data + "/index");
  const std::string ballast = dir.path() + "/small/ballast";
  {
    std::ofstream fill(ballast, std::ios::binary);
    const std::string block(64 * 1024, 'b');
    while (fill.write(block.data(), static_cast<std::streamsize>(block.size())) && fill.flush()) {
    }
  }
  BOOST_REQUIRE_MESSAGE(daemon.start(), "memosd did not start on a full disk:\n" + daemon.log());
  auto connected = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE(connected.ok());
  auto& c = *connected.value();
  auto got = c.get("kept", id);
  BOOST_TEST(got.ok(), why(got));
  BOOST_TEST(c.cube_show("kept")->live_items == 50u);
  auto refused = c.search("kept", "kept memory");
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.error().code == memos::ErrorCode::unavailable), why(refused));
  BOOST_TEST(refused.error().retryable);
  BOOST_TEST(c.cube_show("kept")->indexes.find("unbuilt") != std::string::npos);

  std::filesystem::remove(ballast);
  // memosd retries every few seconds; allow it a minute on a loaded machine.
  memos::Result<std::vector<memos::Hit>> found = refused;
  for (int i = 0; i < 600 && !found.ok(); ++i) {
    std::this_thread::sleep_for(100ms);
    found = c.search("kept", "kept memory", {50});
  }
  BOOST_REQUIRE_MESSAGE(found.ok(), why(found) << "\n" << daemon.log());
  BOOST_TEST(found->size() == 50u);
  BOOST_TEST(daemon.stop() == 0);
}

BOOST_AUTO_TEST_CASE(reads_are_counted_in_batches) {
  Daemon d("[store]\nretention_interval_ms = 100\n");
  auto c = d.client();
  BOOST_REQUIRE(c->cube_create("a").ok());
  auto item = c->add("a", {"a memory that gets read"});
  BOOST_REQUIRE(item.ok());
  BOOST_TEST(item->hits == 0u);
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(c->get("a", item->id).ok());
  BOOST_REQUIRE(c->search("a", "memory read", {1})->size() == 1u);
  std::uint64_t hits = 0;
  for (int i = 0; i < 100 && hits < 4; ++i) {
    std::this_thread::sleep_for(20ms);
    hits = c->search("a", "memory", {1})->front().item.hits;
  }
  BOOST_TEST(hits >= 4u);  // three gets and a search hit, then these searches
  auto got = c->get("a", item->id);
  BOOST_TEST(got->last_access_ms > 0);
  // Statistics survive a restart; counts still in memory at a crash may not.
  BOOST_TEST(d.process->stop() == 0);
  BOOST_REQUIRE(d.process->start());
  BOOST_TEST(d.client()->get("a", item->id)->hits >= 4u);
}
