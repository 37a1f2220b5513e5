#include "plugins/xapian-retriever/retriever_plugin.h"

#include <charconv>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace memos::lexical {
namespace {

using plugin_sdk::Reply;
using plugin_sdk::Request;

double setting_double(const plugin_sdk::Config& config, const std::string& key, double fallback,
                      double lo, double hi) {
  std::string text = config.get(key);
  if (text.empty()) return fallback;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !(v >= lo && v <= hi)) {
    throw std::invalid_argument("setting " + key + " = '" + text + "' is not a number in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return v;
}

memos_status status_of(Error::Kind kind) {
  switch (kind) {
    case Error::Kind::invalid:
      return MEMOS_ERR_INVALID;
    case Error::Kind::unsupported:
      return MEMOS_ERR_UNSUPPORTED;
    case Error::Kind::resource:
      return MEMOS_ERR_RESOURCE;
    default:
      return MEMOS_ERR_INTERNAL;
  }
}

// "" or why `path` cannot be a transfer file's: memosd names an absolute
// path in <state_dir>/transfer/.
std::string check_path(const std::string& path) {
  if (!path.empty() && path.front() == '/') return "";
  return "path '" + path + "' is not absolute";
}

std::string being_imported(std::uint64_t collection) {
  return "collection " + std::to_string(collection) + " is being imported";
}

void set_state(plugin_wire::CollectionState::Builder out, std::uint64_t collection,
               const CollectionInfo& info) {
  out.setCollection(collection);
  out.setVersion(info.version);
  out.setDocuments(info.documents);
  out.setDetail(info.detail);
}

}  // namespace

XapianRetriever::XapianRetriever(const plugin_sdk::Config& config)
    : state_dir_(config.get("state_dir")) {
  bm25_.k1 = setting_double(config, "k1", 1.2, 0, 1000);
  bm25_.b = setting_double(config, "b", 0.75, 0, 1);
  try {
    default_language_ = canonical_language(config.get("default_language", "english"));
  } catch (const Error& e) {
    throw std::invalid_argument(std::string("setting default_language: ") + e.what());
  }
}

memos_status XapianRetriever::handle(const Request& request, Reply reply) {
  try {
    return dispatch(request, reply);
  } catch (const Error& e) {
    return fail(reply, status_of(e.kind()), e.what());
  } catch (const Xapian::Error& e) {  // LexicalCollection converts these; never expected here
    return fail(reply, MEMOS_ERR_INTERNAL, e.get_type() + std::string(": ") + e.get_msg());
  } catch (const std::bad_alloc&) {
    return fail(reply, MEMOS_ERR_RESOURCE, "out of memory");
  } catch (const std::filesystem::filesystem_error& e) {
    return fail(reply, MEMOS_ERR_RESOURCE, e.what());
  }
  // Anything else (kj::Exception from a malformed request, std::exception)
  // is caught by the SDK and answered as an internal error.
}

memos_status XapianRetriever::dispatch(const Request& request, Reply reply) {
  switch (request.which()) {
    case plugin_wire::PluginRequest::DESCRIBE:
      return describe(reply);
    case plugin_wire::PluginRequest::OPEN:
      return open(request.getOpen(), reply);
    case plugin_wire::PluginRequest::INDEX:
      return index(request.getIndex(), reply);
    case plugin_wire::PluginRequest::REMOVE:
      return remove(request.getRemove(), reply);
    case plugin_wire::PluginRequest::SEARCH:
      return search(request.getSearch(), reply);
    case plugin_wire::PluginRequest::SAVE:
      return save(request.getSave(), reply);
    case plugin_wire::PluginRequest::DROP:
      return drop(request.getDrop(), reply);
    case plugin_wire::PluginRequest::EXPORT_SNAPSHOT:
      return export_snapshot(request.getExportSnapshot(), reply);
    case plugin_wire::PluginRequest::IMPORT_SNAPSHOT:
      return import_snapshot(request.getImportSnapshot(), reply);
    default:
      return fail(reply, MEMOS_ERR_UNSUPPORTED,
                  "xapian-retriever answers describe, open, index, remove, search, save, drop, "
                  "exportSnapshot and importSnapshot");
  }
}

memos_status XapianRetriever::describe(Reply reply) {
  auto caps = reply.initCapabilities();
  caps.setKinds(MEMOS_KIND_RETRIEVER);
  auto r = caps.initRetriever();
  r.initModes(1).set(0, "lexical");
  static constexpr const char* kFilters[] = {
      "allTags", "anyTags", "asOfMs", "includeArchived", "recordedFromMs", "recordedToMs",
      "nowMs",   "meta",    "tiers",  "states",          "validFromMs",    "validToMs"};
  auto filters = r.initFilters(std::size(kFilters));
  for (unsigned i = 0; i < std::size(kFilters); ++i) filters.set(i, kFilters[i]);
  return MEMOS_OK;
}

std::string XapianRetriever::path_of(std::uint64_t collection) const {
  if (state_dir_.empty()) return "";
  return (std::filesystem::path(state_dir_) / (std::to_string(collection) + ".xapian")).string();
}

std::shared_ptr<LexicalCollection> XapianRetriever::find(std::uint64_t collection) {
  std::lock_guard lock(mutex_);
  auto it = collections_.find(collection);
  return it == collections_.end() ? nullptr : it->second;
}

void XapianRetriever::log(int level, const std::string& message) const {
  host().log(level, message);  // the SDK attaches the host right after construction
}

void XapianRetriever::merge(std::uint64_t id) {
  // By id, not by pointer: a collection dropped meanwhile is simply not
  // found (and one opened again under the same id merges what it has).
  auto collection = find(id);
  if (!collection) return;
  try {
    collection->merge();
  } catch (const Error& e) {
    // Its documents stay searchable in memory; the next merge or save tries
    // again, and save reports the failure to memosd.
    if (e.kind() != Error::Kind::invalid) {  // invalid: dropped or closing meanwhile
      log(MEMOS_LOG_WARN, "collection " + std::to_string(id) + ": merge failed: " + e.what());
    }
  } catch (const std::exception& e) {
    log(MEMOS_LOG_WARN, "collection " + std::to_string(id) + ": merge failed: " + e.what());
  }
}

memos_status XapianRetriever::open(plugin_wire::OpenRequest::Reader request, Reply reply) {
  std::uint64_t id = request.getCollection();
  std::string language = request.getLanguage();
  language = canonical_language(language.empty() ? default_language_ : language);
  // Held while the database opens and loads, so that an open, a drop and
  // another open of one collection never interleave on its files.
  std::lock_guard lock(mutex_);
  if (importing_.count(id) > 0) return fail(reply, MEMOS_ERR_BUSY, being_imported(id));
  if (auto it = collections_.find(id); it != collections_.end()) {
    if (it->second->language() == language) {
      set_state(reply.initCollection(), id, it->second->info());
      return MEMOS_OK;
    }
    // Another language: what it holds is useless; start again.
    it->second->drop();
    collections_.erase(it);
  }
  if (!state_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir_, ec);
    if (ec) {
      return fail(reply, MEMOS_ERR_RESOURCE,
                  "cannot create state_dir " + state_dir_ + ": " + ec.message());
    }
  }
  auto collection = std::make_shared<LexicalCollection>(
      path_of(id), language, bm25_, [this, id] { merges_.request(id); }, id);
  CollectionInfo info = collection->info();
  if (info.rebuilt) log(MEMOS_LOG_WARN, "collection " + std::to_string(id) + ": " + info.detail);
  collections_.emplace(id, std::move(collection));
  set_state(reply.initCollection(), id, info);
  return MEMOS_OK;
}

