#include "kernel/plugin_retriever.h"

#include <capnp/message.h>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_call.h"
#include "kernel/store_vocabulary.h"

namespace memos::kernel {
namespace {

namespace pw = plugin_wire;

constexpr std::size_t kSmallReply = 64 << 10;

capnp::Text::Reader text(std::string_view s) {
  return {s.data(), s.size()};
}

void set_texts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, text(values[i]));
}

void set_meta(capnp::List<pw::Setting>::Builder list, const std::vector<store::MetaEntry>& meta) {
  for (unsigned i = 0; i < meta.size(); ++i) {
    list[i].setKey(text(meta[i].key));
    list[i].setValue(text(meta[i].value));
  }
}

void set_document(pw::Document::Builder d, const IndexedItem& in) {
  const store::Item& item = *in.item;
  d.setId(item.id);
  d.setText(text(item.text));
  auto v = d.initVector(static_cast<unsigned>(in.vector.size()));
  for (unsigned i = 0; i < in.vector.size(); ++i) v.set(i, in.vector[i]);
  set_texts(d.initTags(static_cast<unsigned>(item.tags.size())), item.tags);
  d.setValidFromMs(item.valid_from_ms);
  d.setValidToMs(item.valid_to_ms);
  d.setRecordedAtMs(item.recorded_at_ms);
  d.setImportance(item.importance);
  d.setArchived(item.state == store::State::archived);
  set_meta(d.initMeta(static_cast<unsigned>(item.meta.size())), item.meta);
  d.setTier(to_string(to_vocabulary(item.tier)));
  d.setState(to_string(to_vocabulary(item.state)));
  // Frozen items never expire (the store's retention skips them).
  d.setExpiresAtMs(item.state == store::State::frozen ? 0 : item.expires_at_ms);
  d.setAttributesOnly(in.attributes_only);
}

void set_filter(pw::Filter::Builder f, const RetrievalFilter& in) {
  set_texts(f.initAllTags(static_cast<unsigned>(in.all_tags.size())), in.all_tags);
  set_texts(f.initAnyTags(static_cast<unsigned>(in.any_tags.size())), in.any_tags);
  set_meta(f.initMeta(static_cast<unsigned>(in.meta.size())), in.meta);
  auto tiers = f.initTiers(static_cast<unsigned>(in.tiers.size()));
  for (unsigned i = 0; i < in.tiers.size(); ++i) tiers.set(i, to_string(in.tiers[i]));
  auto states = f.initStates(static_cast<unsigned>(in.states.size()));
  for (unsigned i = 0; i < in.states.size(); ++i) states.set(i, to_string(in.states[i]));
  f.setAsOfMs(in.as_of_ms);
  f.setNowMs(in.now_ms);
  f.setRecordedFromMs(in.recorded_from_ms);
  f.setRecordedToMs(in.recorded_to_ms);
  f.setValidFromMs(in.valid_from_ms);
  f.setValidToMs(in.valid_to_ms);
}

std::string read_hits(pw::PluginResponse::Reader response, std::uint32_t k,
                      std::vector<RankedHit>* hits) {
  if (!response.isHits()) return "the reply is not hits";
  auto list = response.getHits();
  if (list.size() > k) return "more hits than asked for";
  hits->clear();
  hits->reserve(list.size());
  for (auto h : list) hits->push_back({h.getId(), h.getScore()});
  return "";
}

}  // namespace

Status PluginRetriever::collection_call(const std::string& request, CollectionState* state) const {
  return call_plugin("retriever " + name_, *channel_, request, timeout_, kSmallReply,
                     [&](pw::PluginResponse::Reader r) -> std::string {
                       if (state == nullptr)
                         return r.isDone() || r.isCollection() ? "" : "unexpected reply";
                       if (!r.isCollection()) return "the reply is not a collection state";
                       auto c = r.getCollection();
                       *state = {c.getVersion(), c.getDocuments(), c.getDetail()};
                       return "";
                     });
}

Status PluginRetriever::open(store::CubeId cube, std::uint32_t dimension, std::string_view language,
                             CollectionState* state, std::uint64_t expected_documents) const {
  capnp::MallocMessageBuilder message;
  auto open = message.initRoot<pw::PluginRequest>().initOpen();
  open.setCollection(cube);
  open.setDimension(dimension);
  open.setLanguage(text(language));
  open.setExpectedDocuments(expected_documents);
  return collection_call(request_bytes(message), state);
}

Status PluginRetriever::index(store::CubeId cube, std::span<const IndexedItem> items,
                              std::uint64_t version, bool no_wait) const {
  capnp::MallocMessageBuilder message;
  auto index = message.initRoot<pw::PluginRequest>().initIndex();
  index.setCollection(cube);
  index.setVersion(version);
  index.setNoWait(no_wait);
  auto docs = index.initDocuments(static_cast<unsigned>(items.size()));
  for (unsigned i = 0; i < items.size(); ++i) set_document(docs[i], items[i]);
  return collection_call(request_bytes(message), nullptr);
}

