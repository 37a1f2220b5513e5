#include "plugins/faiss-retriever/faiss_retriever.h"

#include <faiss/utils/distances.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "plugins/faiss-retriever/query_path.h"
#include "plugins/faiss-retriever/snapshot_file.h"
#include "plugins/retriever-common/filter.h"

namespace memos::faiss_retriever {
namespace {

using plugin_sdk::Reply;
using plugin_wire::PluginRequest;

double get_ratio(const plugin_sdk::Config& config, const std::string& key, double fallback) {
  std::string text = config.get(key);
  if (text.empty()) return fallback;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !(v > 0.0 && v < 1.0)) {
    throw std::invalid_argument("setting " + key + " = '" + text +
                                "' is not a number strictly between 0 and 1");
  }
  return v;
}

std::string not_open(std::uint64_t id) {
  return "collection " + std::to_string(id) + " is not open";
}

const char* const kNoStateDir = "no state_dir: faiss-retriever keeps no snapshots";

// "" or why `path` cannot be a snapshot file's: memosd names an absolute
// path in <state_dir>/transfer/.
std::string check_path(const std::string& path) {
  if (!path.empty() && path.front() == '/') return "";
  return "path '" + path + "' is not absolute";
}

// What an imported snapshot holds, as open will load it.
CollectionState state_of(const Snapshot& s) {
  std::size_t live = s.fresh.size();
  std::size_t dead = 0;
  for (const auto& slot : s.slots) (slot.dead ? dead : live) += 1;
  std::string detail = std::string("imported snapshot: ") + kind_name(s.kind) + ", dimension " +
                       std::to_string(s.dimension) + ", " + std::to_string(live) + " documents, " +
                       std::to_string(dead) + " tombstones";
  if (!s.fresh.empty()) detail += ", " + std::to_string(s.fresh.size()) + " not in the graph yet";
  return {s.version, live, detail};
}

void set_state(Reply reply, std::uint64_t id, const CollectionState& state) {
  auto c = reply.initCollection();
  c.setCollection(id);
  c.setVersion(state.version);
  c.setDocuments(state.documents);
  c.setDetail(state.detail);
}

std::vector<float> floats(capnp::List<float>::Reader list) {
  std::vector<float> out(list.size());
  for (unsigned i = 0; i < list.size(); ++i) out[i] = list[i];
  return out;
}

}  // namespace

RetrieverSettings read_settings(const plugin_sdk::Config& config) {
  RetrieverSettings s;
  s.state_dir = config.get("state_dir");
  s.index.hnsw_threshold =
      static_cast<std::size_t>(config.get_int("hnsw_threshold", 20000, 0, 1LL << 31));
  s.index.hnsw_m = static_cast<int>(config.get_int("hnsw_m", 32, 2, 512));
  s.index.ef_construction = static_cast<int>(config.get_int("ef_construction", 64, 1, 1 << 16));
  s.index.ef_search = static_cast<int>(config.get_int("ef_search", 64, 1, 1 << 16));
  s.index.tombstone_ratio = get_ratio(config, "tombstone_ratio", 0.25);
  s.index.fresh_limit = static_cast<std::size_t>(config.get_int("fresh_limit", 2048, 0, 1LL << 24));
  s.index.bulk_min = static_cast<std::size_t>(config.get_int("bulk_min", 1024, 1, 1LL << 24));
  // 0 (the manifest's default): one per core of the host it runs on.
  if (int threads = static_cast<int>(config.get_int("merge_threads", 0, 0, 256)); threads > 0) {
    s.index.merge_threads = threads;
  }
  return s;
}

FaissRetriever::FaissRetriever(const plugin_sdk::Config& config)
    : settings_(read_settings(config)) {
  // Single queries take FAISS's own loop or BLAS, whichever is faster with
  // the FAISS linked (query_path.h). (The plugin carries its own copy of
  // FAISS, so this setting is its own.) Once: a second instance must not
  // write it while the first searches.
  static std::once_flag once;
  std::call_once(once,
                 [] { faiss::distance_compute_blas_threshold = single_query_blas_threshold(); });
}

std::shared_ptr<DenseCollection> FaissRetriever::collection(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = collections_.find(id);
  return it == collections_.end() ? nullptr : it->second;
}

