// memos/cluster.h — what a cluster reports (Client::cluster_status;
// memos-cluster(7), memctl(1) "cluster status"): each shard's owner and log,
// each node on the roster as it answered, and the blob bucket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memos {

struct ShardStatus {
  std::uint32_t shard = 0;
  std::string owner{};              // "" none now: a failover is under way
  std::uint64_t last_sequence = 0;  // the log's last record of the shard
  std::string note{};               // why a figure is missing (etcd or the log silent)
};

struct NodeStatus {
  std::string node{};
  bool answered = false;  // false: on the roster but silent; `note` says why
  std::string note{};
  bool owner = false;          // owns the shard and writes now
  std::uint64_t position = 0;  // the last record of the log its store holds
  std::uint64_t behind = 0;    // records of the log it does not hold yet
  std::uint64_t appended = 0;  // records it appended as owner, since it started
  std::uint64_t applied = 0;   // records it applied as a follower, since it started
  // The digest of the tenant policies it enforces (64 hex digits: SHA-256
  // of its policy files and the uids they name there); "" unknown (silent,
  // or a memosd too old to say).
  std::string policies{};
};

// The object store bucket that holds the cluster's KV states and adapters.
struct BucketStatus {
  std::string name{};       // MEMOS_<cluster.name>_BLOBS
  std::uint64_t blobs = 0;  // blobs in it
  std::uint64_t bytes = 0;  // what it stores, on each replica
  std::string note{};       // why the figures are missing (the engine silent)
};

// Log compaction: the newest store snapshot a node published, and how far
// each shard's log was compacted (a node down longer starts from the
// snapshot).
struct CompactionStatus {
  std::string snapshot_node{};         // "" none published yet
  std::uint64_t snapshot_time_ms = 0;  // when its copy began, ms since the epoch
  std::uint64_t snapshot_bytes = 0;
  std::vector<std::uint64_t> floor{};  // [shard]: no record at or below it (0: none removed)
  std::string note{};                  // why a figure is missing
};

// One of the log's replicas other than its leader, as the leader reports it.
struct LogReplica {
  std::string server{};         // the nats-server's name
  bool current = false;         // holds what the leader holds
  bool offline = false;         // the leader cannot reach it
  std::uint64_t active_ms = 0;  // since the leader last heard from it
  std::uint64_t lag = 0;        // operations it is behind the leader
};

// The log's stream: the nats-server that leads its replicas, through which
// every write of the cluster is appended, and how the others keep up.
struct LogStatus {
  std::string stream{};                // MEMOS_<cluster.name>
  std::string leader{};                // "" while its replicas elect one
  std::vector<LogReplica> replicas{};  // the others
  std::string note{};                  // why the figures are missing
  std::string previous_leader{};       // cluster_step_down(): the leader that stepped down
};

struct ClusterStatus {
  bool enabled = false;  // false: memosd runs as one node; nothing else is set
  std::string name{};    // cluster.name
  std::string node{};    // the node that answered
  std::uint32_t replicas = 0;
  std::uint32_t lease_ms = 0;
  std::vector<ShardStatus> shards{};
  std::vector<NodeStatus> nodes{};  // by node id
  BucketStatus bucket{};
  CompactionStatus compaction{};
  // A node that answered enforces other tenant policies than the node
  // asked: a request is bounded by those of the node that runs it.
  bool policies_differ = false;
  LogStatus log{};
};

}  // namespace memos