Status PluginRetriever::remove(store::CubeId cube, std::span<const std::uint64_t> ids,
                               std::uint64_t version) const {
  capnp::MallocMessageBuilder message;
  auto remove = message.initRoot<pw::PluginRequest>().initRemove();
  remove.setCollection(cube);
  remove.setVersion(version);
  auto list = remove.initIds(static_cast<unsigned>(ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i]);
  return collection_call(request_bytes(message), nullptr);
}

Status PluginRetriever::save(store::CubeId cube, CollectionState* state) const {
  capnp::MallocMessageBuilder message;
  message.initRoot<pw::PluginRequest>().setSave(cube);
  return collection_call(request_bytes(message), state);
}

Status PluginRetriever::drop(store::CubeId cube) const {
  capnp::MallocMessageBuilder message;
  message.initRoot<pw::PluginRequest>().setDrop(cube);
  return collection_call(request_bytes(message), nullptr);
}

Status PluginRetriever::export_snapshot(store::CubeId cube, const std::string& path,
                                        CollectionState* state) const {
  capnp::MallocMessageBuilder message;
  auto file = message.initRoot<pw::PluginRequest>().initExportSnapshot();
  file.setCollection(cube);
  file.setPath(text(path));
  return collection_call(request_bytes(message), state);
}

Status PluginRetriever::import_snapshot(store::CubeId cube, const std::string& path,
                                        CollectionState* state) const {
  capnp::MallocMessageBuilder message;
  auto file = message.initRoot<pw::PluginRequest>().initImportSnapshot();
  file.setCollection(cube);
  file.setPath(text(path));
  return collection_call(request_bytes(message), state);
}

std::string PluginRetriever::transfer_path(store::CubeId cube, std::string_view use) const {
  if (state_dir_.empty()) return "";
  return state_dir_ + "/transfer/" + std::to_string(cube) + "." + std::string(use);
}

Status PluginRetriever::search(store::CubeId cube, std::string_view query,
                               std::span<const float> vector, std::uint32_t k,
                               const RetrievalFilter& filter, std::vector<RankedHit>* hits) const {
  capnp::MallocMessageBuilder message;
  auto search = message.initRoot<pw::PluginRequest>().initSearch();
  search.setCollection(cube);
  search.setQuery(text(query));
  auto v = search.initVector(static_cast<unsigned>(vector.size()));
  for (unsigned i = 0; i < vector.size(); ++i) v.set(i, vector[i]);
  search.setK(k);
  set_filter(search.initFilter(), filter);
  std::size_t max_reply = std::size_t{k} * 32 + 4096;
  return call_plugin("retriever " + name_, *channel_, request_bytes(message), timeout_, max_reply,
                     [&](pw::PluginResponse::Reader r) { return read_hits(r, k, hits); });
}

Status PluginRetriever::fuse(const FuseInput& input, std::vector<RankedHit>* hits) const {
  capnp::MallocMessageBuilder message;
  auto fuse = message.initRoot<pw::PluginRequest>().initFuse();
  fuse.setK(input.k);
  fuse.setNowMs(input.now_ms);
  fuse.setRrfK(input.params.rrf_k);
  fuse.setRecencyWeight(input.params.recency_weight);
  fuse.setRecencyHalfLifeMs(input.params.recency_half_life_ms);
  fuse.setImportanceWeight(input.params.importance_weight);
  fuse.setRetentionWeight(input.params.retention_weight);
  fuse.setMmrLambda(input.params.mmr_lambda);
  auto lists = fuse.initLists(static_cast<unsigned>(input.lists.size()));
  for (unsigned i = 0; i < input.lists.size(); ++i) {
    const auto& in = input.lists[i];
    lists[i].setName(text(in.name));
    lists[i].setWeight(in.weight);
    auto h = lists[i].initHits(static_cast<unsigned>(in.hits.size()));
    for (unsigned j = 0; j < in.hits.size(); ++j) {
      h[j].setId(in.hits[j].id);
      h[j].setScore(in.hits[j].score);
    }
  }
  auto candidates = fuse.initCandidates(static_cast<unsigned>(input.candidates.size()));
  for (unsigned i = 0; i < input.candidates.size(); ++i) {
    const auto& in = input.candidates[i];
    candidates[i].setId(in.id);
    candidates[i].setRecordedAtMs(in.recorded_at_ms);
    candidates[i].setImportance(in.importance);
    candidates[i].setRetention(in.retention);
    auto v = candidates[i].initVector(static_cast<unsigned>(in.vector.size()));
    for (unsigned j = 0; j < in.vector.size(); ++j) v.set(j, in.vector[j]);
  }
  std::size_t max_reply = std::size_t{input.k} * 32 + 4096;
  return call_plugin("fuser " + name_, *channel_, request_bytes(message), timeout_, max_reply,
                     [&](pw::PluginResponse::Reader r) { return read_hits(r, input.k, hits); });
}

}  // namespace memos::kernel
