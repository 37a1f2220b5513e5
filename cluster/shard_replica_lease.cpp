// shard_replica_lease.cpp — ShardReplica's lease (shard_replica.h): claiming a free shard once
// caught up, keeping the lease while it owns it, giving it back.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "cluster/shard_replica.h"

namespace memos::cluster {
namespace {

// The part of a lease an owner does not use: it stops acting as owner this
// long before etcd could hand the shard to another node, which covers the
// two clocks running at slightly different rates and the keep-alive's
// flight.
std::chrono::milliseconds margin(std::chrono::milliseconds lease) {
  return std::max(std::chrono::milliseconds(100), lease / 6);
}

}  // namespace

Status ShardReplica::claim() {
  std::optional<EtcdKeyValue> holder;
  if (Status s = etcd_.get(owner_key(), &holder); !s.ok()) return s;
  if (holder) {
    free_since_.reset();
    std::lock_guard lock(mutex_);
    owner_node_ = holder->value;
    return {};
  }
  {
    std::lock_guard lock(mutex_);
    owner_node_.clear();
  }
  if (!free_since_) free_since_ = Clock::now();
  if (claim_gate_ && !claim_gate_(Clock::now() - *free_since_)) return {};
  // Free. Whoever owns it next must hold every acknowledged record first:
  // the leader's last sequence covers them all.
  std::uint64_t last = 0;
  if (Status s = js_.last_sequence(stream(), subject(), &last); !s.ok()) return s;
  spdlog::debug("shard {}: free; the log's last record is {}", settings_.shard, last);
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (Status s = follow(); !s.ok()) return s;
    {
      std::lock_guard lock(mutex_);
      if (tail_ >= last || stopping_) break;
    }
    // The replica that answered has not caught up with the leader yet.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::uint64_t tail;
  {
    std::lock_guard lock(mutex_);
    tail = tail_;
  }
  if (tail < last) return {Errc::unavailable, "could not catch up to claim the shard"};
  const auto ttl_s = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(
                                                   settings_.lease + std::chrono::milliseconds(999))
                                                   .count());
  const auto granted_at = Clock::now();
  std::int64_t lease = 0;
  if (Status s = etcd_.grant_lease(ttl_s, &lease); !s.ok()) return s;
  bool created = false;
  EtcdKeyValue taken;
  if (Status s = etcd_.create(owner_key(), settings_.node, lease, &created, &taken); !s.ok()) {
    etcd_.revoke(lease);
    return s;
  }
  if (!created) {
    etcd_.revoke(lease);  // another node claimed it first
    std::lock_guard lock(mutex_);
    owner_node_ = taken.value;
    return {};
  }
  std::lock_guard lock(mutex_);
  owner_ = true;
  behind_ = false;
  barrier_ = true;
  lease_ = lease;
  lease_valid_until_ = granted_at + std::chrono::seconds(ttl_s) - margin(settings_.lease);
  owner_node_ = settings_.node;
  free_since_.reset();
  spdlog::info("shard {}: this node ({}) holds its lease now, at log sequence {}", settings_.shard,
               settings_.node, position_);
  return {};
}

void ShardReplica::hand_over() {
  std::lock_guard lock(mutex_);
  handing_over_ = true;
}

void ShardReplica::give_back() {
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mutex_);
    handing_over_ = false;
    if (!owner_) return;
    lease = lease_;
    owner_ = false;
    lease_ = 0;
    owner_node_.clear();
    changed_.notify_all();
  }
  tell_role();
  // Not claimed again at once: the claim gate keeps a node that owns more
  // than another from it (ShardBalancer).
  if (Status s = etcd_.revoke(lease); !s.ok()) {
    spdlog::warn("shard {}: the lease was not given back ({}); it lapses in {} ms", settings_.shard,
                 s.message, settings_.lease.count());
    return;
  }
  spdlog::info("shard {}: this node ({}) gave its lease back and follows", settings_.shard,
               settings_.node);
}

Status ShardReplica::keep_lease() {
  std::int64_t lease;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
  }
  const auto sent = Clock::now();
  std::int64_t ttl_s = 0;
  Status s = etcd_.keep_alive(lease, &ttl_s);
  std::lock_guard lock(mutex_);
  if (s.ok()) {
    lease_valid_until_ = sent + std::chrono::seconds(ttl_s) - margin(settings_.lease);
    return {};
  }
  if (s.code == Errc::not_found) {
    spdlog::warn("shard {}: the lease lapsed: this node no longer owns the shard", settings_.shard);
    owner_ = false;
    lease_ = 0;
    owner_node_.clear();
    return {};
  }
  return {s.code, "keeping the lease: " + s.message};  // owner() lapses on its own
}

}  // namespace memos::cluster
