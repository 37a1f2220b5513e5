// shard.h — which shard writes a tenant's rows (docs/scale-out.md, "Shards
// and who writes what"). Every row a write touches is keyed by a cube or by
// the tenant that owns it, so a cube's shard is its owner's: the owner's
// uid mixed by a fixed function (SplitMix64's finalizer), then taken modulo
// the shards. Fixed forever: every node, every version, must map a tenant
// to the same shard, so never std::hash (its values may differ between
// builds). One shard: 0.
#pragma once

#include <cstdint>

namespace memos::store {

constexpr std::uint32_t shard_of(std::uint32_t owner, std::uint32_t shards) {
  if (shards <= 1) return 0;
  std::uint64_t z = std::uint64_t{owner} + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(z % shards);
}

}  // namespace memos::store
