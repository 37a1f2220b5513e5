#include "memcube/change_set.h"

#include "memcube/lmdb_util.h"

namespace memos::store {
namespace {

void put_le(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_le(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
  return v;
}

}  // namespace

const char* table_name(TableId table) {
  static constexpr const char* kNames[] = {
      nullptr,          "meta",
      "cube_names",     "cubes",
      "items",          "versions",
      "idempotency",    "expiry",
      "tombstones",     "snapshots",
      "blobs",          "access",
      "activations",    "activation_prefixes",
      "activation_lru", "activation_usage",
      "tenant_usage",   "tenant_salts",
      "text_hashes",    "cube_shares",
      "shared_cubes",   "working_sets",
      "param_names",    "router_usage",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kLastTableId + 1u);
  auto n = static_cast<std::uint8_t>(table);
  return n <= kLastTableId ? kNames[n] : nullptr;
}

void ChangeSet::put(TableId table, std::string_view key, std::string_view value) {
  append(Change{table, ChangeKind::put, std::string(key), std::string(value)});
}

void ChangeSet::erase(TableId table, std::string_view key) {
  append(Change{table, ChangeKind::erase, std::string(key), {}});
}

void ChangeSet::erase_prefix(TableId table, std::string_view prefix) {
  append(Change{table, ChangeKind::erase_prefix, std::string(prefix), {}});
}

void ChangeSet::blob_refs(const std::array<std::uint8_t, 32>& blob, std::int64_t delta,
                          std::uint64_t size) {
  std::string value;
  put_le(value, static_cast<std::uint64_t>(delta));
  put_le(value, size);
  append(Change{TableId::blobs, ChangeKind::blob_refs,
                std::string(reinterpret_cast<const char*>(blob.data()), blob.size()),
                std::move(value)});
}

void ChangeSet::activation_usage(std::uint32_t tenant, std::int64_t count, std::int64_t bytes) {
  std::string key, value;
  put_be(key, tenant, 4);
  put_le(value, static_cast<std::uint64_t>(count));
  put_le(value, static_cast<std::uint64_t>(bytes));
  append(Change{TableId::activation_usage, ChangeKind::activation_usage, std::move(key),
                std::move(value)});
}

void ChangeSet::append(Change change) {
  bytes_ += change.key.size() + change.value.size();
  changes_.push_back(std::move(change));
}

void ChangeSet::truncate(std::size_t count) {
  while (changes_.size() > count) {
    bytes_ -= changes_.back().key.size() + changes_.back().value.size();
    changes_.pop_back();
  }
}

void ChangeSet::clear() {
  changes_.clear();
  bytes_ = 0;
}

bool decode_blob_refs(std::string_view value, std::int64_t* delta, std::uint64_t* size) {
  if (value.size() != 16) return false;
  *delta = static_cast<std::int64_t>(get_le(value.substr(0, 8)));
  *size = get_le(value.substr(8, 8));
  return true;
}

bool decode_activation_usage(std::string_view key, std::string_view value, std::uint32_t* tenant,
                             std::int64_t* count, std::int64_t* bytes) {
  if (key.size() != 4 || value.size() != 16) return false;
  *tenant = static_cast<std::uint32_t>(get_be(key.data(), 4));
  *count = static_cast<std::int64_t>(get_le(value.substr(0, 8)));
  *bytes = static_cast<std::int64_t>(get_le(value.substr(8, 8)));
  return true;
}

}  // namespace memos::store
