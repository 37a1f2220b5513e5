#include "kernel/cluster_store_snapshots.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_set>

#include "cluster/log_floor.h"
#include "cluster/names.h"

namespace memos::kernel {
namespace {

using json = nlohmann::json;

// Bounds on what a description may say.
constexpr std::size_t kMaxName = 256;
constexpr std::uint64_t kMaxBytes = 1ull << 40;
// Marks kept at most: one per snapshot within the retention. Past this the
// oldest go, which only delays compaction (the mark it would use is newer).
constexpr std::size_t kMaxMarks = 256;

json positions_json(const std::vector<std::uint64_t>& positions) {
  return json(positions);
}

// An unsigned integer: nlohmann's get<std::uint64_t>() would take -1 as 2^64 - 1.
std::uint64_t unsigned_of(const json& j, const char* what) {
  if (!j.is_number_unsigned()) throw std::invalid_argument(std::string(what) + " is not a count");
  return j.get<std::uint64_t>();
}

std::vector<std::uint64_t> read_positions(const json& j, std::uint32_t shards) {
  if (!j.is_array() || j.size() != shards) {
    throw std::invalid_argument("positions are not a list of " + std::to_string(shards) +
                                " shards'");
  }
  std::vector<std::uint64_t> positions;
  for (const json& p : j) positions.push_back(unsigned_of(p, "a position"));
  return positions;
}

LogMark read_mark(const json& j, std::uint32_t shards) {
  LogMark m;
  m.time_ms = unsigned_of(j.at("time_ms"), "time_ms");
  m.positions = read_positions(j.at("positions"), shards);
  return m;
}

json mark_json(const LogMark& m) {
  return {{"time_ms", m.time_ms}, {"positions", positions_json(m.positions)}};
}

// The newest mark at least `retention_ms` old at `now_ms`, or none.
const LogMark* mark_old_enough(const std::vector<LogMark>& marks, std::uint64_t now_ms,
                               std::uint64_t retention_ms) {
  const LogMark* found = nullptr;
  for (const LogMark& m : marks) {
    if (m.time_ms <= now_ms && now_ms - m.time_ms >= retention_ms) found = &m;
  }
  return found;
}

}  // namespace

store::Status read_log_positions(const store::Store& store, std::vector<std::uint64_t>* out) {
  std::optional<store::ReadTxn> txn;
  if (store::Status s = store.begin_read(&txn); !s.ok()) return s;
  out->assign(store.shards(), 0);
  for (std::uint32_t shard = 0; shard < store.shards(); ++shard) {
    store::LogPosition p;
    // A shard whose log this store never applied is at 0.
    if (store::Status s = txn->log_position(shard, &p); !s.ok()) return s;
    (*out)[shard] = p.sequence;
  }
  return {};
}

Status read_log_floor(cluster::EtcdClient& etcd, const std::string& cluster, std::uint32_t shards,
                      std::vector<std::uint64_t>* out, std::int64_t* revision) {
  std::int64_t read_at = 0;
  store::Status s = cluster::read_log_floor(etcd, cluster, out, &read_at);
  if (s.code == store::Errc::corrupt) return Status::internal(s.message);
  if (!s.ok()) return Status::from(s);
  if (revision) *revision = read_at;
  if (read_at == 0) {
    out->assign(shards, 0);  // no key: nothing compacted yet
  } else if (out->size() != shards) {
    return Status::internal("etcd key " + cluster::log_floor_key(cluster) + " lists " +
                            std::to_string(out->size()) + " shards' positions, not " +
                            std::to_string(shards));
  }
  return {};
}

std::unique_ptr<StoreSnapshots> StoreSnapshots::open(
    const ClusterConfig& config, cluster::NatsConnection& nats, cluster::EtcdClient& etcd,
    const std::string& dir, std::chrono::milliseconds timeout, Status* status) {
  std::unique_ptr<StoreSnapshots> snapshots(new StoreSnapshots(config, etcd));
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  std::filesystem::create_directories(dir, ignored);
  snapshots->copy_dir_ = dir + "/copy";
  cluster::BucketSettings settings;
  settings.name = cluster::store_snapshot_bucket_name(config.name);
  settings.replicas = static_cast<int>(config.replicas);
  store::Status s;
  snapshots->files_ = BucketFiles::open(settings, nats, dir + "/files", timeout, &s);
  if (!snapshots->files_) {
    *status = Status::from(s).prefixed("store snapshots");
    return nullptr;
  }
  *status = {};
  return snapshots;
}

Status StoreSnapshots::newest(StoreSnapshotInfo* out, std::int64_t* revision) {
  const std::string key = cluster::store_snapshot_key(cluster_);
  std::optional<cluster::EtcdKeyValue> kv;
  if (store::Status s = etcd_.get(key, &kv); !s.ok()) return Status::from(s);
  if (revision) *revision = kv ? kv->mod_revision : 0;
  if (!kv) return Status::not_found("no store snapshot of cluster " + cluster_ + " yet");
  StoreSnapshotInfo info;
  try {
    const json j = json::parse(kv->value);
    info.blob = j.at("blob").get<std::string>();
    info.bytes = unsigned_of(j.at("bytes"), "bytes");
    info.node = j.at("node").get<std::string>();
    info.covers = read_mark(j, shards_);
    const json& marks = j.at("marks");
    if (!marks.is_array() || marks.size() > kMaxMarks)
      throw std::invalid_argument("marks are not a list of at most " + std::to_string(kMaxMarks));
    for (const json& m : marks) info.marks.push_back(read_mark(m, shards_));
  } catch (const std::exception& e) {
    return Status::internal("etcd key " + key +
                            " is not a store snapshot's description: " + e.what());
  }
  store::BlobId id{};
  if (!store::from_hex(info.blob, &id) || info.bytes > kMaxBytes || info.node.size() > kMaxName) {
    return Status::internal("etcd key " + key + " describes a snapshot no node would publish");
  }
  for (const LogMark& m : info.marks) {
    for (std::uint32_t s = 0; s < shards_; ++s) {
      if (m.positions[s] > info.covers.positions[s])
        return Status::internal("etcd key " + key + " has a mark ahead of its snapshot");
    }
  }
  *out = std::move(info);
  return {};
}

Status StoreSnapshots::publish(const store::Store& store, std::uint64_t now_ms,
                               std::uint64_t retention_ms) {
  auto failed = [this](Status s) {
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    return s.prefixed("publishing a store snapshot");
  };
  // Read before the copy begins: the copy holds at least these records.
  LogMark mine{.time_ms = now_ms, .positions = {}};
  if (store::Status s = read_log_positions(store, &mine.positions); !s.ok())
    return failed(Status::from(s));
  if (mine.positions.size() != shards_) {
    return failed(Status::internal("the store has " + std::to_string(mine.positions.size()) +
                                   " shards, the cluster " + std::to_string(shards_)));
  }
  std::error_code ec;
  std::filesystem::remove_all(copy_dir_, ec);
  std::filesystem::create_directories(copy_dir_, ec);
  if (ec) return failed(Status::internal("cannot make " + copy_dir_ + ": " + ec.message()));
  store::BlobId blob{};
  std::uint64_t bytes = 0;
  Status s = Status::from(store.copy_to(copy_dir_));
  // The copy is made for the upload: moved into the staging store, not
  // copied again (a store of gigabytes is written once, not twice).
  if (s.ok())
    s = Status::from(files_->upload_taking(copy_dir_ + "/data.mdb", kMaxBytes, &blob, &bytes));
  std::filesystem::remove_all(copy_dir_, ec);
  if (!s.ok()) return failed(s);

  StoreSnapshotInfo before;
  std::int64_t revision = 0;
  Status found = newest(&before, &revision);
  if (!found.ok() && found.code != Code::not_found && found.code != Code::internal)
    return failed(found);
  // A key no node would write is replaced, marks and all: compaction then
  // starts again from this snapshot's.
  const bool replaces = found.ok();
  auto withdraw = [&](Status why) {
    if (!replaces || before.blob != store::to_hex(blob)) (void)files_->bucket().remove(blob);
    return failed(std::move(why));
  };
  // The newest snapshot must let every store behind the floor catch up.
  std::vector<std::uint64_t> floor;
  if (Status f = read_log_floor(etcd_, cluster_, shards_, &floor); !f.ok()) return withdraw(f);
  for (std::uint32_t shard = 0; shard < shards_; ++shard) {
    if (mine.positions[shard] < floor[shard]) {
      return withdraw(Status::conflict("this store holds shard " + std::to_string(shard) + " to " +
                                       std::to_string(mine.positions[shard]) +
                                       ", below the log's floor " + std::to_string(floor[shard])));
    }
  }
  if (replaces) {
    for (std::uint32_t shard = 0; shard < shards_; ++shard) {
      if (before.covers.positions[shard] > mine.positions[shard]) {
        return withdraw(Status::conflict(
            "node " + before.node + "'s snapshot covers shard " + std::to_string(shard) + " to " +
            std::to_string(before.covers.positions[shard]) + " and this store holds " +
            std::to_string(mine.positions[shard])));
      }
    }
  }
  std::vector<LogMark> marks = replaces ? before.marks : std::vector<LogMark>{};
  marks.push_back(mine);
  // Compaction reads the newest mark older than the retention: those before
  // it are of no more use.
  if (const LogMark* oldest = mark_old_enough(marks, now_ms, retention_ms))
    marks.erase(marks.begin(), marks.begin() + (oldest - marks.data()));
  if (marks.size() > kMaxMarks) marks.erase(marks.begin(), marks.end() - kMaxMarks);
  json j = mark_json(mine);
  j["blob"] = store::to_hex(blob);
  j["bytes"] = bytes;
  j["node"] = node_;
  j["marks"] = json::array();
  for (const LogMark& m : marks) j["marks"].push_back(mark_json(m));
  bool replaced = false;
  if (store::Status put =
          etcd_.replace(cluster::store_snapshot_key(cluster_), j.dump(), revision, &replaced);
      !put.ok()) {
    return withdraw(Status::from(put));
  }
  if (!replaced) return withdraw(Status::conflict("another node published one meanwhile"));
  published_.fetch_add(1, std::memory_order_relaxed);
  store::BlobId old{};
  if (replaces && before.blob != j["blob"] && store::from_hex(before.blob, &old)) {
    // A node fetching it meanwhile fails (its description or a chunk gone)
    // and takes this one (fetch_snapshot in cluster_store_restore.cpp).
    if (store::Status r = files_->bucket().remove(old); !r.ok()) {
      spdlog::warn("cluster: removing the store snapshot it replaced from bucket {}: {}",
                   files_->bucket().name(), r.message);
    }
  }
  return {};
}

Status StoreSnapshots::compact(cluster::JetStream& log, std::uint64_t now_ms,
                               std::uint64_t retention_ms, std::uint64_t* purged) {
  *purged = 0;
  auto failed = [this](Status s) {
    compaction_failures_.fetch_add(1, std::memory_order_relaxed);
    return s.prefixed("compacting the log");
  };
  StoreSnapshotInfo snapshot;
  if (Status s = newest(&snapshot); !s.ok())
    return s.code == Code::not_found ? Status::success() : failed(s);
  const LogMark* mark = mark_old_enough(snapshot.marks, now_ms, retention_ms);
  if (!mark) return {};
  std::vector<std::uint64_t> floor;
  std::int64_t revision = 0;
  if (Status s = read_log_floor(etcd_, cluster_, shards_, &floor, &revision); !s.ok())
    return failed(s);
  std::vector<std::uint64_t> raised = floor;
  for (std::uint32_t shard = 0; shard < shards_; ++shard)
    raised[shard] = std::max(raised[shard], mark->positions[shard]);
  // The floor first: from now on a node below it takes the snapshot rather
  // than reading records that may be gone.
  if (raised != floor) {
    bool replaced = false;
    const std::string value = cluster::log_floor_value(raised);
    if (store::Status s =
            etcd_.replace(cluster::log_floor_key(cluster_), value, revision, &replaced);
        !s.ok()) {
      return failed(Status::from(s));
    }
    if (!replaced) return failed(Status::conflict("the log's floor changed meanwhile"));
  }
  const std::string stream = cluster::log_stream(cluster_);
  for (std::uint32_t shard = 0; shard < shards_; ++shard) {
    const std::string subject = cluster::shard_subject(cluster_, shard);
    std::uint64_t last = 0, n = 0;
    store::Status s = log.last_sequence(stream, subject, &last);
    // The subject's last record stays: the owner's next append is fenced on it.
    if (s.ok()) s = log.purge_below(stream, subject, std::min(raised[shard] + 1, last), &n);
    if (!s.ok()) return failed(Status::from(s).prefixed("shard " + std::to_string(shard)));
    *purged += n;
    purged_.fetch_add(n, std::memory_order_relaxed);
  }
  compactions_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Status StoreSnapshots::fetch(const StoreSnapshotInfo& snapshot, const std::string& path) {
  store::BlobId id{};
  if (!store::from_hex(snapshot.blob, &id)) return Status::internal("a snapshot names no blob");
  if (store::Status s = files_->fetch(id, snapshot.bytes, path); !s.ok()) {
    return Status::from(s).prefixed("fetching node " + snapshot.node + "'s store snapshot");
  }
  return {};
}

Status StoreSnapshots::remove_unnamed(std::uint64_t before_ms, std::uint64_t* removed) {
  std::unordered_set<std::string> named;
  StoreSnapshotInfo newest_one;
  Status s = newest(&newest_one);
  if (s.ok()) {
    named.insert(newest_one.blob);
  } else if (s.code != Code::not_found) {
    // Unreadable, the key may still name a file: nothing goes this time.
    *removed = 0;
    return s;
  }
  return Status::from(files_->bucket().remove_unnamed(before_ms, named, removed));
}

StoreSnapshotCounters StoreSnapshots::counters() const {
  StoreSnapshotCounters c;
  c.published = published_.load(std::memory_order_relaxed);
  c.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  c.compactions = compactions_.load(std::memory_order_relaxed);
  c.compaction_failures = compaction_failures_.load(std::memory_order_relaxed);
  c.purged_records = purged_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace memos::kernel
