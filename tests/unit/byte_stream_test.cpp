// ByteStream in the clear (cluster/byte_stream.h), over a socket pair: the
// engines' clients rely on what it says of a wait that ends without bytes,
// of a peer that closed, of shut() under a waiting reader, and on writes
// far larger than a socket buffer arriving whole. Its TLS side is
// test_engine_tls's, against real servers.
#define BOOST_TEST_MODULE byte_stream
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "cluster/byte_stream.h"

using memos::cluster::ByteStream;
using namespace std::chrono_literals;

namespace {

// A connected pair: `stream` on one end, the raw descriptor `peer` on the
// other.
struct Pair {
  std::unique_ptr<ByteStream> stream;
  int peer = -1;
  Pair() {
    int fds[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    stream = std::make_unique<ByteStream>(fds[0]);
    peer = fds[1];
  }
  ~Pair() {
    if (peer >= 0) ::close(peer);
  }
};

// Reads from `stream` until `want` bytes came or a read fails.
std::string read_exactly(ByteStream& stream, std::size_t want) {
  std::string got;
  char chunk[4096];
  while (got.size() < want) {
    std::size_t n = 0;
    bool timed_out = false;
    if (!stream.read_some(chunk, sizeof chunk, 5000ms, &n, &timed_out).ok() || timed_out) break;
    got.append(chunk, n);
  }
  return got;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_wait_without_bytes_times_out_and_reads_nothing) {
  Pair p;
  char buf[16];
  std::size_t got = 99;
  bool timed_out = false;
  BOOST_TEST(p.stream->read_some(buf, sizeof buf, 20ms, &got, &timed_out).ok());
  BOOST_TEST(timed_out);
  BOOST_TEST(got == 0u);
  BOOST_TEST(!p.stream->secure());
}

BOOST_AUTO_TEST_CASE(bytes_written_either_way_arrive_whole) {
  Pair p;
  BOOST_REQUIRE(::write(p.peer, "PING\r\n", 6) == 6);
  BOOST_TEST(read_exactly(*p.stream, 6) == "PING\r\n");
  // Larger than the socket's buffer: write_all waits for room while the
  // other end reads.
  const std::string big(8u << 20, 'x');
  std::string received;
  std::thread reader([&] {
    char chunk[65536];
    while (received.size() < big.size()) {
      const ssize_t n = ::read(p.peer, chunk, sizeof chunk);
      if (n <= 0) break;
      received.append(chunk, static_cast<std::size_t>(n));
    }
  });
  BOOST_TEST(p.stream->write_all(big).ok());
  reader.join();
  BOOST_TEST((received == big));
}

BOOST_AUTO_TEST_CASE(a_peer_that_closed_is_unavailable_after_its_last_bytes) {
  Pair p;
  BOOST_REQUIRE(::write(p.peer, "last", 4) == 4);
  ::close(p.peer);
  p.peer = -1;
  BOOST_TEST(read_exactly(*p.stream, 4) == "last");
  char buf[16];
  std::size_t got = 0;
  bool timed_out = false;
  auto s = p.stream->read_some(buf, sizeof buf, 1000ms, &got, &timed_out);
  BOOST_TEST((s.code == memos::store::Errc::unavailable));
  BOOST_TEST(s.message == "the server closed the connection");
  BOOST_TEST(!p.stream->write_all("more").ok());
}

BOOST_AUTO_TEST_CASE(shut_ends_a_waiting_read_and_later_writes) {
  Pair p;
  memos::store::Status read_status;
  std::size_t got = 0;
  bool timed_out = false;
  std::thread reader([&] {
    char buf[16];
    // Far longer than the test: only shut() ends it.
    read_status = p.stream->read_some(buf, sizeof buf, 60000ms, &got, &timed_out);
  });
  // Waiting in poll() or not yet: either way the read ends with an error.
  std::this_thread::sleep_for(50ms);
  p.stream->shut();
  reader.join();
  BOOST_TEST(!read_status.ok());
  BOOST_TEST(!timed_out);
  BOOST_TEST(!p.stream->write_all("after").ok());
}
