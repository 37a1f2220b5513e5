// fuzz_change_record — a replication log record (memcube/change_set.h) as a
// follower gets it from the log: decoded, then applied to a real store in a
// transaction that is aborted afterwards. The first byte picks the input's
// form: a whole record (header, checksum, message: the decoder's checks),
// or changes spelled out plainly (table, kind, key, value: what a record
// with a valid checksum can hold, which mutations of a record rarely reach).
//
// Checked: a record decodes or is refused as corrupt, nothing else; what
// decodes encodes to the same record again; applying changes succeeds or
// fails with a store error (corrupt for what no leader writes), never
// crashes.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

using namespace memos::store;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_change_record: %s\n", what);
    std::abort();
  }
}

// One store for the whole run, in a folder removed at exit.
struct ScratchStore {
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  ScratchStore() {
    char pattern[] = "/tmp/fuzz-change-record-XXXXXX";
    check(::mkdtemp(pattern) != nullptr, "no temporary folder");
    dir = pattern;
    Status s;
    store = Store::open(dir.string(), StoreOptions{}, &s);
    check(store != nullptr, "the scratch store does not open");
  }
  ~ScratchStore() {
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

ScratchStore& scratch() {
  static ScratchStore s;
  return s;
}

// A leader's real record: a cube and an item, as a commit group records them.
std::string sample_record() {
  ScratchStore leader;
  std::optional<WriteTxn> txn;
  check(leader.store->begin_write(&txn).ok(), "begin_write");
  ChangeSet changes;
  txn->record_changes(&changes);
  Cube cube;
  check(txn->create_cube(1000, "notes", "hash-v1", 16, 1700000000000, &cube).ok(), "create_cube");
  ItemDraft draft;
  draft.text = "the cat sat on the mat";
  draft.tags = {"pets"};
  draft.expires_at_ms = 1800000000000;
  Item item;
  check(txn->add_item(cube.id, draft, 0, 1700000000001, &item).ok(), "add_item");
  std::array<std::uint8_t, 32> blob{};
  blob.fill(7);
  check(txn->blob_ref(blob, 4096).ok(), "blob_ref");
  check(txn->seal().ok(), "seal");
  ChangeGroup group;
  group.shard = 0;
  group.epoch = 42;
  group.schema = Store::kSchemaVersion;
  group.previous = std::string(32, '\x3c');  // chained, as every record is now
  group.changes = changes;
  return encode_change_group(group);
}

// The plain form of a record's changes (the seeds of the second form).
std::string spelled_out(const ChangeSet& changes) {
  std::string out(1, '\x01');
  for (const Change& c : changes.changes()) {
    out += static_cast<char>(c.table);
    out += static_cast<char>(c.kind);
    out += static_cast<char>(std::min<std::size_t>(c.key.size(), 255));
    out += c.key.substr(0, 255);
    const std::size_t n = std::min<std::size_t>(c.value.size(), 65535);
    out += static_cast<char>(n & 0xff);
    out += static_cast<char>(n >> 8);
    out += c.value.substr(0, n);
  }
  return out;
}

// Changes spelled out: per change, table (1 byte), kind (1), key length (1),
// key, value length (2, LE), value; whatever is cut short is dropped.
ChangeSet plain_changes(std::string_view in) {
  ChangeSet set;
  while (in.size() >= 3) {
    const auto table = static_cast<TableId>(in[0]);
    const auto kind = static_cast<ChangeKind>(in[1]);
    const std::size_t key_size = static_cast<unsigned char>(in[2]);
    in.remove_prefix(3);
    if (in.size() < key_size + 2) break;
    std::string key(in.substr(0, key_size));
    in.remove_prefix(key_size);
    const std::size_t value_size =
        static_cast<unsigned char>(in[0]) | (std::size_t{static_cast<unsigned char>(in[1])} << 8);
    in.remove_prefix(2);
    if (in.size() < value_size) break;
    set.append(Change{table, kind, std::move(key), std::string(in.substr(0, value_size))});
    in.remove_prefix(value_size);
  }
  return set;
}

void apply(const ChangeSet& changes) {
  Store& store = *scratch().store;
  std::optional<WriteTxn> txn;
  check(store.begin_write(&txn).ok(), "begin_write");
  Status s = txn->apply_changes(changes);
  if (!(s.ok() || s.code == Errc::corrupt || s.code == Errc::map_full ||
        s.code == Errc::storage_full)) {
    std::fprintf(stderr, "fuzz_change_record: applying a record fails with code %d: %s\n",
                 static_cast<int>(s.code), s.message.c_str());
    std::abort();
  }
  txn->abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    const std::string record = sample_record();
    emit("cube_item_blob", std::string(1, '\0') + record);
    ChangeGroup group;
    check(decode_change_group(record, &group).ok(), "the sample does not decode");
    emit("cube_item_blob_plain", spelled_out(group.changes));
    ChangeGroup empty;
    empty.schema = Store::kSchemaVersion;
    emit("empty", std::string(1, '\0') + encode_change_group(empty));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    apply(plain_changes(bytes));
    return 0;
  }
  ChangeGroup group;
  Status s = decode_change_group(bytes, &group);
  if (!s.ok()) {
    check(s.code == Errc::corrupt, "a bad record is refused with another code than corrupt");
    return 0;
  }
  const std::string once = encode_change_group(group);
  ChangeGroup again;
  check(decode_change_group(once, &again).ok(), "a decoded record does not decode once encoded");
  check(encode_change_group(again) == once, "a record changes through the codec");
  apply(group.changes);
  return 0;
}
