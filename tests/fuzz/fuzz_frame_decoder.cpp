// fuzz_frame_decoder — a client's byte stream through ipc::FrameDecoder, in
// pieces of the sizes the input's first byte picks, and each complete frame
// read as a Request with the limits a connection uses.
//
// Checked: no frame passes the limits; a stream that decodes without error
// is cut into frames that are exactly its bytes, in order (nothing lost,
// nothing invented); feeding it in pieces gives the frames feeding it whole
// gives; reading a frame never does more than throw a kj::Exception.
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "tests/fuzz/fuzz_seeds.h"
#include "tests/fuzz/request_seeds.h"

namespace {

using memos::ipc::FrameDecoder;
using memos::ipc::FrameError;

// Small limits, so the fuzzer reaches them.
constexpr memos::ipc::FrameLimits kLimits{1u << 16, 64};

struct Decoded {
  std::vector<kj::Array<capnp::word>> frames;
  FrameError error = FrameError::none;
  bool mid_frame = false;
};

Decoded decode(std::span<const std::byte> bytes, std::size_t piece) {
  Decoded out;
  FrameDecoder decoder(kLimits);
  for (std::size_t at = 0; at < bytes.size() && out.error == FrameError::none; at += piece) {
    out.error = decoder.feed(bytes.subspan(at, std::min(piece, bytes.size() - at)), out.frames);
  }
  out.mid_frame = decoder.mid_frame();
  return out;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_frame_decoder: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    // A byte for the piece size, then a session's frames.
    for (const auto& [name, bytes] : memos::fuzz::request_sessions()) {
      emit(name, std::string(1, '\0') + bytes);
      emit(name + "_in_pieces", std::string(1, '\x06') + bytes);
    }
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = data[0] == 0 ? size : data[0] % 32 + 1;
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  Decoded whole = decode(bytes, bytes.size() ? bytes.size() : 1);
  Decoded pieces = decode(bytes, piece);

  // Frames completed before an error are kept either way; pieces may stop at
  // the same error only.
  check(whole.error == pieces.error, "pieces and whole end differently");
  check(whole.frames.size() == pieces.frames.size(), "pieces and whole give other frames");
  std::size_t total = 0;
  for (std::size_t i = 0; i < whole.frames.size(); ++i) {
    auto a = whole.frames[i].asBytes();
    auto b = pieces.frames[i].asBytes();
    check(a.size() == b.size() && std::memcmp(a.begin(), b.begin(), a.size()) == 0,
          "pieces and whole give other frames");
    check(a.size() <= kLimits.max_message_bytes, "a frame passed max_message_bytes");
    check(std::memcmp(a.begin(), bytes.data() + total, a.size()) == 0,
          "a frame is not the stream's bytes");
    total += a.size();
  }
  if (whole.error == FrameError::none) {
    check(whole.mid_frame == (total != bytes.size()), "mid_frame disagrees with what is left");
  }
  for (auto& frame : whole.frames) {
    kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(frame,
                                           memos::ipc::frame_reader_options(frame.size(), 64));
      auto request = reader.getRoot<memos::wire::Request>();
      (void)request.totalSize();  // every pointer followed, within the limits
    });
  }
  return 0;
}
