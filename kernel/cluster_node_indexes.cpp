// cluster_node_indexes.cpp — ClusterNode's side of the indexes: the index
// snapshots it shares (cluster_index_sharing.h; the daemon opens the
// sharing, so that the indexes take snapshots as they open), the deferral of
// cubes a replay brings (IndexSet::start_deferring until await_replay ends
// it), and which cubes have their collections open here. The apply hook
// that tells the indexes of each record is in cluster_node.cpp, beside the
// blobs it prefetches.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "kernel/cluster_node.h"

namespace memos::kernel {

void ClusterNode::await_replay() {
  // The log view, not the read barrier: these are not reads (they would
  // count as such), and the barrier words a store off the chain as
  // retryable.
  replay_watch_ = std::thread([this] {
    for (;;) {
      // Not caught up within a second, or the log did not answer: ask
      // again, a moment later. Anything else (caught up, or this node
      // stopped applying the log for good) ends the replay.
      const auto asked_at = cluster::LogView::Clock::now();
      std::uint64_t end = 0;
      store::Status s = log_view_->log_end(&end);
      if (s.ok()) s = log_view_->wait_through(end, asked_at, std::chrono::seconds(1));
      std::unique_lock lock(replay_mutex_);
      if (stopping_) return;
      if (s.code != store::Errc::unavailable) {
        if (s.ok()) spdlog::info("cluster: this node holds the log; indexing the cubes it brought");
        break;
      }
      if (replay_wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; }))
        return;
    }
    indexes_.release_deferred();
  });
}

std::size_t ClusterNode::share_indexes() {
  if (!index_sharing_ || config_.index_share_s == 0) return 0;
  std::vector<std::uint32_t> mine = owned_shards();
  if (mine.empty()) return 0;
  // A bucket JetStream did not answer for at start is tried again here, once
  // a period, rather than by each cube's upload.
  if (Status s = index_sharing_->open_bucket(); !s.ok()) {
    spdlog::debug("cluster: not sharing indexes this time: {}", s.message);
    return 0;
  }
  std::optional<store::ReadTxn> txn;
  std::vector<store::Cube> cubes;
  store::Status s = store_.begin_read(&txn);
  if (s.ok()) s = txn->list_all_cubes(&cubes);
  if (!s.ok()) {
    spdlog::warn("cluster: listing the cubes to share their indexes: {}", s.message);
    return 0;
  }
  txn.reset();
  std::erase_if(cubes, [&](const store::Cube& c) {
    return std::find(mine.begin(), mine.end(), store_.shard_of(c.owner)) == mine.end();
  });
  return indexes_.share(cubes, config_.index_share_min_items, config_.node_id);
}

IndexSharingCounters ClusterNode::index_sharing() const {
  return index_sharing_ ? index_sharing_->counters() : IndexSharingCounters{};
}

Status ClusterNode::note_open_cubes() {
  std::optional<store::ReadTxn> txn;
  std::vector<store::Cube> cubes;
  store::Status s = store_.begin_read(&txn);
  if (s.ok()) s = txn->list_all_cubes(&cubes);
  if (!s.ok()) return Status::from(s);
  std::lock_guard lock(cubes_mutex_);
  open_cubes_.clear();
  for (const auto& c : cubes) open_cubes_.insert(c.id);
  return {};
}

}  // namespace memos::kernel
