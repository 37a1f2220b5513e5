#include "kernel/cluster_engines.h"

#include <algorithm>
#include <string>
#include <thread>

#include "cluster/decimal.h"
#include "cluster/names.h"
#include "cluster/tls_stream.h"
#include "memcube/store.h"

namespace memos::kernel {
namespace {

// Connects to cluster.nats as node cluster.node_id, retrying until
// `deadline`. Null, with `*status`, when no server answered.
std::unique_ptr<cluster::NatsConnection> connect_nats(
    const ClusterConfig& config, std::shared_ptr<const cluster::TlsContext> tls,
    std::chrono::steady_clock::time_point deadline, store::Status* status) {
  cluster::NatsOptions options;
  options.servers = config.nats;
  options.name = "memosd " + config.node_id;
  options.tls = std::move(tls);
  // A dead server is noticed within a sixth of a lease.
  options.ping_interval =
      std::max(std::chrono::milliseconds(250), std::chrono::milliseconds(config.lease_ms) / 6);
  std::unique_ptr<cluster::NatsConnection> nats;
  *status = retry_while_unavailable(deadline, [&] {
    store::Status connected;
    nats = cluster::NatsConnection::connect(options, &connected);
    return connected;
  });
  return nats;
}

}  // namespace

store::Status retry_while_unavailable(std::chrono::steady_clock::time_point deadline,
                                      const std::function<store::Status()>& attempt) {
  for (;;) {
    store::Status s = attempt();
    if (s.ok() || s.code != store::Errc::unavailable ||
        std::chrono::steady_clock::now() >= deadline) {
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

store::Status agree_on_shards(const ClusterConfig& config, std::uint32_t store_shards,
                              cluster::EtcdClient& etcd,
                              std::chrono::steady_clock::time_point deadline,
                              std::uint32_t* agreed) {
  const std::string key = cluster::shard_count_key(config.name);
  const std::uint32_t proposed = config.shards != 0  ? config.shards
                                 : store_shards != 0 ? store_shards
                                                     : kDefaultClusterShards;
  const std::string mine = std::to_string(proposed);
  bool created = false;
  cluster::EtcdKeyValue kept;
  store::Status s =
      retry_while_unavailable(deadline, [&] { return etcd.create(key, mine, 0, &created, &kept); });
  if (!s.ok()) return {s.code, "cluster.etcd: keeping cluster.shards: " + s.message};
  const std::string count = created ? mine : kept.value;
  std::uint64_t n = 0;
  if (!cluster::parse_decimal(count, &n) || n < 1 || n > store::Store::kMaxShards) {
    return {store::Errc::corrupt, "etcd key " + key + " is not a shard count from 1 to " +
                                      std::to_string(store::Store::kMaxShards)};
  }
  if (config.shards != 0 && n != config.shards) {
    return {store::Errc::conflict,
            "cluster " + config.name + " was made with cluster.shards = " + count + " (etcd key " +
                key + ") and this node has " + std::to_string(config.shards) +
                ": a tenant's shard depends on the count, so every node needs the same (or "
                "none: a node without cluster.shards takes the cluster's)"};
  }
  *agreed = static_cast<std::uint32_t>(n);
  return {};
}

store::Status connect_cluster_engines(const ClusterConfig& config,
                                      std::chrono::steady_clock::time_point deadline,
                                      ClusterEngines* out) {
  std::shared_ptr<const cluster::TlsContext> tls;
  if (cluster_tls(config)) {
    store::Status s = cluster::TlsContext::open(
        {.ca = config.tls_ca, .cert = config.tls_cert, .key = config.tls_key}, &tls);
    if (!s.ok()) return {s.code, "cluster.tls_*: " + s.message};
  }
  store::Status s;
  out->nats = connect_nats(config, tls, deadline, &s);
  if (!out->nats) return {s.code, "cluster.nats: " + s.message};
  out->etcd = std::make_unique<cluster::EtcdClient>(
      config.etcd,
      std::max(std::chrono::milliseconds(config.lease_ms) / 2, std::chrono::milliseconds(1000)),
      std::move(tls));
  return {};
}

}  // namespace memos::kernel