memos_status FaissRetriever::handle(const plugin_sdk::Request& request, Reply reply) {
  switch (request.which()) {
    case PluginRequest::DESCRIBE:
      return describe(reply);
    case PluginRequest::OPEN:
      return open(request.getOpen(), reply);
    case PluginRequest::INDEX:
      return index(request.getIndex(), reply);
    case PluginRequest::REMOVE:
      return remove(request.getRemove(), reply);
    case PluginRequest::SEARCH:
      return search(request.getSearch(), reply);
    case PluginRequest::SAVE:
      return save(request.getSave(), reply);
    case PluginRequest::DROP:
      return drop(request.getDrop(), reply);
    case PluginRequest::EXPORT_SNAPSHOT:
      return export_snapshot(request.getExportSnapshot(), reply);
    case PluginRequest::IMPORT_SNAPSHOT:
      return import_snapshot(request.getImportSnapshot(), reply);
    default:
      return fail(reply, MEMOS_ERR_UNSUPPORTED,
                  "faiss-retriever answers describe, open, index, remove, search, save, drop, "
                  "exportSnapshot and importSnapshot");
  }
}

memos_status FaissRetriever::describe(Reply reply) {
  auto caps = reply.initCapabilities();
  caps.setKinds(MEMOS_KIND_RETRIEVER);
  auto r = caps.initRetriever();
  r.initModes(1).set(0, "dense");
  // Every Filter field: all are evaluated by retrieval::admits().
  static const char* const kFilters[] = {
      "allTags", "anyTags", "asOfMs", "includeArchived", "recordedFromMs", "recordedToMs",
      "nowMs",   "meta",    "tiers",  "states",          "validFromMs",    "validToMs"};
  auto filters = r.initFilters(std::size(kFilters));
  for (unsigned i = 0; i < std::size(kFilters); ++i) filters.set(i, kFilters[i]);
  return MEMOS_OK;
}

memos_status FaissRetriever::open(plugin_wire::OpenRequest::Reader request, Reply reply) {
  std::uint64_t id = request.getCollection();
  std::uint32_t dimension = request.getDimension();
  if (dimension < 1 || dimension > DenseCollection::kMaxDimension) {
    return fail(reply, MEMOS_ERR_INVALID,
                "dimension " + std::to_string(dimension) + " is not in 1.." +
                    std::to_string(DenseCollection::kMaxDimension));
  }
  auto answer_open = [&](const DenseCollection& c, const std::string& prefix) {
    if (c.dimension() != dimension) {
      return fail(reply, MEMOS_ERR_INVALID,
                  "collection " + std::to_string(id) + " is open with dimension " +
                      std::to_string(c.dimension()) + ", not " + std::to_string(dimension));
    }
    auto state = c.state();
    if (!prefix.empty()) state.detail = prefix + "; " + state.detail;
    set_state(reply, id, state);
    return MEMOS_OK;
  };
  // Already open: its current state (memosd asks this way for `cube show`).
  if (auto existing = collection(id)) return answer_open(*existing, "");
  // Load outside the map's lock: a large snapshot must not hold up calls
  // on other collections. If another open of the same id won the race, its
  // collection stays and this one is discarded.
  std::string detail;
  std::shared_ptr<DenseCollection> loaded = DenseCollection::open(
      id, dimension, settings_.index, settings_.state_dir, &detail, request.getExpectedDocuments());
  std::shared_ptr<DenseCollection> winner;
  {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = collections_.emplace(id, loaded);
    winner = it->second;
    if (!inserted) detail = "already open";
  }
  return answer_open(*winner, detail);
}

memos_status FaissRetriever::index(plugin_wire::IndexRequest::Reader request, Reply reply) {
  auto c = collection(request.getCollection());
  if (!c) return fail(reply, MEMOS_ERR_INVALID, not_open(request.getCollection()));
  std::vector<DocumentChange> changes;
  changes.reserve(request.getDocuments().size());
  for (auto d : request.getDocuments()) {
    DocumentChange& change = changes.emplace_back();
    change.id = d.getId();
    change.attributes_only = d.getAttributesOnly();
    if (!change.attributes_only) change.vector = floats(d.getVector());
    change.attributes = retrieval::attributes_of(d);
  }
  std::string why = c->index(std::move(changes), request.getVersion(), request.getNoWait());
  if (!why.empty()) return fail(reply, MEMOS_ERR_INVALID, why);
  reply.setDone();
  return MEMOS_OK;
}

memos_status FaissRetriever::remove(plugin_wire::RemoveRequest::Reader request, Reply reply) {
  auto c = collection(request.getCollection());
  if (!c) return fail(reply, MEMOS_ERR_INVALID, not_open(request.getCollection()));
  auto list = request.getIds();
  std::vector<std::uint64_t> ids;
  ids.reserve(list.size());
  for (auto id : list) ids.push_back(id);
  c->remove(ids, request.getVersion());
  reply.setDone();
  return MEMOS_OK;
}

