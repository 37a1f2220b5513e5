// fuzz_archive_reader — archive bytes (as `memctl cube import` sends them)
// through store::ArchiveReader, in pieces of the sizes the input's first
// byte picks.
//
// Checked: the reader gives the same outcome in pieces as whole; an
// archive it completes was handed over in order (one manifest, then
// versions, then snapshots) and every item it handed over encodes and
// decodes back to itself (record_codec.h), as the import will store it;
// blob pieces stay within their blob and come the same in pieces as whole.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/archive.h"
#include "memcube/record_codec.h"
#include "tests/fuzz/fuzz_seeds.h"
#include "tests/fuzz/request_seeds.h"

namespace {

using namespace memos::store;

constexpr std::size_t kMaxFrame = 1u << 20;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_archive_reader: %s\n", what);
    std::abort();
  }
}

struct Outcome {
  Errc code = Errc::ok;
  bool complete = false;
  int manifests = 0;
  std::vector<std::string> versions;  // each item as record_codec encodes it
  std::size_t snapshots = 0;
  std::string blobs;  // every blob piece's digest, offset and bytes
};

Outcome read(std::string_view bytes, std::size_t piece) {
  Outcome out;
  ArchiveReader reader(kMaxFrame);
  ArchiveReader::Sink sink;
  sink.manifest = [&](const ArchiveManifest&) {
    check(out.manifests == 0 && out.versions.empty() && out.snapshots == 0,
          "manifest out of order");
    ++out.manifests;
    return Status::success();
  };
  sink.version = [&](Item item) {
    check(out.manifests == 1 && out.snapshots == 0, "version out of order");
    std::string encoded = encode_item(item);
    Item back;
    check(decode_item(encoded, &back).ok(), "an archived item does not decode once encoded");
    check(encode_item(back) == encoded, "an archived item does not survive the codec");
    out.versions.push_back(std::move(encoded));
    return Status::success();
  };
  sink.blob = [&](const BlobPiece& piece) {
    check(out.manifests == 1 && out.snapshots == 0, "blob piece out of order");
    check(piece.offset + piece.bytes.size() <= piece.total, "blob piece past its blob");
    out.blobs.append(piece.digest.begin(), piece.digest.end());
    out.blobs += std::to_string(piece.offset) + ":" + std::string(piece.bytes);
    return Status::success();
  };
  sink.snapshot = [&](Snapshot) {
    check(out.manifests == 1, "snapshot before the manifest");
    ++out.snapshots;
    return Status::success();
  };
  Status s;
  for (std::size_t at = 0; at < bytes.size() && s.ok(); at += piece) {
    s = reader.feed(bytes.substr(at, piece), sink);
  }
  if (s.ok()) s = reader.finish();
  out.code = s.code;
  out.complete = reader.complete();
  if (s.ok()) check(out.complete, "finish() accepted an archive that is not complete");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    std::string archive = memos::fuzz::small_archive();
    emit("small_cube", std::string(1, '\0') + archive);
    emit("small_cube_in_pieces", std::string(1, '\x0b') + archive);
    // An empty cube: header, manifest, trailer.
    ArchiveWriter w;
    std::string empty;
    w.header(&empty);
    ArchiveManifest m;
    m.cube_name = "empty";
    m.embedder = "hash-v1";
    m.dimension = 256;
    w.manifest(m, &empty);
    w.trailer(&empty);
    emit("empty_cube", std::string(1, '\0') + empty);
    emit("cube_with_adapter", std::string(1, '\x05') + memos::fuzz::archive_with_adapter());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = data[0] == 0 ? size : data[0] % 64 + 1;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  Outcome whole = read(bytes, bytes.size() ? bytes.size() : 1);
  Outcome pieces = read(bytes, piece);
  check(whole.code == pieces.code && whole.complete == pieces.complete,
        "pieces and whole end differently");
  check(whole.versions == pieces.versions && whole.snapshots == pieces.snapshots &&
            whole.blobs == pieces.blobs,
        "pieces and whole hand over different contents");
  return 0;
}
