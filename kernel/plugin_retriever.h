// plugin_retriever.h — a retriever plugin as memosd uses it: one collection
// per cube, kept current with every committed change, searched with the
// filters of a request, snapshotted to disk and reopened at start.
//
// Every method is thread-safe (the plugin serialises what it must) and
// returns "" or why the call failed: the plugin's own error, a timeout, a
// crashed isolated host (then `retryable`), or a reply that does not decode.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/status.h"
#include "memcube/store.h"
#include "memos/vocabulary.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

using memos::SearchMode;

// What a search may return (plugin.capnp's Filter, memos(7)).
struct RetrievalFilter {
  std::vector<std::string> all_tags;
  std::vector<std::string> any_tags;
  std::vector<store::MetaEntry> meta;  // every entry must match
  std::vector<memos::Tier> tiers;      // empty: any
  std::vector<memos::State> states;    // empty: active
  std::int64_t as_of_ms = 0;           // 0: now
  std::int64_t now_ms = 0;
  std::int64_t recorded_from_ms = 0;  // 0: no bound
  std::int64_t recorded_to_ms = 0;
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_to_ms = 0;
};

struct CollectionState {
  std::uint64_t version = 0;  // the cube version it covers
  std::uint64_t documents = 0;
  std::string detail;
};

struct RankedHit {
  std::uint64_t id = 0;
  float score = 0;
};

// One item as a retriever sees it.
struct IndexedItem {
  const store::Item* item = nullptr;
  std::span<const float> vector;  // may be empty for retrievers without vectors
  bool attributes_only = false;   // only its attributes changed
};

// How a fuser ranks (plugin.capnp's FuseRequest; memosd.conf's [search]).
struct FusionParams {
  float rrf_k = 60;
  float recency_weight = 0;  // 0: off
  std::int64_t recency_half_life_ms = 0;
  float importance_weight = 0;  // 0: off
  float retention_weight = 0;   // 0: off
  float mmr_lambda = 0;         // 0 or >= 1: no diversification
};

// What a fuser (the hybrid plugin) combines.
struct FuseInput {
  struct List {
    std::string name;
    float weight = 1;
    std::vector<RankedHit> hits;
  };
  struct Candidate {
    std::uint64_t id = 0;
    std::int64_t recorded_at_ms = 0;
    float importance = 0;
    float retention = 0;        // R = exp(-t / S), with retention_weight
    std::vector<float> vector;  // for MMR, may be empty
  };
  std::uint32_t k = 10;
  std::vector<List> lists;
  std::vector<Candidate> candidates;
  std::int64_t now_ms = 0;
  FusionParams params;
};

class PluginRetriever {
 public:
  PluginRetriever(std::string name, std::shared_ptr<plugins::PluginChannel> channel,
                  std::chrono::milliseconds timeout, std::vector<SearchMode> modes)
      : name_(std::move(name)),
        channel_(std::move(channel)),
        timeout_(timeout),
        modes_(std::move(modes)) {}

  const std::string& name() const { return name_; }
  // The search modes it offers (of those memosd knows).
  const std::vector<SearchMode>& modes() const { return modes_; }
  // Changes when the plugin lost its collections (its isolated host died);
  // PluginChannel::incarnation().
  std::uint64_t incarnation() const { return channel_->incarnation(); }
  // Deaths the plugin brought on itself (PluginChannel::plugin_faults()).
  std::uint64_t plugin_faults() const { return channel_->plugin_faults(); }
  // "running", or what keeps it from running (PluginChannel::health()).
  std::string health() const { return channel_->health(); }

  // Each is thread-safe. Errors (call_plugin): unavailable, retryable, when
  // the plugin's host died or timed out and restarts; internal for the
  // plugin's own error or a reply that does not decode.
  // Opens (or creates) the collection of a cube, loading its snapshot.
  // `expected_documents`: how many are about to be sent (a rebuild).
  Status open(store::CubeId cube, std::uint32_t dimension, std::string_view language,
              CollectionState* state, std::uint64_t expected_documents = 0) const;
  // Adds or replaces items; the collection then covers cube `version`.
  // `no_wait`: memosd is stopping, the retriever takes them without
  // waiting for its background work (IndexRequest.noWait).
  Status index(store::CubeId cube, std::span<const IndexedItem> items, std::uint64_t version,
               bool no_wait = false) const;
  Status remove(store::CubeId cube, std::span<const std::uint64_t> ids,
                std::uint64_t version) const;
  // Writes the collection's snapshot.
  Status save(store::CubeId cube, CollectionState* state) const;
  // Forgets the collection and deletes its snapshot.
  Status drop(store::CubeId cube) const;
  // Plugin ABI minor 3 (plugin.capnp, SnapshotFile). Saves the open
  // collection and writes it as one file at `path`; `*state` is what the
  // file holds. Errors: as above; a plugin of an older minor fails it.
  Status export_snapshot(store::CubeId cube, const std::string& path, CollectionState* state) const;
  // Makes the file at `path` (exported by this plugin, here or on another
  // node) the snapshot of `cube`, whose collection must not be open; the
  // next open() loads it. A file the plugin would not load is refused and
  // changes nothing. Errors: as above.
  Status import_snapshot(store::CubeId cube, const std::string& path, CollectionState* state) const;
  // Where memosd asks export_snapshot for a file (`use` "export") and puts
  // one for import_snapshot ("import"): <state_dir>/transfer/<cube>.<use>,
  // where the plugin (even isolated) reaches it; "" when it keeps no state
  // on disk.
  std::string transfer_path(store::CubeId cube, std::string_view use) const;
  // The plugin's state_dir (set by whoever loads it).
  void set_state_dir(std::string dir) { state_dir_ = std::move(dir); }
  // The k best items `filter` admits, best first. `query` for lexical
  // retrievers, `vector` for dense ones.
  Status search(store::CubeId cube, std::string_view query, std::span<const float> vector,
                std::uint32_t k, const RetrievalFilter& filter, std::vector<RankedHit>* hits) const;
  // Fuses ranked lists (a fuser plugin).
  Status fuse(const FuseInput& input, std::vector<RankedHit>* hits) const;

 private:
  Status collection_call(const std::string& request, CollectionState* state) const;

  std::string name_;
  std::shared_ptr<plugins::PluginChannel> channel_;
  std::chrono::milliseconds timeout_;
  std::vector<SearchMode> modes_;
  std::string state_dir_;
};

}  // namespace memos::kernel
