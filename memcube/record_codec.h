// record_codec.h — encodes store::Item and store::Cube as Cap'n Proto
// records (schema/records.capnp) and decodes them back, with limits, from
// LMDB values, which carry no alignment guarantee.
#pragma once

#include <string>
#include <string_view>

#include "memcube/store.h"

namespace memos::store {

std::string encode_item(const Item& item);
std::string encode_cube(const Cube& cube);

// Errors: corrupt (not a valid record).
Status decode_item(std::string_view bytes, Item* out);
Status decode_cube(std::string_view bytes, Cube* out);

}  // namespace memos::store
