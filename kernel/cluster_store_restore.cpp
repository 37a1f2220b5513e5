#include "kernel/cluster_store_restore.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <vector>

#include "kernel/cluster_engines.h"
#include "kernel/cluster_store_snapshots.h"
#include "memcube/blob_store.h"

namespace memos::kernel {
namespace {

namespace fs = std::filesystem;

std::string incoming_dir(const std::string& store_dir) {
  return store_dir + ".incoming";
}
std::string replaced_dir(const std::string& store_dir) {
  return store_dir + ".replaced";
}

// The first shard on which `held` is below `floor`, or -1.
int first_shard_behind(const std::vector<std::uint64_t>& held,
                       const std::vector<std::uint64_t>& floor) {
  for (std::size_t shard = 0; shard < floor.size() && shard < held.size(); ++shard) {
    if (held[shard] < floor[shard]) return static_cast<int>(shard);
  }
  return -1;
}

// Fetches the newest snapshot into <store>.incoming and opens it there,
// checking it covers `floor`; asks etcd once more if the snapshot was
// replaced while it was fetched.
Status fetch_snapshot(StoreSnapshots& snapshots, const std::string& store_dir,
                      const store::StoreOptions& options, const std::vector<std::uint64_t>& floor,
                      std::chrono::steady_clock::time_point deadline, StoreSnapshotInfo* taken) {
  const std::string incoming = incoming_dir(store_dir);
  for (;;) {
    Status s;
    store::Status asked = retry_while_unavailable(deadline, [&] {
      s = snapshots.newest(taken);
      return s.code == Code::unavailable ? store::Status{store::Errc::unavailable, s.message}
                                         : store::Status{};
    });
    if (!asked.ok()) return Status::from(asked);
    if (s.code == Code::not_found) {
      return Status::internal("the log was compacted, but the cluster has no store snapshot: " +
                              s.message);
    }
    if (!s.ok()) return s;
    if (int shard = first_shard_behind(taken->covers.positions, floor); shard >= 0) {
      return Status::internal("node " + taken->node + "'s store snapshot covers shard " +
                              std::to_string(shard) + " to " +
                              std::to_string(taken->covers.positions[shard]) +
                              ", below the log's floor " + std::to_string(floor[shard]));
    }
    std::error_code ec;
    fs::remove_all(incoming, ec);
    fs::create_directories(incoming, ec);
    if (ec) return Status::internal("cannot make " + incoming + ": " + ec.message());
    s = snapshots.fetch(*taken, incoming + "/data.mdb");
    if (s.ok()) break;
    // Replaced meanwhile: the node that published a newer snapshot removed
    // this one's file, and the fetch found its description or a chunk gone
    // (not_found or corrupt). The newer one is taken, until the deadline.
    // (The first version retried once, and only on not_found: a restarted
    // follower lost to a missing chunk under scripts/cluster-test's 2 s
    // snapshots, twice in a row.)
    StoreSnapshotInfo now;
    if (std::chrono::steady_clock::now() < deadline && snapshots.newest(&now).ok() &&
        now.blob != taken->blob) {
      spdlog::info(
          "cluster: node {}'s store snapshot was replaced while this node fetched it ({}); "
          "taking node {}'s",
          taken->node, s.message, now.node);
      continue;
    }
    return s;
  }
  // Opened where it is, so that a file no store of this build reads (a newer
  // schema, another shard count, garbage) is refused before it replaces one.
  store::Status opened;
  std::unique_ptr<store::Store> store = store::Store::open(incoming, options, &opened);
  if (!store) return Status::from(opened).prefixed("opening node " + taken->node + "'s snapshot");
  std::vector<std::uint64_t> held;
  if (store::Status s = read_log_positions(*store, &held); !s.ok()) return Status::from(s);
  if (int shard = first_shard_behind(held, floor); shard >= 0) {
    return Status::internal("node " + taken->node + "'s store snapshot holds shard " +
                            std::to_string(shard) + " to " + std::to_string(held[shard]) +
                            ", below the log's floor " + std::to_string(floor[shard]));
  }
  return {};
}

// <store> becomes <store>.replaced, <store>.incoming becomes <store>, and
// the replaced one goes.
Status swap_in(const std::string& store_dir) {
  std::error_code ec;
  fs::rename(store_dir, replaced_dir(store_dir), ec);
  if (!ec) fs::rename(incoming_dir(store_dir), store_dir, ec);
  if (ec) return Status::internal("replacing " + store_dir + ": " + ec.message());
  if (store::Status s = store::fsync_dir(fs::path(store_dir).parent_path().string()); !s.ok())
    return Status::from(s);
  fs::remove_all(replaced_dir(store_dir), ec);
  return {};
}

}  // namespace

Status tidy_store_swap(const std::string& store_dir) {
  std::error_code ec;
  fs::remove_all(incoming_dir(store_dir), ec);
  const std::string replaced = replaced_dir(store_dir);
  if (!ec && fs::exists(replaced, ec)) {
    if (!fs::exists(store_dir + "/data.mdb")) {
      spdlog::warn("{}: putting back the store a stop interrupted the replacement of", store_dir);
      fs::remove_all(store_dir, ec);
      if (!ec) fs::rename(replaced, store_dir, ec);
    } else {
      fs::remove_all(replaced, ec);
    }
  }
  if (ec) return Status::internal("tidying " + store_dir + "'s replacement: " + ec.message());
  return {};
}

Status restore_store_if_behind(const ClusterConfig& config, cluster::NatsConnection& nats,
                               cluster::EtcdClient& etcd, const std::string& store_dir,
                               const std::string& staging_dir, const store::StoreOptions& options,
                               std::chrono::milliseconds timeout,
                               std::unique_ptr<store::Store>* store, bool* restored) {
  *restored = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::uint64_t> held, floor;
  if (store::Status s = read_log_positions(**store, &held); !s.ok()) return Status::from(s);
  Status read;
  store::Status asked = retry_while_unavailable(deadline, [&] {
    read = read_log_floor(etcd, config.name, config.shards, &floor);
    return read.code == Code::unavailable ? store::Status{store::Errc::unavailable, read.message}
                                          : store::Status{};
  });
  if (!asked.ok()) return Status::from(asked).prefixed("cluster.etcd: reading the log's floor");
  if (!read.ok()) return read;
  const int behind = first_shard_behind(held, floor);
  if (behind < 0) return {};
  spdlog::info(
      "cluster {}: this store holds shard {}'s log to {}, and the log keeps it only from {}: "
      "taking the cluster's newest store snapshot",
      config.name, behind, held[behind], floor[behind]);
  Status opened;
  std::unique_ptr<StoreSnapshots> snapshots =
      StoreSnapshots::open(config, nats, etcd, staging_dir, timeout, &opened);
  if (!snapshots) return opened;
  StoreSnapshotInfo taken;
  if (Status s = fetch_snapshot(*snapshots, store_dir, options, floor, deadline, &taken); !s.ok()) {
    std::error_code ignored;
    fs::remove_all(incoming_dir(store_dir), ignored);
    return s.prefixed("this store is behind the compacted log and cannot take a snapshot");
  }
  store->reset();  // LMDB's environment closes before its folder moves
  if (Status s = swap_in(store_dir); !s.ok()) return s;
  store::Status reopened;
  *store = store::Store::open(store_dir, options, &reopened);
  if (!*store) return Status::from(reopened);
  *restored = true;
  spdlog::info("cluster {}: took node {}'s store snapshot ({} bytes); applying the log from it",
               config.name, taken.node, taken.bytes);
  return {};
}

}  // namespace memos::kernel
