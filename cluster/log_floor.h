// log_floor.h — the log's floor as compaction keeps it in etcd
// (/memos/<cluster>/log_floor, names.h): for each shard, the sequence at and
// below which its records may have been removed from the log. A node whose
// store is below its shard's floor cannot catch up from the log; it takes a
// store snapshot instead (docs/scale-out.md, "Log compaction").
//
// The key's value is JSON, {"positions": [n0, n1, ...]}, one unsigned
// count per shard. One parser for every reader (compaction, a node
// restoring, a replica explaining a gap), so none of them takes -1 or a
// string for a count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_client.h"

namespace memos::cluster {

// The floor's value for `positions`, as the key holds it.
std::string log_floor_value(const std::vector<std::uint64_t>& positions);

// Parses a value of the key into `*positions` (as many as it lists).
// Errors: corrupt (not an object whose "positions" is a list of unsigned
// integers), with why.
store::Status parse_log_floor(std::string_view value, std::vector<std::uint64_t>* positions);

// Reads the key: `*positions` empty when there is none (nothing compacted
// yet); `*revision`, when given, its mod revision (0: none). Errors:
// unavailable (etcd), corrupt (parse_log_floor's, naming the key).
store::Status read_log_floor(EtcdClient& etcd, std::string_view cluster,
                             std::vector<std::uint64_t>* positions,
                             std::int64_t* revision = nullptr);

}  // namespace memos::cluster
