// record_codec.h — encodes store::Item and store::Cube as stored records and
// decodes them back, with limits, from LMDB values (which carry no alignment
// guarantee).
//
// A record is an 8-byte header, then a Cap'n Proto message
// (schema/records.capnp):
//   bytes 0..3  magic "MCR" + format version 1
//   bytes 4..7  CRC-32C of the message bytes, little-endian
// The checksum is verified on every read, so a torn or bit-flipped value is
// reported as corrupt rather than decoded into wrong data.
#pragma once

#include <string>
#include <string_view>

#include "memcube/activation.h"
#include "memcube/change_set.h"
#include "memcube/store.h"

namespace memos::store {

std::string encode_item(const Item& item);
std::string encode_cube(const Cube& cube);

// Errors: corrupt (bad header, checksum mismatch, or not a valid record).
Status decode_item(std::string_view bytes, Item* out);
Status decode_cube(std::string_view bytes, Cube* out);
std::string encode_snapshot(const Snapshot& snapshot);
Status decode_snapshot(std::string_view bytes, Snapshot* out);
std::string encode_idempotency(const IdempotencyRecord& record);
Status decode_idempotency(std::string_view bytes, IdempotencyRecord* out);
std::string encode_activation(const Activation& activation);
Status decode_activation(std::string_view bytes, Activation* out);
// A replication log record (change_set.h). Decoding checks the header, the
// checksum and the message; whether the tables and kinds are known is
// checked when the changes are applied. Errors: corrupt.
std::string encode_change_group(const ChangeGroup& group);
// The same from its parts, without copying the changes into a ChangeGroup
// (an owner encodes every commit group it appends).
std::string encode_change_group(std::uint32_t shard, std::uint64_t epoch, std::uint32_t schema,
                                std::string_view previous, const ChangeSet& changes);
Status decode_change_group(std::string_view bytes, ChangeGroup* out);

}  // namespace memos::store
