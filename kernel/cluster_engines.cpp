#include "kernel/cluster_engines.h"

#include <algorithm>
#include <thread>

namespace memos::kernel {

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

std::unique_ptr<cluster::NatsConnection> connect_nats(
    const ClusterConfig& config, std::chrono::steady_clock::time_point deadline,
    store::Status* status) {
  cluster::NatsOptions options;
  options.servers = config.nats;
  options.name = "memosd " + config.node_id;
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

std::unique_ptr<cluster::EtcdClient> make_etcd_client(const ClusterConfig& config) {
  return std::make_unique<cluster::EtcdClient>(
      config.etcd,
      std::max(std::chrono::milliseconds(config.lease_ms) / 2, std::chrono::milliseconds(1000)));
}

store::Status connect_cluster_engines(const ClusterConfig& config,
                                      std::chrono::steady_clock::time_point deadline,
                                      ClusterEngines* out) {
  store::Status s;
  out->nats = connect_nats(config, deadline, &s);
  if (!out->nats) return {store::Errc::unavailable, "cluster.nats: " + s.message};
  out->etcd = make_etcd_client(config);
  return {};
}

}  // namespace memos::kernel
