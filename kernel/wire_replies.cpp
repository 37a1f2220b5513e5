#include "kernel/wire_replies.h"

#include <capnp/message.h>

#include <chrono>
#include <map>
#include <optional>

#include "ipc/message.h"
#include "ipc/wire_vocabulary.h"
#include "kernel/plugin_manager.h"
#include "memcube/blob_store.h"

namespace memos::kernel {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

Frame response(std::uint64_t id, const std::function<void(wire::Response::Builder)>& fill) {
  // Most replies are small (an item, a status, an error): a first segment of
  // 1 KiB instead of capnp's 8 KiB, which is zeroed for every reply; larger
  // ones grow it as usual.
  constexpr capnp::uint kFirstSegmentWords = 128;
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto r = message.initRoot<wire::Response>();
  r.setId(id);
  fill(r);
  return std::make_shared<kj::Array<capnp::word>>(ipc::encode_frame(message));
}

std::size_t reply_bytes(const store::Item& item) {
  std::size_t bytes =
      256 + item.text.size() + item.provenance.session.size() + 8 * item.provenance.sources.size();
  for (const auto& tag : item.tags) bytes += 8 + tag.size();
  for (const auto& m : item.meta) bytes += 16 + m.key.size() + m.value.size();
  return bytes;
}

namespace {

wire::ErrorCode wire_code(Code code) {
  switch (code) {
    case Code::ok:
    case Code::internal:
      break;
    case Code::bad_request:
      return wire::ErrorCode::BAD_REQUEST;
    case Code::not_found:
      return wire::ErrorCode::NOT_FOUND;
    case Code::already_exists:
      return wire::ErrorCode::ALREADY_EXISTS;
    case Code::too_large:
      return wire::ErrorCode::TOO_LARGE;
    case Code::busy:
      return wire::ErrorCode::BUSY;
    case Code::unavailable:
      return wire::ErrorCode::UNAVAILABLE;
    case Code::conflict:
      return wire::ErrorCode::CONFLICT;
    case Code::permission_denied:
      return wire::ErrorCode::PERMISSION_DENIED;
    case Code::storage_full:
      return wire::ErrorCode::STORAGE_FULL;
    case Code::quota_exceeded:
      return wire::ErrorCode::QUOTA_EXCEEDED;
    case Code::rate_limited:
      return wire::ErrorCode::RATE_LIMITED;
  }
  return wire::ErrorCode::INTERNAL;
}

}  // namespace

Frame error_frame(std::uint64_t id, const Status& status) {
  return response(id, [&](wire::Response::Builder r) {
    auto e = r.initError();
    e.setCode(wire_code(status.code));
    e.setMessage(text(status.message));
    e.setRetryable(status.retryable);
    e.setRetryAfterMs(status.retry_after_ms);
  });
}

SearchMode default_mode(const store::Cube& cube) {
  return parse_search_mode(cube.default_retriever).value_or(SearchMode::dense);
}

void set_item(wire::Item::Builder b, const store::Item& item) {
  b.setId(item.id);
  b.setVersion(item.version);
  b.setText(text(item.text));
  auto tags = b.initTags(static_cast<unsigned>(item.tags.size()));
  for (unsigned i = 0; i < item.tags.size(); ++i) tags.set(i, text(item.tags[i]));
  auto meta = b.initMeta(static_cast<unsigned>(item.meta.size()));
  for (unsigned i = 0; i < item.meta.size(); ++i) {
    meta[i].setKey(text(item.meta[i].key));
    meta[i].setValue(text(item.meta[i].value));
  }
  b.setCreatedAtMs(item.created_at_ms);
  b.setRecordedAtMs(item.recorded_at_ms);
  b.setDeleted(item.deleted());
  b.setTier(ipc::to_wire(to_vocabulary(item.tier)));
  b.setState(ipc::to_wire(to_vocabulary(item.state)));
  b.setImportance(item.importance);
  b.setExpiresAtMs(item.expires_at_ms);
  b.setValidFromMs(item.valid_from_ms);
  b.setValidToMs(item.valid_to_ms);
  b.setWriterUid(item.provenance.writer);
  b.setSessionId(text(item.provenance.session));
  auto sources = b.initSources(static_cast<unsigned>(item.provenance.sources.size()));
  for (unsigned i = 0; i < item.provenance.sources.size(); ++i) {
    sources.set(i, item.provenance.sources[i]);
  }
  b.setCubeVersion(item.cube_version);
  if (item.param) {
    const store::Parametric& p = *item.param;
    auto pb = b.initParam();
    pb.setKind(text(p.kind));
    pb.setName(text(p.name));
    pb.setDigest(store::to_hex(p.blob));
    pb.setBytes(p.size);
    pb.setScale(p.scale);
    pb.setBaseModel(text(p.base_model));
    pb.setArchitecture(text(p.architecture));
    pb.setTensors(p.tensors);
    pb.setRank(p.rank);
    pb.setAlpha(p.alpha);
    pb.setOrigin(text(p.origin));
  }
}

void set_access(wire::Item::Builder b, const store::AccessStats& stats) {
  b.setHits(stats.hits);
  b.setLastAccessMs(stats.last_access_ms);
}

void set_plugin(wire::PluginInfo::Builder b, const PluginRecord& p, PluginView view) {
  const plugins::Manifest& m = p.manifest;
  const bool full = view == PluginView::full;
  b.setName(text(m.name));
  auto kinds = b.initKinds(static_cast<unsigned>(m.kinds.size()));
  for (unsigned i = 0; i < m.kinds.size(); ++i) kinds.set(i, text(m.kinds[i]));
  b.setState(text(to_string(p.state)));
  // A loaded plugin's detail is its version; a failure's may name paths.
  if (full || p.state == memos::PluginState::loaded) b.setDetail(text(p.detail));
  b.setHealth(text(p.health));
  b.setIsolated(m.isolated);
  if (full) {
    b.setLibrary(text(m.library));
    b.setManifest(text(m.path));
  }
  const std::map<std::string, std::string> none;
  for (auto [field, values] :
       {std::pair{0, &m.capabilities}, std::pair{1, full ? &m.settings : &none}}) {
    auto list = field == 0 ? b.initCapabilities(static_cast<unsigned>(values->size()))
                           : b.initSettings(static_cast<unsigned>(values->size()));
    unsigned i = 0;
    for (const auto& [k, v] : *values) {
      list[i].setKey(text(k));
      list[i].setValue(text(v));
      ++i;
    }
  }
}

void set_cube(wire::Cube::Builder b, const store::Cube& cube) {
  b.setId(cube.id);
  b.setName(text(cube.name));
  b.setOwnerUid(cube.owner);
  b.setCreatedAtMs(cube.created_at_ms);
  b.setEmbedder(text(cube.embedder));
  b.setDimension(cube.dimension);
  b.setLiveItems(cube.live_items);
  b.setHeadVersion(cube.head_version);
  b.setDefaultRetriever(text(cube.default_retriever));
  b.setLanguage(text(cube.language.empty() ? "english" : cube.language));
}

void set_snapshot(wire::Snapshot::Builder b, const store::Snapshot& snap) {
  b.setTag(text(snap.tag));
  b.setCubeVersion(snap.cube_version);
  b.setCreatedAtMs(snap.created_at_ms);
  b.setLiveItems(snap.live_items);
  b.setCreatedBy(snap.created_by);
}

void set_activation(wire::Activation::Builder b, const store::Activation& a,
                    const std::string& cube) {
  b.setId(a.id);
  b.setCube(cube);
  b.setModel(a.model);
  b.setModelHash(a.key.model_hash);
  b.setKvType(a.key.kv_type);
  b.setTokens(static_cast<std::uint32_t>(a.tokens.size()));
  b.setBytes(a.size);
  auto sources = b.initSources(static_cast<unsigned>(a.sources.size()));
  for (unsigned i = 0; i < sources.size(); ++i) sources.set(i, a.sources[i]);
  b.setCreatedAtMs(a.created_at_ms);
  b.setLastUsedMs(a.last_used_ms);
  b.setUses(a.uses);
}

Frame item_response(std::uint64_t id, const store::Item& item) {
  return response(id, [&](wire::Response::Builder r) { set_item(r.initItem(), item); });
}

std::string exact(capnp::Text::Reader text) {
  return std::string(text.begin(), text.size());
}

std::string_view exact_view(capnp::Text::Reader text) {
  return std::string_view(text.begin(), text.size());
}

std::vector<std::string> copy_texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.emplace_back(t.cStr(), t.size());
  return out;
}

std::vector<store::MetaEntry> copy_meta(capnp::List<wire::MetaEntry>::Reader list) {
  std::vector<store::MetaEntry> out;
  out.reserve(list.size());
  for (auto m : list) {
    out.push_back({std::string(m.getKey().cStr(), m.getKey().size()),
                   std::string(m.getValue().cStr(), m.getValue().size())});
  }
  return out;
}
bool is_memosds_own(std::string_view cube_name) {
  return cube_name.starts_with('.');
}

bool visible_to_clients(const store::Cube& cube) {
  return !is_memosds_own(cube.name);
}

store::Status find_client_cube(const store::ReadTxn& txn, std::uint32_t tenant,
                               std::string_view name, store::Cube* cube) {
  if (is_memosds_own(name)) {
    return {store::Errc::not_found, "no cube named '" + std::string(name.substr(0, 64)) + "'"};
  }
  return txn.find_cube(tenant, name, cube);
}

}  // namespace memos::kernel