memos_status XapianRetriever::index(plugin_wire::IndexRequest::Reader request, Reply reply) {
  auto collection = find(request.getCollection());
  if (!collection) {
    return fail(reply, MEMOS_ERR_INVALID,
                "collection " + std::to_string(request.getCollection()) + " is not open");
  }
  std::vector<LexicalDocument> documents;
  documents.reserve(request.getDocuments().size());
  for (auto d : request.getDocuments()) {
    documents.push_back(LexicalDocument{d.getId(), d.getText(), retrieval::attributes_of(d)});
  }
  collection->index(documents, request.getVersion());
  reply.setDone();
  return MEMOS_OK;
}

memos_status XapianRetriever::remove(plugin_wire::RemoveRequest::Reader request, Reply reply) {
  auto collection = find(request.getCollection());
  if (!collection) {
    return fail(reply, MEMOS_ERR_INVALID,
                "collection " + std::to_string(request.getCollection()) + " is not open");
  }
  std::vector<std::uint64_t> ids;
  ids.reserve(request.getIds().size());
  for (auto id : request.getIds()) ids.push_back(id);
  collection->remove(ids, request.getVersion());
  reply.setDone();
  return MEMOS_OK;
}

memos_status XapianRetriever::search(plugin_wire::SearchRequest::Reader request, Reply reply) {
  auto collection = find(request.getCollection());
  if (!collection) {
    return fail(reply, MEMOS_ERR_INVALID,
                "collection " + std::to_string(request.getCollection()) + " is not open");
  }
  auto query = request.getQuery();
  auto hits = collection->search(std::string_view(query.cStr(), query.size()), request.getK(),
                                 retrieval::decode_filter(request.getFilter()));
  auto out = reply.initHits(static_cast<unsigned>(hits.size()));
  for (unsigned i = 0; i < hits.size(); ++i) {
    out[i].setId(hits[i].id);
    out[i].setScore(static_cast<float>(hits[i].score));
  }
  return MEMOS_OK;
}