memos_status FaissRetriever::search(plugin_wire::SearchRequest::Reader request, Reply reply) {
  auto c = collection(request.getCollection());
  if (!c) return fail(reply, MEMOS_ERR_INVALID, not_open(request.getCollection()));
  auto query = floats(request.getVector());
  std::string why = c->check_vector(query);
  if (!why.empty()) return fail(reply, MEMOS_ERR_INVALID, "query " + why);
  auto filter = retrieval::decode_filter(request.getFilter());
  auto hits = c->search(query, request.getK(), filter);
  auto out = reply.initHits(static_cast<unsigned>(hits.size()));
  for (unsigned i = 0; i < hits.size(); ++i) {
    out[i].setId(hits[i].id);
    out[i].setScore(hits[i].score);
  }
  return MEMOS_OK;
}

memos_status FaissRetriever::save(std::uint64_t id, Reply reply) {
  auto c = collection(id);
  if (!c) return fail(reply, MEMOS_ERR_INVALID, not_open(id));
  if (settings_.state_dir.empty()) return fail(reply, MEMOS_ERR_INVALID, kNoStateDir);
  CollectionState state;
  std::string why = c->save(settings_.state_dir, &state);
  // Disk full and friends: retryable, and the previous snapshot stays.
  if (!why.empty()) return fail(reply, MEMOS_ERR_RESOURCE, "cannot save: " + why);
  set_state(reply, id, state);
  return MEMOS_OK;
}

memos_status FaissRetriever::drop(std::uint64_t id, Reply reply) {
  // Dropping a collection that is not open still deletes its snapshot:
  // memosd drops what it finds stale, and a drop is safe to repeat.
  std::shared_ptr<DenseCollection> c;
  {
    std::lock_guard lock(mutex_);
    auto it = collections_.find(id);
    if (it != collections_.end()) {
      c = std::move(it->second);
      collections_.erase(it);
    }
  }
  if (c) c->mark_dropped();
  if (!settings_.state_dir.empty()) {
    std::string why = remove_snapshot(settings_.state_dir, id);
    if (!why.empty()) return fail(reply, MEMOS_ERR_RESOURCE, why);
  }
  reply.setDone();
  return MEMOS_OK;
}

memos_status FaissRetriever::export_snapshot(plugin_wire::SnapshotFile::Reader request,
                                             Reply reply) {
  std::uint64_t id = request.getCollection();
  auto c = collection(id);
  if (!c) return fail(reply, MEMOS_ERR_INVALID, not_open(id));
  if (settings_.state_dir.empty()) return fail(reply, MEMOS_ERR_UNSUPPORTED, kNoStateDir);
  std::string path = request.getPath();
  if (std::string why = check_path(path); !why.empty()) {
    return fail(reply, MEMOS_ERR_INVALID, why);
  }
  CollectionState state;
  std::string why = c->export_to(settings_.state_dir, path, &state);
  if (!why.empty()) {
    // A drop that won the race is memosd's doing; anything else the disk's.
    return fail(reply, c->dropped() ? MEMOS_ERR_INVALID : MEMOS_ERR_RESOURCE,
                "cannot export: " + why);
  }
  set_state(reply, id, state);
  return MEMOS_OK;
}

memos_status FaissRetriever::import_snapshot(plugin_wire::SnapshotFile::Reader request,
                                             Reply reply) {
  std::uint64_t id = request.getCollection();
  if (settings_.state_dir.empty()) return fail(reply, MEMOS_ERR_UNSUPPORTED, kNoStateDir);
  // An open collection would go on serving (and saving) what it holds.
  if (collection(id)) {
    return fail(reply, MEMOS_ERR_INVALID,
                "collection " + std::to_string(id) + " is open: drop it first");
  }
  std::string path = request.getPath();
  if (std::string why = check_path(path); !why.empty()) {
    return fail(reply, MEMOS_ERR_INVALID, why);
  }
  // Checked whole before anything changes: a refused file leaves the
  // collection's own snapshot, if any, as it was.
  Snapshot snapshot;
  std::string why = read_snapshot_file(path, id, 0, &snapshot);
  if (!why.empty()) return fail(reply, MEMOS_ERR_INVALID, why);
  // The request names no dimension; open could not take one out of range.
  if (snapshot.dimension < 1 || snapshot.dimension > DenseCollection::kMaxDimension) {
    return fail(reply, MEMOS_ERR_INVALID,
                "snapshot refused: dimension " + std::to_string(snapshot.dimension) +
                    " is not in 1.." + std::to_string(DenseCollection::kMaxDimension));
  }
  CollectionState state = state_of(snapshot);
  why = install_snapshot_file(settings_.state_dir, id, path, snapshot);
  if (!why.empty()) return fail(reply, MEMOS_ERR_RESOURCE, "cannot import: " + why);
  set_state(reply, id, state);
  return MEMOS_OK;
}

}  // namespace memos::faiss_retriever
