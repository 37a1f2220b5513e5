// sdk/reply_decode.cpp — memosd's replies read into the SDK's values
// (reply_decode.h): the error codes, the names and enums ReplyReader checks,
// and the structs several calls return.
#include "sdk/reply_decode.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "ipc/wire_vocabulary.h"
#include "sdk/wire_text.h"

namespace memos::sdk {

ErrorCode from_wire(wire::ErrorCode code) {
  switch (code) {
    case wire::ErrorCode::BAD_REQUEST:
      return ErrorCode::bad_request;
    case wire::ErrorCode::NOT_FOUND:
      return ErrorCode::not_found;
    case wire::ErrorCode::ALREADY_EXISTS:
      return ErrorCode::already_exists;
    case wire::ErrorCode::TOO_LARGE:
      return ErrorCode::too_large;
    case wire::ErrorCode::BUSY:
      return ErrorCode::busy;
    case wire::ErrorCode::UNAVAILABLE:
      return ErrorCode::unavailable;
    case wire::ErrorCode::INTERNAL:
      return ErrorCode::internal;
    case wire::ErrorCode::CONFLICT:
      return ErrorCode::conflict;
    case wire::ErrorCode::PERMISSION_DENIED:
      return ErrorCode::permission_denied;
    case wire::ErrorCode::STORAGE_FULL:
      return ErrorCode::storage_full;
    case wire::ErrorCode::QUOTA_EXCEEDED:
      return ErrorCode::quota_exceeded;
    case wire::ErrorCode::RATE_LIMITED:
      return ErrorCode::rate_limited;
    case wire::ErrorCode::UNKNOWN:
      break;
  }
  return ErrorCode::unknown;
}

Error protocol_error(const std::string& what) {
  return Error{ErrorCode::protocol_error, what, false};
}

Tier ReplyReader::tier(wire::Tier wire) {
  if (auto tier = ipc::from_wire(wire)) return *tier;
  unknown("tier " + std::to_string(static_cast<unsigned>(wire)));
  return Tier::plaintext;
}

State ReplyReader::state(wire::State wire) {
  if (auto state = ipc::from_wire(wire)) return *state;
  unknown("state " + std::to_string(static_cast<unsigned>(wire)));
  return State::active;
}

SearchMode ReplyReader::search_mode(capnp::Text::Reader name) {
  if (auto mode = parse_search_mode(std::string_view(name.cStr(), name.size()))) return *mode;
  unknown("search mode '" + str(name).substr(0, 64) + "'");
  return SearchMode::dense;
}

SearchMode ReplyReader::default_retriever(capnp::Text::Reader name) {
  return name.size() == 0 ? SearchMode::dense : search_mode(name);
}

std::vector<ModuleRun> to_module_runs(ReplyReader& in, capnp::List<wire::ModuleRun>::Reader list) {
  std::vector<ModuleRun> out;
  for (auto m : list) {
    out.push_back(
        {in.module(m.getModule()), in.cost_tier(m.getTier()), m.getMs(), str(m.getDetail())});
  }
  return out;
}

RouterChoice to_router_choice(ReplyReader& in, wire::RouterChoice::Reader r) {
  RouterChoice out;
  out.source = str(r.getSource());
  out.reason = str(r.getReason());
  out.route = in.route(r.getRoute());
  out.ms = r.getMs();
  for (auto f : r.getFeatures()) out.features.emplace_back(str(f.getName()), f.getValue());
  for (float v : r.getVector()) out.vector.push_back(v);
  for (auto sc : r.getScores())
    out.scores.push_back({str(sc.getRoute()), sc.getQuality(), sc.getCost(), sc.getScore()});
  return out;
}

Module ReplyReader::module(capnp::Text::Reader name) {
  if (auto m = parse_module(std::string_view(name.cStr(), name.size()))) return *m;
  unknown("module '" + str(name).substr(0, 64) + "'");
  return Module::retrieve;
}

Route ReplyReader::route(capnp::Text::Reader text) {
  if (auto r = parse_route(std::string_view(text.cStr(), text.size()))) return *r;
  unknown("route '" + str(text).substr(0, 64) + "'");
  return {};
}

CostTier ReplyReader::cost_tier(capnp::Text::Reader name) {
  if (auto tier = parse_cost_tier(std::string_view(name.cStr(), name.size()))) return *tier;
  unknown("cost tier '" + str(name).substr(0, 64) + "'");
  return CostTier::low;
}

PluginState ReplyReader::plugin_state(capnp::Text::Reader name) {
  if (auto state = parse_plugin_state(std::string_view(name.cStr(), name.size()))) return *state;
  unknown("plugin state '" + str(name).substr(0, 64) + "'");
  return PluginState::failed;
}

void ReplyReader::activation_status(capnp::Text::Reader text, ChatReply* out) {
  std::string_view status(text.cStr(), text.size());
  if (status.empty()) return unknown("an empty activation status");
  if (auto outcome = parse_activation_outcome(status)) {
    out->activation_status = std::move(*outcome);
    return;
  }
  constexpr std::string_view kNotStored = "; not stored: ";
  ActivationOutcome unknown_form;
  if (auto cut = status.rfind(kNotStored); cut != std::string_view::npos) {
    unknown_form.not_stored = std::string(status.substr(cut + kNotStored.size()));
    status = status.substr(0, cut);
  }
  unknown_form.rejected = std::string(status);
  out->activation_status = std::move(unknown_form);
}

void ReplyReader::unknown(std::string what) {
  if (unknown_.empty()) unknown_ = std::move(what);
}

Item to_item(ReplyReader& in, wire::Item::Reader r) {
  Item item;
  item.id = r.getId();
  item.version = r.getVersion();
  item.text = str(r.getText());
  for (auto t : r.getTags()) item.tags.push_back(str(t));
  for (auto m : r.getMeta()) item.meta.push_back({str(m.getKey()), str(m.getValue())});
  item.created_at_ms = r.getCreatedAtMs();
  item.recorded_at_ms = r.getRecordedAtMs();
  item.deleted = r.getDeleted();
  item.tier = in.tier(r.getTier());
  item.state = in.state(r.getState());
  item.importance = r.getImportance();
  item.expires_at_ms = r.getExpiresAtMs();
  item.valid_from_ms = r.getValidFromMs();
  item.valid_to_ms = r.getValidToMs();
  item.writer_uid = r.getWriterUid();
  item.session_id = str(r.getSessionId());
  for (auto id : r.getSources()) item.sources.push_back(id);
  item.cube_version = r.getCubeVersion();
  item.hits = r.getHits();
  item.last_access_ms = r.getLastAccessMs();
  if (r.hasParam()) {
    auto p = r.getParam();
    item.param =
        ParamInfo{str(p.getKind()), str(p.getName()),      str(p.getDigest()),       p.getBytes(),
                  p.getScale(),     str(p.getBaseModel()), str(p.getArchitecture()), p.getTensors(),
                  p.getRank(),      p.getAlpha(),          str(p.getOrigin())};
  }
  return item;
}

Cube to_cube(ReplyReader& in, wire::Cube::Reader r) {
  Cube c{r.getId(),
         str(r.getName()),
         r.getOwnerUid(),
         r.getCreatedAtMs(),
         str(r.getEmbedder()),
         r.getDimension(),
         r.getLiveItems(),
         r.getHeadVersion(),
         in.default_retriever(r.getDefaultRetriever()),
         str(r.getLanguage()),
         str(r.getIndexes())};
  c.shared_by = str(r.getSharedBy());
  c.shared_write = str(r.getAccess()) == "write";
  for (auto g : r.getShares()) {
    c.shares.push_back(
        {str(g.getTenant()), g.getUid(), str(g.getAccess()) == "write", g.getGrantedAtMs()});
  }
  return c;
}

PluginInfo to_plugin(ReplyReader& in, wire::PluginInfo::Reader r) {
  PluginInfo p;
  p.name = str(r.getName());
  for (auto k : r.getKinds()) p.kinds.push_back(str(k));
  p.state = in.plugin_state(r.getState());
  p.detail = str(r.getDetail());
  p.health = str(r.getHealth());
  p.isolated = r.getIsolated();
  p.library = str(r.getLibrary());
  p.manifest = str(r.getManifest());
  for (auto c : r.getCapabilities()) p.capabilities.push_back({str(c.getKey()), str(c.getValue())});
  for (auto c : r.getSettings()) p.settings.push_back({str(c.getKey()), str(c.getValue())});
  return p;
}

Snapshot to_snapshot(wire::Snapshot::Reader r) {
  return Snapshot{str(r.getTag()), r.getCubeVersion(), r.getCreatedAtMs(), r.getLiveItems(),
                  r.getCreatedBy()};
}

Activation to_activation(wire::Activation::Reader a) {
  Activation out;
  out.id = a.getId();
  out.cube = str(a.getCube());
  out.model = str(a.getModel());
  out.model_hash = str(a.getModelHash());
  out.kv_type = str(a.getKvType());
  out.tokens = a.getTokens();
  out.bytes = a.getBytes();
  for (std::uint64_t id : a.getSources()) out.sources.push_back(id);
  out.created_at_ms = a.getCreatedAtMs();
  out.last_used_ms = a.getLastUsedMs();
  out.uses = a.getUses();
  out.prefill_ms = a.getPrefillMs();
  return out;
}

Result<Item> decode_item(const wire::Response::Reader& r) {
  if (!r.isItem()) return wrong_reply<Item>();
  ReplyReader in;
  return in.finish(to_item(in, r.getItem()));
}

Result<Cube> decode_cube(const wire::Response::Reader& r) {
  if (!r.isCube()) return wrong_reply<Cube>();
  ReplyReader in;
  return in.finish(to_cube(in, r.getCube()));
}

Result<PluginInfo> decode_plugin(const wire::Response::Reader& r) {
  if (!r.isPlugin()) return wrong_reply<PluginInfo>();
  ReplyReader in;
  return in.finish(to_plugin(in, r.getPlugin()));
}

Result<PolicyInfo> decode_policy(const wire::Response::Reader& r) {
  if (!r.isPolicy()) return wrong_reply<PolicyInfo>();
  auto p = r.getPolicy();
  PolicyInfo out;
  out.tenant = str(p.getTenant());
  out.file = str(p.getFile());
  out.text = str(p.getText());
  out.folder = str(p.getFolder());
  out.tenants = p.getTenants();
  out.admin = p.getAdmin();
  out.stored_under = p.getStoredUnder();
  return out;
}

Result<Activation> decode_activation(const wire::Response::Reader& r) {
  if (!r.isActivation()) return wrong_reply<Activation>();
  return to_activation(r.getActivation());
}

}  // namespace memos::sdk