memos_status XapianRetriever::save(std::uint64_t id, Reply reply) {
  auto collection = find(id);
  if (!collection) {
    return fail(reply, MEMOS_ERR_INVALID, "collection " + std::to_string(id) + " is not open");
  }
  set_state(reply.initCollection(), id, collection->save());
  return MEMOS_OK;
}

memos_status XapianRetriever::drop(std::uint64_t id, Reply reply) {
  std::lock_guard lock(mutex_);
  if (importing_.count(id) > 0) return fail(reply, MEMOS_ERR_BUSY, being_imported(id));
  if (auto it = collections_.find(id); it != collections_.end()) {
    std::shared_ptr<LexicalCollection> collection = std::move(it->second);
    collections_.erase(it);
    collection->drop();  // searches still holding it now fail cleanly
  } else if (std::string path = path_of(id); !path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return fail(reply, MEMOS_ERR_RESOURCE, "cannot delete " + path + ": " + ec.message());
  }
  reply.setDone();
  return MEMOS_OK;
}

memos_status XapianRetriever::export_snapshot(plugin_wire::SnapshotFile::Reader request,
                                              Reply reply) {
  std::uint64_t id = request.getCollection();
  auto collection = find(id);
  if (!collection) {
    return fail(reply, MEMOS_ERR_INVALID, "collection " + std::to_string(id) + " is not open");
  }
  std::string path = request.getPath();
  if (std::string why = check_path(path); !why.empty()) {
    return fail(reply, MEMOS_ERR_INVALID, why);
  }
  set_state(reply.initCollection(), id, collection->export_to(path));
  return MEMOS_OK;
}

memos_status XapianRetriever::import_snapshot(plugin_wire::SnapshotFile::Reader request,
                                              Reply reply) {
  std::uint64_t id = request.getCollection();
  if (state_dir_.empty()) {
    return fail(reply, MEMOS_ERR_UNSUPPORTED,
                "no state_dir: collections are in memory, there is nothing to import into");
  }
  std::string path = request.getPath();
  if (std::string why = check_path(path); !why.empty()) {
    return fail(reply, MEMOS_ERR_INVALID, why);
  }
  {
    std::lock_guard lock(mutex_);
    // An open collection would go on serving (and saving) what it holds.
    if (collections_.count(id) > 0) {
      return fail(reply, MEMOS_ERR_INVALID,
                  "collection " + std::to_string(id) + " is open: drop it first");
    }
    if (!importing_.insert(id).second) return fail(reply, MEMOS_ERR_BUSY, being_imported(id));
  }
  // Without mutex_: checking and compacting a large database takes seconds,
  // and every call on every collection takes it to find its collection.
  // The mark keeps open and drop of this one off its files meanwhile.
  auto unmark = [this, id] {
    std::lock_guard lock(mutex_);
    importing_.erase(id);
  };
  CollectionInfo info;
  try {
    std::filesystem::create_directories(state_dir_);
    info = LexicalCollection::import_file(path, path_of(id), id);
  } catch (...) {
    unmark();
    throw;  // handle() answers it
  }
  unmark();
  set_state(reply.initCollection(), id, info);
  return MEMOS_OK;
}

}  // namespace memos::lexical
