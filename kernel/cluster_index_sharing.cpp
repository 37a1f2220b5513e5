#include "kernel/cluster_index_sharing.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <unordered_set>
#include <vector>

#include "cluster/names.h"

namespace memos::kernel {
namespace {

using json = nlohmann::json;

// Bounds on what a description may say: names as memosd makes them, and a
// file no larger than the bucket takes.
constexpr std::size_t kMaxName = 256;
constexpr std::uint64_t kMaxBytes = 64ull << 30;

std::string bounded(const json& j, const char* field) {
  std::string s = j.at(field).get<std::string>();
  if (s.size() > kMaxName) throw std::invalid_argument(std::string(field) + " is too long");
  return s;
}

}  // namespace

std::unique_ptr<ClusterIndexSharing> ClusterIndexSharing::open(
    const std::string& cluster, int replicas, cluster::NatsConnection& nats,
    cluster::EtcdClient& etcd, const std::string& dir, std::chrono::milliseconds timeout,
    Status* status) {
  cluster::BucketSettings settings;
  settings.name = cluster::index_bucket_name(cluster);
  settings.replicas = replicas;
  std::unique_ptr<ClusterIndexSharing> sharing(
      new ClusterIndexSharing(cluster, settings, nats, etcd, dir, timeout));
  Status s = sharing->open_bucket();
  // Silent JetStream: opened on a later use. Anything else (the staging
  // folder, a bucket of another shape) will not mend by waiting.
  if (!s.ok() && s.code != Code::unavailable) {
    *status = s;
    return nullptr;
  }
  *status = {};
  return sharing;
}

ClusterIndexSharing::ClusterIndexSharing(std::string cluster, cluster::BucketSettings settings,
                                         cluster::NatsConnection& nats, cluster::EtcdClient& etcd,
                                         std::string dir, std::chrono::milliseconds timeout)
    : cluster_(std::move(cluster)),
      settings_(std::move(settings)),
      nats_(nats),
      etcd_(etcd),
      dir_(std::move(dir)),
      timeout_(timeout) {}

Status ClusterIndexSharing::open_bucket() {
  return try_open(false);
}

Status ClusterIndexSharing::try_open(bool after_pause) {
  if (bucket_open()) return {};
  std::unique_lock lock(open_mutex_, std::try_to_lock);
  if (!lock.owns_lock())
    return Status::unavailable("index snapshots: bucket " + settings_.name + " is being opened");
  if (bucket_open()) return {};
  if (after_pause && Clock::now() < next_try_) return last_failure_;
  store::Status s;
  files_ = BucketFiles::open(settings_, nats_, dir_, timeout_, &s);
  if (!files_) {
    next_try_ = Clock::now() + 5 * timeout_;
    last_failure_ = Status::from(s).prefixed("index snapshots (not shared until the bucket opens)");
    return last_failure_;
  }
  opened_.store(files_.get(), std::memory_order_release);
  spdlog::info("index snapshots: bucket {} open; indexes are shared", settings_.name);
  return {};
}

BucketFiles* ClusterIndexSharing::files(Status* status) {
  if (BucketFiles* f = opened_.load(std::memory_order_acquire)) return f;
  *status = try_open(true);
  return opened_.load(std::memory_order_acquire);
}

std::string ClusterIndexSharing::key(store::CubeId cube, const std::string& retriever) const {
  return cluster::index_snapshot_key(cluster_, cube, retriever);
}

Status ClusterIndexSharing::find(store::CubeId cube, const std::string& retriever,
                                 SharedSnapshot* out) {
  std::optional<cluster::EtcdKeyValue> kv;
  if (store::Status s = etcd_.get(key(cube, retriever), &kv); !s.ok()) return Status::from(s);
  if (!kv)
    return Status::not_found("no shared " + retriever + " snapshot of cube " +
                             std::to_string(cube));
  SharedSnapshot s;
  try {
    const json j = json::parse(kv->value);
    s.cube = j.at("cube").get<store::CubeId>();
    s.retriever = bounded(j, "retriever");
    s.version = j.at("version").get<std::uint64_t>();
    s.documents = j.at("documents").get<std::uint64_t>();
    s.embedder = bounded(j, "embedder");
    s.dimension = j.at("dimension").get<std::uint32_t>();
    s.language = bounded(j, "language");
    s.node = bounded(j, "node");
    s.blob = bounded(j, "blob");
    s.bytes = j.at("bytes").get<std::uint64_t>();
  } catch (const std::exception& e) {
    return Status::internal("etcd key " + key(cube, retriever) +
                            " is not a shared snapshot's description: " + e.what());
  }
  store::BlobId id{};
  if (s.cube != cube || s.retriever != retriever || !store::from_hex(s.blob, &id) ||
      s.bytes > kMaxBytes) {
    return Status::internal("etcd key " + key(cube, retriever) +
                            " describes another snapshot, or one no node would share");
  }
  *out = std::move(s);
  return {};
}

Status ClusterIndexSharing::fetch(const SharedSnapshot& snapshot, const std::string& path) {
  store::BlobId id{};
  if (!store::from_hex(snapshot.blob, &id)) {
    return Status::internal("a shared snapshot names no blob");
  }
  Status opened;
  BucketFiles* files = this->files(&opened);
  if (files == nullptr) {
    fetch_failures_.fetch_add(1, std::memory_order_relaxed);
    return opened;
  }
  if (store::Status s = files->fetch(id, snapshot.bytes, path); !s.ok()) {
    fetch_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::from(s).prefixed("fetching the " + snapshot.retriever + " snapshot of cube " +
                                    std::to_string(snapshot.cube));
  }
  return {};
}

Status ClusterIndexSharing::publish(SharedSnapshot snapshot, const std::string& path) {
  Status opened;
  BucketFiles* files = this->files(&opened);
  if (files == nullptr) {
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    return opened;
  }
  store::BlobId id{};
  std::uint64_t bytes = 0;
  store::Status s = files->upload(path, kMaxBytes, &id, &bytes);
  snapshot.blob = store::to_hex(id);
  snapshot.bytes = bytes;
  // The snapshot it replaces, whose file then goes from the bucket.
  SharedSnapshot before;
  const bool replaces = s.ok() && find(snapshot.cube, snapshot.retriever, &before).ok() &&
                        before.blob != snapshot.blob;
  if (s.ok()) {
    const json j = {{"cube", snapshot.cube},         {"retriever", snapshot.retriever},
                    {"version", snapshot.version},   {"documents", snapshot.documents},
                    {"embedder", snapshot.embedder}, {"dimension", snapshot.dimension},
                    {"language", snapshot.language}, {"node", snapshot.node},
                    {"blob", snapshot.blob},         {"bytes", snapshot.bytes}};
    s = etcd_.put(key(snapshot.cube, snapshot.retriever), j.dump());
  }
  if (!s.ok()) {
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::from(s);
  }
  published_.fetch_add(1, std::memory_order_relaxed);
  if (replaces) {
    store::BlobId old{};
    // A node fetching the old one meanwhile fails and looks again.
    if (store::from_hex(before.blob, &old)) {
      if (store::Status r = files->bucket().remove(old); !r.ok()) {
        spdlog::warn("cube {}: removing the {} snapshot it replaced from bucket {}: {}",
                     snapshot.cube, snapshot.retriever, settings_.name, r.message);
      }
    }
  }
  return {};
}

Status ClusterIndexSharing::remove_unnamed(std::uint64_t before_ms, std::uint64_t* removed) {
  *removed = 0;
  Status opened;
  BucketFiles* files = this->files(&opened);
  if (files == nullptr) return opened;
  std::vector<cluster::EtcdKeyValue> keys;
  if (store::Status s = etcd_.list(cluster::index_snapshot_prefix(cluster_), &keys); !s.ok())
    return Status::from(s);
  std::unordered_set<std::string> named;
  for (const cluster::EtcdKeyValue& kv : keys) {
    // A key that is no description keeps nothing: its file is unreachable.
    const json j = json::parse(kv.value, nullptr, false);
    if (j.is_object() && j.contains("blob") && j["blob"].is_string())
      named.insert(j["blob"].get<std::string>());
  }
  return Status::from(files->bucket().remove_unnamed(before_ms, named, removed));
}

void ClusterIndexSharing::count_import(bool taken) {
  (taken ? imported_ : refused_).fetch_add(1, std::memory_order_relaxed);
}

IndexSharingCounters ClusterIndexSharing::counters() const {
  IndexSharingCounters c;
  c.published = published_.load(std::memory_order_relaxed);
  c.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  c.imported = imported_.load(std::memory_order_relaxed);
  c.refused = refused_.load(std::memory_order_relaxed);
  c.fetch_failures = fetch_failures_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace memos::kernel
