#define BOOST_TEST_MODULE frame_decoder
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"

using memos::ipc::FrameDecoder;
using memos::ipc::FrameError;
using memos::ipc::FrameLimits;
using Frames = std::vector<kj::Array<capnp::word>>;

namespace memos::ipc {
std::ostream& operator<<(std::ostream& out, FrameError e) {
  return out << describe(e);
}
}  // namespace memos::ipc

namespace {

std::vector<std::byte> request_bytes(std::uint64_t id, const std::string& text) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<memos::wire::Request>();
  r.setId(id);
  auto add = r.initAdd();
  add.setCube("c");
  add.setText(text);
  auto words = memos::ipc::encode_frame(message);
  auto bytes = words.asBytes();
  std::vector<std::byte> out(bytes.size());
  std::memcpy(out.data(), bytes.begin(), bytes.size());
  return out;
}

std::uint64_t id_of(const kj::Array<capnp::word>& frame) {
  capnp::FlatArrayMessageReader reader(frame);
  return reader.getRoot<memos::wire::Request>().getId();
}

std::vector<std::byte> header(std::initializer_list<std::uint32_t> words) {
  std::vector<std::byte> out;
  for (std::uint32_t w : words) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((w >> (8 * i)) & 0xff));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(decodes_frames_split_at_every_byte) {
  auto bytes = request_bytes(7, "hello world");
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    FrameDecoder decoder(FrameLimits{});
    Frames frames;
    BOOST_TEST(decoder.feed(std::span(bytes).first(split), frames) == FrameError::none);
    BOOST_TEST(frames.empty() == (split < bytes.size()));
    BOOST_TEST(decoder.feed(std::span(bytes).subspan(split), frames) == FrameError::none);
    BOOST_REQUIRE_EQUAL(frames.size(), 1u);
    BOOST_TEST(id_of(frames[0]) == 7u);
    BOOST_TEST(!decoder.mid_frame());
  }
}

BOOST_AUTO_TEST_CASE(decodes_many_frames_in_one_chunk_byte_by_byte_too) {
  std::vector<std::byte> stream;
  for (std::uint64_t id = 1; id <= 50; ++id) {
    auto b = request_bytes(id, std::string(id * 3, 'x'));
    stream.insert(stream.end(), b.begin(), b.end());
  }
  FrameDecoder whole(FrameLimits{});
  Frames frames;
  BOOST_TEST(whole.feed(stream, frames) == FrameError::none);
  BOOST_REQUIRE_EQUAL(frames.size(), 50u);
  for (std::uint64_t i = 0; i < 50; ++i) BOOST_TEST(id_of(frames[i]) == i + 1);

  FrameDecoder trickle(FrameLimits{});
  Frames slow;
  for (std::byte b : stream) BOOST_TEST(trickle.feed(std::span(&b, 1), slow) == FrameError::none);
  BOOST_TEST(slow.size() == 50u);
}

BOOST_AUTO_TEST_CASE(refuses_segment_count_of_0xffffffff) {
  FrameDecoder decoder(FrameLimits{});
  Frames frames;
  auto h = header({0xFFFFFFFFu, 0});
  BOOST_TEST(decoder.feed(h, frames) == FrameError::bad_segment_count);
  BOOST_TEST(frames.empty());
  // A spent decoder keeps refusing.
  auto good = request_bytes(1, "x");
  BOOST_TEST(decoder.feed(good, frames) == FrameError::bad_segment_count);
}

BOOST_AUTO_TEST_CASE(refuses_too_many_segments_before_reading_sizes) {
  FrameDecoder decoder(FrameLimits{16u << 20, 512});
  Frames frames;
  auto h = header({512});  // 513 segments
  BOOST_TEST(decoder.feed(h, frames) == FrameError::too_many_segments);
}

BOOST_AUTO_TEST_CASE(refuses_a_header_claiming_16_gib_without_allocating) {
  FrameDecoder decoder(FrameLimits{16u << 20, 512});
  Frames frames;
  // One segment of 2^31 words = 16 GiB; then two segments summing past 4 GiB
  // words, which would overflow 32-bit arithmetic.
  auto h = header({0, 0x80000000u});
  BOOST_TEST(decoder.feed(h, frames) == FrameError::too_large);
  BOOST_TEST(decoder.pending_frame_bytes() == 0u);

  FrameDecoder decoder2(FrameLimits{16u << 20, 512});
  auto h2 = header({1, 0xFFFFFFFFu, 0xFFFFFFFFu, 0});
  BOOST_TEST(decoder2.feed(h2, frames) == FrameError::too_large);
}

BOOST_AUTO_TEST_CASE(limit_is_inclusive_of_the_header) {
  // A frame of exactly the limit passes; one word more is refused.
  FrameLimits limits{8 + 8 * 100, 4};
  FrameDecoder ok(limits);
  Frames frames;
  auto h = header({0, 100});
  BOOST_TEST(ok.feed(h, frames) == FrameError::none);
  BOOST_TEST(ok.pending_frame_bytes() == 808u);
  FrameDecoder over(limits);
  auto h2 = header({0, 101});
  BOOST_TEST(over.feed(h2, frames) == FrameError::too_large);
}

BOOST_AUTO_TEST_CASE(truncated_frames_are_reported_as_mid_frame) {
  auto bytes = request_bytes(3, "truncated");
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    FrameDecoder decoder(FrameLimits{});
    Frames frames;
    BOOST_TEST(decoder.feed(std::span(bytes).first(cut), frames) == FrameError::none);
    BOOST_TEST(frames.empty());
    BOOST_TEST(decoder.mid_frame());
  }
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_or_overallocate) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> junk(rng() % 512);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    FrameDecoder decoder(FrameLimits{1 << 20, 64});
    Frames frames;
    decoder.feed(junk, frames);
    BOOST_TEST(decoder.pending_frame_bytes() <= std::size_t{1} << 20);
    // Whatever framed correctly must still be refused or read safely by the
    // reader with limits; it must never crash.
    for (auto& f : frames) {
      kj::runCatchingExceptions([&] {
        capnp::FlatArrayMessageReader reader(f, memos::ipc::frame_reader_options(f.size(), 64));
        auto r = reader.getRoot<memos::wire::Request>();
        (void)r.getId();
        if (r.isAdd()) (void)r.getAdd().getText().size();
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_segments_header_only_frame_completes) {
  FrameDecoder decoder(FrameLimits{});
  Frames frames;
  auto h = header({0, 0});  // one empty segment
  BOOST_TEST(decoder.feed(h, frames) == FrameError::none);
  BOOST_TEST(frames.size() == 1u);
  BOOST_TEST(!decoder.mid_frame());
}
