#include "kernel/wire_replies.h"

#include <capnp/message.h>

#include <chrono>
#include <optional>

#include "ipc/message.h"
#include "kernel/plugin_manager.h"

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
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<wire::Response>();
  r.setId(id);
  fill(r);
  return std::make_shared<kj::Array<capnp::word>>(ipc::encode_frame(message));
}

Frame error_frame(std::uint64_t id, wire::ErrorCode code, const std::string& message,
                  bool retryable) {
  return response(id, [&](wire::Response::Builder r) {
    auto e = r.initError();
    e.setCode(code);
    e.setMessage(text(message));
    e.setRetryable(retryable);
  });
}

Frame status_error(std::uint64_t id, const store::Status& s) {
  wire::ErrorCode code = wire::ErrorCode::INTERNAL;
  bool retryable = false;
  using store::Errc;
  switch (s.code) {
    case Errc::ok:
    case Errc::corrupt:
    case Errc::io:
      break;
    case Errc::not_found:
      code = wire::ErrorCode::NOT_FOUND;
      break;
    case Errc::already_exists:
      code = wire::ErrorCode::ALREADY_EXISTS;
      break;
    case Errc::conflict:
      code = wire::ErrorCode::CONFLICT;
      break;
    case Errc::storage_full:
    case Errc::map_full:
      code = wire::ErrorCode::STORAGE_FULL;
      retryable = true;
      break;
    case Errc::unavailable:
      code = wire::ErrorCode::UNAVAILABLE;
      retryable = true;
      break;
  }
  return error_frame(id, code, s.message, retryable);
}

Frame check_error(std::uint64_t id, const CheckFailure& f) {
  return error_frame(id, f.too_large ? wire::ErrorCode::TOO_LARGE : wire::ErrorCode::BAD_REQUEST,
                     f.reason, false);
}

Frame bad_request(std::uint64_t id, const std::string& message) {
  return error_frame(id, wire::ErrorCode::BAD_REQUEST, message, false);
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
  b.setTier(static_cast<wire::Tier>(item.tier));
  b.setState(static_cast<wire::State>(item.state));
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
}

void set_access(wire::Item::Builder b, const store::AccessStats& stats) {
  b.setHits(stats.hits);
  b.setLastAccessMs(stats.last_access_ms);
}

void set_plugin(wire::PluginInfo::Builder b, const PluginState& p) {
  const plugins::Manifest& m = p.manifest;
  b.setName(text(m.name));
  auto kinds = b.initKinds(static_cast<unsigned>(m.kinds.size()));
  for (unsigned i = 0; i < m.kinds.size(); ++i) kinds.set(i, text(m.kinds[i]));
  b.setState(text(p.state));
  b.setDetail(text(p.detail));
  b.setHealth(text(p.health));
  b.setIsolated(m.isolated);
  b.setLibrary(text(m.library));
  b.setManifest(text(m.path));
  for (auto [field, values] : {std::pair{0, &m.capabilities}, std::pair{1, &m.settings}}) {
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

Frame item_response(std::uint64_t id, const store::Item& item) {
  return response(id, [&](wire::Response::Builder r) { set_item(r.initItem(), item); });
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
// Opens a read transaction and finds the tenant's cube, or fails with a reply.
bool open_cube(const store::Store& st, std::uint32_t tenant, const std::string& name,
               std::optional<store::ReadTxn>* txn, store::Cube* cube, std::uint64_t id,
               const Reply& reply) {
  store::Status s = st.begin_read(txn);
  if (s.ok()) s = (*txn)->find_cube(tenant, name, cube);
  if (!s.ok()) {
    reply(status_error(id, s));
    return false;
  }
  return true;
}

}  // namespace memos::kernel
