// index_sharing.h — index snapshots shared between the nodes of a cluster
// (docs/scale-out.md, "Index snapshots"): a cube's collection in one
// retriever, as the one file its plugin exports (plugin.capnp,
// exportSnapshot), put where every node can fetch it, so that a node that
// has none of its own imports it and catches up from its version instead
// of embedding and indexing every item again.
//
// An interface, so that the indexes (IndexSet) do not depend on the engines
// that hold the files (kernel/cluster_index_sharing.h: the object store
// bucket and etcd). Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "kernel/status.h"
#include "memcube/store_types.h"

namespace memos::kernel {

// One shared snapshot: whose, what it covers, and what made it. A node
// takes it only where its own cube and embedder match (IndexSet::restore).
struct SharedSnapshot {
  store::CubeId cube = 0;
  std::string retriever;        // the plugin's name, e.g. "faiss-retriever"
  std::uint64_t version = 0;    // the cube version its contents cover
  std::uint64_t documents = 0;  // what the exporting retriever held
  std::string embedder;         // the cube's embedder model (dense vectors are its)
  std::uint32_t dimension = 0;
  std::string language;  // the cube's stemming language
  std::string node;      // the node that shared it (for people)
  // Filled in by publish(): the file's content key and size.
  std::string blob;  // 64 hex digits
  std::uint64_t bytes = 0;
};

// Counts since the node started (memctl metrics).
struct IndexSharingCounters {
  std::uint64_t published = 0, publish_failures = 0;
  std::uint64_t imported = 0;  // fetched and taken by the retriever
  std::uint64_t refused = 0;   // fetched or found, and not taken (why is logged)
  std::uint64_t fetch_failures = 0;
};

class SharedIndexes {
 public:
  virtual ~SharedIndexes() = default;
  // The newest snapshot of `cube`'s collection in `retriever`. Errors:
  // not_found (none shared), unavailable (retryable), corrupt (what the
  // engine holds is not a description this file's implementation wrote).
  virtual Status find(store::CubeId cube, const std::string& retriever, SharedSnapshot* out) = 0;
  // Puts the snapshot's file at `path` (created or replaced), its bytes
  // checked against the content key and size `snapshot` names. Errors:
  // not_found (removed meanwhile: a newer one replaced it), unavailable,
  // corrupt (the bytes are not the snapshot's), io, storage_full.
  virtual Status fetch(const SharedSnapshot& snapshot, const std::string& path) = 0;
  // Shares the file at `path` as `snapshot` (its blob and bytes are filled
  // in here), replacing the cube's previous one in that retriever, whose
  // file is removed. Errors: unavailable, corrupt, io, invalid (not a
  // regular file, or larger than the engines take).
  virtual Status publish(SharedSnapshot snapshot, const std::string& path) = 0;
  // Counts an outcome the caller saw (imported, refused) beside those the
  // implementation counts itself.
  virtual void count_import(bool taken) = 0;
  virtual IndexSharingCounters counters() const = 0;
};

}  // namespace memos::kernel
