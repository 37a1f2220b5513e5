// record_chain.h — the log as a hash chain, as a shard's replica reads and writes it: each
// record carries the digest of the record before it (ChangeGroup::previous),
// so a store that holds a record's digest knows which record may follow.
// What the replica's files (shard_replica*.cpp) say of a record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "memcube/blob_store.h"
#include "memcube/change_set.h"

namespace memos::cluster {

// A record's digest: SHA-256 of its bytes as the log holds them (all its
// parts together), 32 raw bytes.
inline std::string digest_of(std::string_view record) {
  const store::BlobId id = store::sha256(record);
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

// Where a store stands once it holds a record: a `previous` that is not a
// digest (a record from before the chain) is not known.
inline store::LogPosition position_of(std::uint64_t sequence, std::string digest,
                                      const std::string& previous) {
  return {sequence, std::move(digest), previous.size() == 32 ? previous : std::string()};
}

// The first 8 bytes of a digest in hex: enough to tell records apart in a
// log line (scripts/cluster-test compares them across nodes).
inline std::string short_hex(std::string_view digest) {
  return digest.empty() ? "unknown" : store::to_hex(digest.substr(0, 8));
}

}  // namespace memos::cluster
