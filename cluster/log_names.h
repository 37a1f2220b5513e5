// log_names.h — the names a cluster's log goes by in JetStream, in one
// place: the stream, each shard's subject, the filter for every shard, and
// the shard a subject names. Every node derives them from the cluster's
// name (memosd.conf [cluster] name), so they are part of the protocol
// between nodes: changing one is changing the log's format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/decimal.h"

namespace memos::cluster {

// The stream every shard's records are messages of: MEMOS_<cluster>.
inline std::string log_stream(std::string_view cluster) {
  return "MEMOS_" + std::string(cluster);
}

// The prefix of every shard's subject: memos.<cluster>.log.
inline std::string log_subject_prefix(std::string_view cluster) {
  return "memos." + std::string(cluster) + ".log.";
}

// One shard's subject: memos.<cluster>.log.<shard>.
inline std::string shard_subject(std::string_view cluster, std::uint32_t shard) {
  return log_subject_prefix(cluster) + std::to_string(shard);
}

// The filter matching every shard's subject: memos.<cluster>.log.>.
inline std::string all_shards_filter(std::string_view cluster) {
  return log_subject_prefix(cluster) + ">";
}

// The shard `subject` names, if it is a shard subject of `cluster` below
// `shard_count`; false otherwise (`*shard` untouched).
inline bool shard_of_subject(std::string_view cluster, std::string_view subject,
                             std::uint32_t shard_count, std::uint32_t* shard) {
  const std::string prefix = log_subject_prefix(cluster);
  std::uint64_t n = 0;
  if (subject.substr(0, prefix.size()) != prefix ||
      !parse_decimal(subject.substr(prefix.size()), &n) || n >= shard_count) {
    return false;
  }
  *shard = static_cast<std::uint32_t>(n);
  return true;
}

// The stream holding the cluster's shared blobs (the object store bucket):
// MEMOS_<cluster>_BLOBS.
inline std::string blob_bucket_name(std::string_view cluster) {
  return log_stream(cluster) + "_BLOBS";
}

}  // namespace memos::cluster
