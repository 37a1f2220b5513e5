// fuzz_record_codec — a stored LMDB value through the record decoders
// (memcube/record_codec.h); the input's first byte picks the record kind.
//
// Checked: a value decodes or is refused as corrupt, nothing else; what
// decodes encodes to a value that decodes to the same encoding again (the
// codec is stable, so a read-modify-write never drifts).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "memcube/record_codec.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

using namespace memos::store;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_record_codec: %s\n", what);
    std::abort();
  }
}

template <class T>
void round_trip(std::string_view bytes, Status (*decode)(std::string_view, T*),
                std::string (*encode)(const T&)) {
  T value;
  Status s = decode(bytes, &value);
  if (!s.ok()) {
    check(s.code == Errc::corrupt, "a bad record is refused with another code than corrupt");
    return;
  }
  std::string once = encode(value);
  T again;
  check(decode(once, &again).ok(), "a decoded record does not decode once encoded");
  check(encode(again) == once, "a record changes through the codec");
}

enum Kind : std::uint8_t { kItem, kCube, kSnapshot, kIdempotency, kActivation, kKinds };

Item sample_item() {
  Item item;
  item.id = (std::uint64_t{1700000000000} << 16) | 7;
  item.version = 2;
  item.text = "the cat sat on the mat";
  item.tags = {"pets", "home"};
  item.meta = {{"source", "chat"}, {"lang", "en"}};
  item.importance = 0.75f;
  item.expires_at_ms = 1800000000000;
  item.valid_from_ms = 1690000000000;
  item.created_at_ms = 1700000000000;
  item.recorded_at_ms = 1700000001000;
  item.provenance = {1000, "session-1", {42, 43}};
  item.cube_version = 9;
  return item;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    auto seed = [&](const char* name, Kind kind, const std::string& value) {
      emit(name, std::string(1, static_cast<char>(kind)) + value);
    };
    Item item = sample_item();
    seed("item", kItem, encode_item(item));
    item.state = State::deleted;
    item.text.clear();
    seed("item_tombstone", kItem, encode_item(item));
    Cube cube{3, "notes", 1000, 1700000000000, "hash-v1", 256, 12, 40, "hybrid", "english"};
    seed("cube", kCube, encode_cube(cube));
    seed("snapshot", kSnapshot, encode_snapshot({"v1", 20, 1700000050000, 11, 1000}));
    seed("idempotency", kIdempotency, encode_idempotency({3, 3, item.id, 2, 1700000001000}));
    Activation a;
    a.id = 5;
    a.cube = 3;
    a.tenant = 1000;
    a.key = {std::string(64, 'a'), "", "f16", "llama b4000", 1};
    a.model = "tiny";
    a.chunk_tokens = 4;
    a.tokens = {1, 2, 3, 4, 5, 6, 7, 8};
    a.sources = {item.id};
    a.blob.fill(0x5a);
    a.size = 4096;
    a.created_at_ms = a.last_used_ms = 1700000002000;
    a.uses = 3;
    a.prefixes = prefix_digests(a.key, Digest{}, a.chunk_tokens, a.tokens);
    seed("activation", kActivation, encode_activation(a));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % kKinds) {
    case kItem:
      round_trip<Item>(value, decode_item, encode_item);
      break;
    case kCube:
      round_trip<Cube>(value, decode_cube, encode_cube);
      break;
    case kSnapshot:
      round_trip<Snapshot>(value, decode_snapshot, encode_snapshot);
      break;
    case kIdempotency:
      round_trip<IdempotencyRecord>(value, decode_idempotency, encode_idempotency);
      break;
    case kActivation:
      round_trip<Activation>(value, decode_activation, encode_activation);
      break;
  }
  return 0;
}
