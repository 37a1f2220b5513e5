// bench-blob-share: what sharing a blob (a KV state, an adapter) through the
// cluster's bucket costs (docs/scale-out.md, "Blobs shared";
// cluster/blob_bucket.h). For each size, on JetStream streams of one and of
// three replicas:
//   put        — BlobStore::put on the node that made the blob: the local
//                fsynced file, then its upload, acknowledged by a quorum;
//   fetch      — make_local on another node: the download into its blob
//                store, checked against the digest (the extra cost of a KV
//                restore on a node that did not store the state);
//   local_put, local_read — the baseline: put into a store that shares
//                nothing, and reading and checking a local file as a
//                restore on the storing node does (BlobStore::check).
// The engines are real nats-server processes on 127.0.0.1, so the network
// between machines is not in the figures. First, with no engines, staging a
// file made only for the upload (a store snapshot's copy): copied in against
// taken in (blob-share-staging).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "bench/bench_util.h"
#include "cluster/blob_bucket.h"
#include "tests/support/engine_servers.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::ms_since;
using memos::store::BlobId;
using memos::store::BlobStore;
using namespace memos::cluster;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: bench-blob-share [--sizes-mb 1,16,64] [--repeats N] [--chunk-kb KB]\n";

struct Options {
  std::vector<std::size_t> sizes_mb = {1, 16, 64};
  std::size_t repeats = 3;
  std::size_t chunk_kb = BucketSettings{}.chunk_bytes >> 10;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  memos::bench::read_options(
      argc, argv, "benchmarks sharing blobs through the cluster's bucket against local ones",
      [&](std::string_view flag, std::string_view value) {
        if (flag == "--memosd") return true;  // scripts/bench passes it; not used here
        if (flag == "--sizes-mb") {
          opts.sizes_mb = memos::bench::parse_positive_list(flag, value);
        } else if (flag == "--repeats") {
          opts.repeats = memos::bench::parse_positive(flag, value);
        } else if (flag == "--chunk-kb") {
          opts.chunk_kb = memos::bench::parse_positive(flag, value);
        } else {
          return false;
        }
        return true;
      });
  return opts;
}

void require(const Status& s, std::string_view what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.message);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A node's blob store, sharing through its own handle on the bucket (or
// not at all).
struct Node {
  memos::testing::TempDir dir;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<BlobBucket> bucket;
  Node(NatsConnection* nats, int replicas, std::size_t chunk_kb) {
    Status s;
    blobs = BlobStore::open(dir.path() + "/blobs", &s);
    require(s, "opening a blob store");
    if (!nats) return;
    BucketSettings settings;
    settings.name = "BENCH_R" + std::to_string(replicas);
    settings.replicas = replicas;
    settings.chunk_bytes = chunk_kb << 10;
    for (int i = 0; i < 150 && !bucket; ++i) {
      bucket = BlobBucket::open(settings, *nats, 5s, &s);
      if (!bucket && s.code == memos::store::Errc::unavailable) std::this_thread::sleep_for(200ms);
    }
    require(s, "opening the bucket");
    blobs->share_with(bucket.get());
  }
};

void run_mode(const Options& opts, int replicas) {
  memos::testing::NatsServers servers(replicas);
  if (!servers.start()) throw std::runtime_error("nats-server: " + servers.log(0));
  NatsOptions options;
  for (int i = 0; i < replicas; ++i) options.servers.push_back(servers.url(i));
  Status s;
  auto nats = NatsConnection::connect(options, &s);
  require(s, "connecting to NATS");
  std::mt19937_64 random(42);
  for (std::size_t mb : opts.sizes_mb) {
    std::vector<double> local_put, local_read, put, fetch;
    for (std::size_t r = 0; r < opts.repeats; ++r) {
      std::string bytes(mb << 20, '\0');
      for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        const std::uint64_t x = random();
        std::memcpy(bytes.data() + i, &x, 8);
      }
      Node alone(nullptr, replicas, opts.chunk_kb), maker(nats.get(), replicas, opts.chunk_kb),
          other(nats.get(), replicas, opts.chunk_kb);
      BlobId id;
      auto t = Clock::now();
      require(alone.blobs->put(bytes, &id), "local put");
      local_put.push_back(ms_since(t));
      std::uint64_t size = 0;
      t = Clock::now();
      require(alone.blobs->check(id, &size), "local read");
      local_read.push_back(ms_since(t));
      t = Clock::now();
      require(maker.blobs->put(bytes, &id), "shared put");
      put.push_back(ms_since(t));
      t = Clock::now();
      require(other.blobs->make_local(id, bytes.size()), "fetch");
      fetch.push_back(ms_since(t));
    }
    JsonLine()
        .str("bench", "blob-share")
        .count("replicas", static_cast<std::uint64_t>(replicas))
        .count("size_mb", mb)
        .count("repeats", opts.repeats)
        .count("chunk_kb", opts.chunk_kb)
        .num("local_put_ms", median(local_put))
        .num("put_ms", median(put))
        .num("local_read_ms", median(local_read))
        .num("fetch_ms", median(fetch))
        .num("fetch_mb_per_s", static_cast<double>(mb) * 1000.0 / median(fetch), 1)
        .print();
  }
}

// Staging a file made only to be uploaded (a store snapshot's copy of the
// store, kernel/bucket_files.h): copied in (put_file, the baseline: the file
// written a second time while hashed) against taken in (take_file: hashed
// in one read, then renamed). No engines.
void run_staging(const Options& opts) {
  std::mt19937_64 random(7);
  for (std::size_t mb : opts.sizes_mb) {
    std::vector<double> copied, taken;
    for (std::size_t r = 0; r < opts.repeats; ++r) {
      Node node(nullptr, 1, opts.chunk_kb);
      auto file = [&](const std::string& name) {
        std::string bytes(mb << 20, '\0');
        for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
          const std::uint64_t x = random();
          std::memcpy(bytes.data() + i, &x, 8);
        }
        const std::string path = node.dir.path() + "/" + name;
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
      };
      BlobId id;
      std::uint64_t size = 0;
      const std::string a = file("copied"), b = file("taken");
      auto t = Clock::now();
      require(node.blobs->put_file(a, &id, &size), "put_file");
      copied.push_back(ms_since(t));
      t = Clock::now();
      require(node.blobs->take_file(b, &id, &size), "take_file");
      taken.push_back(ms_since(t));
    }
    JsonLine()
        .str("bench", "blob-share-staging")
        .count("size_mb", mb)
        .count("repeats", opts.repeats)
        .num("copy_in_ms", median(copied))
        .num("take_in_ms", median(taken))
        .print();
  }
}

void run(const Options& opts) {
  run_staging(opts);
  run_mode(opts, 1);
  run_mode(opts, 3);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-blob-share", kUsage, argc, argv, parse_options, run);
}
