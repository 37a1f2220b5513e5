// faiss_retriever.h — the faiss-retriever plugin: plugin.capnp retriever
// requests (open, index, remove, search, save, drop, exportSnapshot,
// importSnapshot, describe) turned into calls on one DenseCollection per
// cube.
//
// Lives in the static library (not plugin.cpp) so tests and a kernel
// integrator can drive it without loading the .so.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "memos/plugin_sdk.h"
#include "plugins/faiss-retriever/dense_collection.h"
#include "plugins/faiss-retriever/index_settings.h"

namespace memos::faiss_retriever {

struct RetrieverSettings {
  std::string state_dir;  // empty: no snapshots
  IndexSettings index;
};

// Reads [settings]: state_dir, hnsw_threshold, hnsw_m, ef_construction,
// ef_search, tombstone_ratio, fresh_limit. Throws std::invalid_argument naming a bad
// value (create() then fails with MEMOS_ERR_INVALID).
RetrieverSettings read_settings(const plugin_sdk::Config& config);

class FaissRetriever final : public plugin_sdk::Plugin {
 public:
  explicit FaissRetriever(const plugin_sdk::Config& config);

  memos_status handle(const plugin_sdk::Request& request, plugin_sdk::Reply reply) override;

  // The open collection `id`, or null. For tests and diagnostics.
  std::shared_ptr<DenseCollection> collection(std::uint64_t id) const;
  const RetrieverSettings& settings() const { return settings_; }

 private:
  memos_status describe(plugin_sdk::Reply reply);
  memos_status open(plugin_wire::OpenRequest::Reader request, plugin_sdk::Reply reply);
  memos_status index(plugin_wire::IndexRequest::Reader request, plugin_sdk::Reply reply);
  memos_status remove(plugin_wire::RemoveRequest::Reader request, plugin_sdk::Reply reply);
  memos_status search(plugin_wire::SearchRequest::Reader request, plugin_sdk::Reply reply);
  memos_status save(std::uint64_t id, plugin_sdk::Reply reply);
  memos_status drop(std::uint64_t id, plugin_sdk::Reply reply);
  // The open collection's snapshot as the file `path` (a hard link to
  // <state_dir>/<id>.dense, else a copy). Errors: invalid (not open,
  // dropped meanwhile, a relative path), unsupported (no state_dir),
  // resource (the save or the file failed).
  memos_status export_snapshot(plugin_wire::SnapshotFile::Reader request, plugin_sdk::Reply reply);
  // The file `path`, checked as open checks a snapshot (any dimension), made
  // <state_dir>/<id>.dense. Errors: invalid (the collection is open, a
  // relative path, the file refused: nothing changed), unsupported (no
  // state_dir), resource (the file checked could not be installed).
  // memosd does not open the collection while it imports it.
  memos_status import_snapshot(plugin_wire::SnapshotFile::Reader request, plugin_sdk::Reply reply);

  const RetrieverSettings settings_;
  mutable std::mutex mutex_;  // guards collections_ (not the collections)
  // shared_ptr: a call keeps its collection alive through a concurrent drop.
  std::map<std::uint64_t, std::shared_ptr<DenseCollection>> collections_;
};

}  // namespace memos::faiss_retriever
