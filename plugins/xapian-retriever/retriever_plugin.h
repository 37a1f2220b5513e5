// retriever_plugin.h — the xapian-retriever plugin: memosd's retriever
// requests (plugin.capnp) dispatched to one LexicalCollection per cube.
//
// Settings:
//   state_dir         folder of the databases, <state_dir>/<collection>.xapian;
//                     empty: in-memory databases, and save fails
//   k1, b             BM25 parameters (1.2, 0.75)
//   default_language  stemming language when open names none ("english")
//
// Threading: calls arrive from several worker threads at once. A mutex guards
// the map of collections (held through open and drop, which touch a
// collection's files; an import marks its collection instead, and open and
// drop of it answer busy meanwhile); each collection serializes its own
// calls. One background thread (MergeQueue) merges the collections' recent
// documents to disk when they ask; it is joined when the plugin is
// destroyed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "memos/plugin_sdk.h"
#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/merge_queue.h"

namespace memos::lexical {

class XapianRetriever final : public plugin_sdk::Plugin {
 public:
  // Throws std::invalid_argument for a bad setting.
  explicit XapianRetriever(const plugin_sdk::Config& config);

  memos_status handle(const plugin_sdk::Request& request, plugin_sdk::Reply reply) override;

 private:
  memos_status dispatch(const plugin_sdk::Request& request, plugin_sdk::Reply reply);
  memos_status describe(plugin_sdk::Reply reply);
  memos_status open(plugin_wire::OpenRequest::Reader request, plugin_sdk::Reply reply);
  memos_status index(plugin_wire::IndexRequest::Reader request, plugin_sdk::Reply reply);
  memos_status remove(plugin_wire::RemoveRequest::Reader request, plugin_sdk::Reply reply);
  memos_status search(plugin_wire::SearchRequest::Reader request, plugin_sdk::Reply reply);
  memos_status save(std::uint64_t collection, plugin_sdk::Reply reply);
  memos_status drop(std::uint64_t collection, plugin_sdk::Reply reply);
  // The open collection, saved, as the transfer file `path`
  // (LexicalCollection::export_to). Errors: invalid (not open, dropped
  // meanwhile, a relative path), unsupported (in memory), resource.
  memos_status export_snapshot(plugin_wire::SnapshotFile::Reader request, plugin_sdk::Reply reply);
  // The transfer file `path` made the database of the collection, which
  // must not be open (LexicalCollection::import_file). Errors: invalid (open,
  // a relative path, the file refused: nothing changed), unsupported (in
  // memory), busy (another import of it runs), resource.
  memos_status import_snapshot(plugin_wire::SnapshotFile::Reader request, plugin_sdk::Reply reply);

  // The open collection, or null.
  std::shared_ptr<LexicalCollection> find(std::uint64_t collection);
  std::string path_of(std::uint64_t collection) const;
  // The background merge of one collection (on the MergeQueue's thread).
  void merge(std::uint64_t collection);
  void log(int level, const std::string& message) const;

  std::string state_dir_;
  Bm25Params bm25_;
  std::string default_language_;

  std::mutex mutex_;  // guards collections_ and importing_
  std::map<std::uint64_t, std::shared_ptr<LexicalCollection>> collections_;
  std::set<std::uint64_t> importing_;  // whose database an import is replacing
  // Last: destroyed (its thread joined) first, while what it calls still is.
  MergeQueue merges_{[this](std::uint64_t collection) { merge(collection); }};
};

}  // namespace memos::lexical
