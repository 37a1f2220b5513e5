// cluster_engines.h — a node's connections to its cluster's engines (NATS
// JetStream, etcd; memos-cluster(7)), made once, first thing at start
// (Daemon::connect_cluster), and lent to each part that needs them: the
// store's check against the compacted log (cluster_store_restore.h), the
// indexes' shared snapshots as they open (cluster_index_sharing.h), and the
// node's replicas (cluster_node.h). They outlive every borrower.
//
// With TLS (cluster_tls()), both connections speak it with the files
// cluster.tls_ca, cluster.tls_cert and cluster.tls_key name.
//
// Errors (store::Status): unavailable — no engine answered before the
// deadline (a server whose certificate was refused, or that refused this
// node's, does not answer: the message says which); io, corrupt, conflict —
// the TLS files (cluster/tls_stream.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "cluster/etcd_client.h"
#include "cluster/nats_connection.h"
#include "kernel/config.h"

namespace memos::kernel {

// Runs `attempt` until it succeeds, fails otherwise than unavailable, or
// `deadline` passes, and returns its last status. While a new cluster starts,
// its engines are unavailable for a while (NATS not listening yet, JetStream
// electing a stream's first leader, etcd electing its own): every node of a
// cluster started at once must wait for them rather than fail.
store::Status retry_while_unavailable(std::chrono::steady_clock::time_point deadline,
                                      const std::function<store::Status()>& attempt);

struct ClusterEngines {
  std::unique_ptr<cluster::NatsConnection> nats;
  std::unique_ptr<cluster::EtcdClient> etcd;
};

// The shard count a node making a cluster gives it when cluster.shards is
// 0 and its store has none of its own (docs/scale-out.md, "Shards"): enough
// for the owners of a cluster of a few nodes to spread (each tenant's cubes
// are one shard's), few enough that each node's leases and the log's
// subjects stay cheap. Fixed for the cluster's life, so it errs high.
inline constexpr std::uint32_t kDefaultClusterShards = 16;

// The cluster's shard count, kept in etcd by the node that made the
// cluster, and when it joins one, the count kept (a node configured with
// another is refused). A node that makes it gives `config.shards`, or when
// that is 0, `store_shards` (Store::shards_made_for: a store that already
// issued ids keeps its count, so a single node's store turns into a
// cluster's), or when that is 0 too, kDefaultClusterShards. Waits up to
// `deadline` for etcd. Errors: conflict (another count configured),
// unavailable, corrupt (the key is not a count).
store::Status agree_on_shards(const ClusterConfig& config, std::uint32_t store_shards,
                              cluster::EtcdClient& etcd,
                              std::chrono::steady_clock::time_point deadline,
                              std::uint32_t* agreed);

// Connects to both, waiting up to `deadline` for NATS (etcd's client
// connects per call; its calls wait half a lease, at least a second, for a
// member: a lease renewed every third of its life cannot wait longer).
// Errors: as above.
store::Status connect_cluster_engines(const ClusterConfig& config,
                                      std::chrono::steady_clock::time_point deadline,
                                      ClusterEngines* out);

}  // namespace memos::kernel
