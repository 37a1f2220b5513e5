// names.h — the names a cluster goes by, in one place: in JetStream the
// stream, each shard's subject, the filter for every shard, the shard a
// subject names, the blob bucket and the index bucket; in etcd the roster,
// each shard's keys and each cube's shared index snapshots; on NATS each
// node's own subjects. Every node derives them from the
// cluster's name (memosd.conf [cluster] name) and its own node name, so they
// are part of the protocol between nodes: changing one is changing the
// cluster's format.
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

// The bucket holding each cube's shared index snapshots: MEMOS_<cluster>_INDEXES.
inline std::string index_bucket_name(std::string_view cluster) {
  return log_stream(cluster) + "_INDEXES";
}

// The prefix of every shared index snapshot's key: /memos/<cluster>/indexes/.
inline std::string index_snapshot_prefix(std::string_view cluster) {
  return "/memos/" + std::string(cluster) + "/indexes/";
}

// The key naming the newest shared snapshot of a cube's collection in one
// retriever: /memos/<cluster>/indexes/<cube>/<retriever>.
inline std::string index_snapshot_key(std::string_view cluster, std::uint64_t cube,
                                      std::string_view retriever) {
  return index_snapshot_prefix(cluster) + std::to_string(cube) + "/" + std::string(retriever);
}

// The bucket holding the newest store snapshot (log compaction):
// MEMOS_<cluster>_SNAPSHOTS.
inline std::string store_snapshot_bucket_name(std::string_view cluster) {
  return log_stream(cluster) + "_SNAPSHOTS";
}

// The key naming the newest store snapshot, with the positions it covers
// and the marks compaction reads: /memos/<cluster>/store_snapshot.
inline std::string store_snapshot_key(std::string_view cluster) {
  return "/memos/" + std::string(cluster) + "/store_snapshot";
}

// The key holding, per shard, the position up to which the log's records
// may have been removed: /memos/<cluster>/log_floor.
inline std::string log_floor_key(std::string_view cluster) {
  return "/memos/" + std::string(cluster) + "/log_floor";
}

// The etcd prefix of the roster, one key per live node: /memos/<cluster>/nodes/.
inline std::string roster_prefix(std::string_view cluster) {
  return "/memos/" + std::string(cluster) + "/nodes/";
}

// A node's roster key: /memos/<cluster>/nodes/<node>.
inline std::string roster_key(std::string_view cluster, std::string_view node) {
  return roster_prefix(cluster) + std::string(node);
}

// The key whose lease names a shard's owner: /memos/<cluster>/shards/<n>/owner.
inline std::string shard_owner_key(std::string_view cluster, std::uint32_t shard) {
  return "/memos/" + std::string(cluster) + "/shards/" + std::to_string(shard) + "/owner";
}

// The key a giving owner names a shard's successor under:
// /memos/<cluster>/shards/<n>/successor.
inline std::string shard_successor_key(std::string_view cluster, std::uint32_t shard) {
  return "/memos/" + std::string(cluster) + "/shards/" + std::to_string(shard) + "/successor";
}

// The key the first node records the cluster's shard count under:
// /memos/<cluster>/shard_count.
inline std::string shard_count_key(std::string_view cluster) {
  return "/memos/" + std::string(cluster) + "/shard_count";
}

// The subject a node answers status requests on: memos.<cluster>.status.<node>.
inline std::string node_status_subject(std::string_view cluster, std::string_view node) {
  return "memos." + std::string(cluster) + ".status." + std::string(node);
}

// The subject a node takes forwarded writes on: memos.<cluster>.node.<node>.forward.
inline std::string node_forward_subject(std::string_view cluster, std::string_view node) {
  return "memos." + std::string(cluster) + ".node." + std::string(node) + ".forward";
}

}  // namespace memos::cluster
