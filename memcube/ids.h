// ids.h — the store's identifiers: a tenant is the uid its memory is
// stored under; cubes and items are time-ordered u64 ids issued by the
// store (WriteTxn::next_id).
#pragma once

#include <cstdint>

namespace memos::store {

using TenantId = std::uint32_t;
using CubeId = std::uint64_t;
using ItemId = std::uint64_t;

}  // namespace memos::store
