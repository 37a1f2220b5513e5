// sdk/client.cpp — connecting a Client, and its calls on the daemon, the
// plugins, cubes, items, search and snapshots: each builds its request and
// decodes its reply through Impl::call (client_impl.h), with the decoders of
// reply_decode.h. The streamed archives are archive_stream.cpp, generation
// and the activation tier generation.cpp, item ids as text item_ids.cpp.
#include "memos/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ipc/unix_peer.h"
#include "ipc/wire_vocabulary.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

using sdk::decode_cube;
using sdk::decode_item;
using sdk::decode_plugin;
using sdk::decode_policy;
using sdk::ReplyReader;
using sdk::set_meta;
using sdk::set_texts;
using sdk::str;
using sdk::text;
using sdk::to_cube;
using sdk::to_item;
using sdk::to_plugin;
using sdk::to_snapshot;
using sdk::wrong_reply;

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request:
      return "badRequest";
    case ErrorCode::not_found:
      return "notFound";
    case ErrorCode::already_exists:
      return "alreadyExists";
    case ErrorCode::too_large:
      return "tooLarge";
    case ErrorCode::busy:
      return "busy";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::permission_denied:
      return "permissionDenied";
    case ErrorCode::storage_full:
      return "storageFull";
    case ErrorCode::quota_exceeded:
      return "quotaExceeded";
    case ErrorCode::rate_limited:
      return "rateLimited";
    case ErrorCode::unknown:
      return "unknown";
    case ErrorCode::connect_failed:
      return "connectFailed";
    case ErrorCode::connection_lost:
      return "connectionLost";
    case ErrorCode::protocol_error:
      return "protocolError";
  }
  return "unknown";
}

std::string default_socket() {
  if (const char* env = std::getenv("MEMOS_SOCKET"); env && *env) return env;
  return ipc::default_socket_path();
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const std::string& socket_path,
                                                ClientOptions options) {
  std::string path = socket_path.empty() ? default_socket() : socket_path;
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error{ErrorCode::connect_failed, "socket path too long: " + path, false};
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{ErrorCode::connect_failed, std::strerror(errno), true};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Error{ErrorCode::connect_failed,
                 "cannot connect to " + path + ": " + std::strerror(err) +
                     (err == ENOENT || err == ECONNREFUSED ? " (is memosd running?)" : ""),
                 true};
  }
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(fd, options)));
}

std::size_t Client::in_flight() const {
  return impl_->in_flight();
}

std::future<Result<std::string>> Client::metrics_async() {
  return impl_->call<std::string>([](wire::Request::Builder r) { r.setMetrics(); },
                                  [](const wire::Response::Reader& r) -> Result<std::string> {
                                    if (!r.isMetrics()) return wrong_reply<std::string>();
                                    return str(r.getMetrics());
                                  });
}

std::future<Result<Status>> Client::status_async() {
  return impl_->call<Status>(
      [](wire::Request::Builder r) { r.setStatus(); },
      [](const wire::Response::Reader& r) -> Result<Status> {
        if (!r.isStatus()) return wrong_reply<Status>();
        auto s = r.getStatus();
        Status out{str(s.getVersion()),   s.getPid(),          s.getUptimeMs(),
                   s.getTenantUid(),      s.getCubes(),        s.getConnections(),
                   s.getRequestsServed(), str(s.getDataDir()), str(s.getSocket())};
        ReplyReader in;
        for (auto p : s.getPlugins()) out.plugins.push_back(to_plugin(in, p));
        out.admin = s.getAdmin();
        out.index_backlog = s.getIndexBacklog();
        out.index_oldest_ms = s.getIndexOldestMs();
        out.freshness_p50_ms = s.getFreshnessP50Ms();
        out.freshness_p99_ms = s.getFreshnessP99Ms();
        out.scheduler_passes = s.getSchedulerPasses();
        out.scheduler_last_pass_ms = s.getSchedulerLastPassMs();
        out.scheduler_working_sets = s.getSchedulerWorkingSets();
        out.scheduler_prefills_pending = s.getSchedulerPrefillsPending();
        out.executor_device = str(s.getExecutorDevice());
        out.executor_device_description = str(s.getExecutorDeviceDescription());
        out.executor_device_note = str(s.getExecutorDeviceNote());
        out.executor_gpu_layers = s.getExecutorGpuLayers();
        out.executor_layers = s.getExecutorLayers();
        out.executor_device_memory_bytes = s.getExecutorDeviceMemoryBytes();
        return in.finish(std::move(out));
      });
}

std::future<Result<std::vector<PluginInfo>>> Client::plugin_list_async() {
  return impl_->call<std::vector<PluginInfo>>(
      [](wire::Request::Builder r) { r.setPluginList(); },
      [](const wire::Response::Reader& r) -> Result<std::vector<PluginInfo>> {
        if (!r.isPlugins()) return wrong_reply<std::vector<PluginInfo>>();
        ReplyReader in;
        std::vector<PluginInfo> out;
        for (auto p : r.getPlugins()) out.push_back(to_plugin(in, p));
        return in.finish(std::move(out));
      });
}

std::future<Result<PluginInfo>> Client::plugin_info_async(std::string name) {
  return impl_->call<PluginInfo>([&](wire::Request::Builder r) { r.setPluginInfo(text(name)); },
                                 decode_plugin);
}

std::future<Result<PluginInfo>> Client::plugin_reload_async(std::string name) {
  return impl_->call<PluginInfo>([&](wire::Request::Builder r) { r.setPluginReload(text(name)); },
                                 decode_plugin);
}

std::future<Result<PolicyInfo>> Client::policy_show_async(std::string tenant) {
  return impl_->call<PolicyInfo>([&](wire::Request::Builder r) { r.setPolicyShow(text(tenant)); },
                                 decode_policy);
}

std::future<Result<PolicyInfo>> Client::policy_reload_async() {
  return impl_->call<PolicyInfo>([](wire::Request::Builder r) { r.setPolicyReload(); },
                                 decode_policy);
}

std::future<Result<TenantUsage>> Client::tenant_usage_async(std::string tenant) {
  return impl_->call<TenantUsage>(
      [&](wire::Request::Builder r) { r.setTenantUsage(text(tenant)); },
      [](const wire::Response::Reader& r) -> Result<TenantUsage> {
        if (!r.isUsage()) return wrong_reply<TenantUsage>();
        auto u = r.getUsage();
        TenantUsage out;
        out.tenant = str(u.getTenant());
        out.stored_under = u.getStoredUnder();
        out.cubes = u.getCubes();
        out.items = u.getItems();
        out.text_bytes = u.getTextBytes();
        out.activation_items = u.getActivationItems();
        out.activation_bytes = u.getActivationBytes();
        out.param_bytes = u.getParamBytes();
        out.router_tokens = u.getRouterTokens();
        for (auto b : u.getBounds())
          out.bounds.push_back({str(b.getName()), b.getLimit(), b.getUsed()});
        return out;
      });
}

std::future<Result<Cube>> Client::cube_create_async(std::string name,
                                                    std::optional<SearchMode> retriever,
                                                    std::string language) {
  return impl_->call<Cube>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeCreate();
        c.setName(text(name));
        // Empty on the wire: the daemon's search.default_mode.
        c.setRetriever(retriever ? to_string(*retriever) : "");
        c.setLanguage(text(language));
      },
      decode_cube);
}

std::future<Result<std::vector<Cube>>> Client::cube_list_async() {
  return impl_->call<std::vector<Cube>>(
      [](wire::Request::Builder r) { r.setCubeList(); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Cube>> {
        if (!r.isCubes()) return wrong_reply<std::vector<Cube>>();
        ReplyReader in;
        std::vector<Cube> cubes;
        for (auto c : r.getCubes()) cubes.push_back(to_cube(in, c));
        return in.finish(std::move(cubes));
      });
}

std::future<Result<Cube>> Client::cube_show_async(std::string name) {
  return impl_->call<Cube>([&](wire::Request::Builder r) { r.initCubeShow().setName(text(name)); },
                           decode_cube);
}

std::future<Result<Done>> Client::cube_remove_async(std::string name, bool force) {
  return impl_->call<Done>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeRemove();
        c.setName(text(name));
        c.setForce(force);
      },
      [](const wire::Response::Reader& r) -> Result<Done> {
        if (!r.isCubeRemoved()) return wrong_reply<Done>();
        return Done{};
      });
}

std::future<Result<Cube>> Client::cube_share_async(std::string name, std::string tenant,
                                                   bool write) {
  return impl_->call<Cube>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeShare();
        c.setCube(text(name));
        c.setTenant(text(tenant));
        c.setWrite(write);
      },
      decode_cube);
}

std::future<Result<Cube>> Client::cube_unshare_async(std::string name, std::string tenant) {
  return impl_->call<Cube>(
      [&](wire::Request::Builder r) {
        auto c = r.initCubeUnshare();
        c.setCube(text(name));
        c.setTenant(text(tenant));
      },
      decode_cube);
}

std::future<Result<Item>> Client::add_async(std::string cube, NewItem item) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto a = r.initAdd();
        a.setCube(text(cube));
        a.setText(text(item.text));
        set_texts(a.initTags(static_cast<unsigned>(item.tags.size())), item.tags);
        set_meta(a.initMeta(static_cast<unsigned>(item.meta.size())), item.meta);
        a.setImportance(item.importance);
        a.setTtlMs(item.ttl_ms);
        a.setValidFromMs(item.valid_from_ms);
        a.setValidToMs(item.valid_to_ms);
        a.setSessionId(text(item.session_id));
        auto sources = a.initSources(static_cast<unsigned>(item.sources.size()));
        for (unsigned i = 0; i < item.sources.size(); ++i) sources.set(i, item.sources[i]);
        a.setSupersedes(item.supersedes);
        if (item.allow_duplicate) a.setAllowDuplicate(true);
        r.setIdempotencyKey(text(item.idempotency_key));
        if (item.wait_searchable) r.setWaitSearchable(true);
      },
      decode_item);
}

std::future<Result<Item>> Client::get_async(std::string cube, std::uint64_t id,
                                            std::uint32_t version) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto g = r.initGet();
        g.setCube(text(cube));
        g.setItemId(id);
        g.setVersion(version);
      },
      decode_item);
}

std::future<Result<Item>> Client::update_async(std::string cube, std::uint64_t id,
                                               ItemChange change) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto u = r.initUpdate();
        u.setCube(text(cube));
        u.setItemId(id);
        u.setText(text(change.text));
        if (change.tags) {
          u.setReplaceTags(true);
          set_texts(u.initTags(static_cast<unsigned>(change.tags->size())), *change.tags);
        }
        if (change.meta) {
          u.setReplaceMeta(true);
          set_meta(u.initMeta(static_cast<unsigned>(change.meta->size())), *change.meta);
        }
        u.setSessionId(text(change.session_id));
        r.setIdempotencyKey(text(change.idempotency_key));
        if (change.wait_searchable) r.setWaitSearchable(true);
      },
      decode_item);
}

std::future<Result<Item>> Client::remove_async(std::string cube, std::uint64_t id,
                                               std::string idempotency_key) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        r.setIdempotencyKey(text(idempotency_key));
        auto x = r.initRemove();
        x.setCube(text(cube));
        x.setItemId(id);
      },
      decode_item);
}

// A history may be larger than one reply: it is read a page at a time
// (the protocol's HistoryPage), on a thread of its own so the future
// behaves as every other call's.
std::future<Result<std::vector<Item>>> Client::history_async(std::string cube, std::uint64_t id) {
  struct Page {
    std::vector<Item> versions;
    bool more = false;
  };
  auto page_after = [this, cube, id](std::uint32_t after) {
    return impl_
        ->call<Page>(
            [&](wire::Request::Builder r) {
              auto h = r.initHistory();
              h.setCube(text(cube));
              h.setItemId(id);
              h.setPaged(true);
              h.setPageAfter(after);
            },
            [](const wire::Response::Reader& r) -> Result<Page> {
              ReplyReader in;
              Page page;
              if (r.isHistory()) {  // a daemon that does not page: all of it
                for (auto i : r.getHistory()) page.versions.push_back(to_item(in, i));
              } else if (r.isHistoryPage()) {
                for (auto i : r.getHistoryPage().getVersions())
                  page.versions.push_back(to_item(in, i));
                page.more = r.getHistoryPage().getMore();
              } else {
                return wrong_reply<Page>();
              }
              return in.finish(std::move(page));
            })
        .get();
  };
  return std::async(std::launch::async, [page_after]() -> Result<std::vector<Item>> {
    std::vector<Item> all;
    for (std::uint32_t after = 0;;) {
      auto page = page_after(after);
      if (!page) return page.error();
      for (auto& v : page->versions) all.push_back(std::move(v));
      // A page is never empty while more remain; stop if a daemon says so.
      if (!page->more || page->versions.empty()) return all;
      after = all.back().version;
    }
  });
}

namespace {

void build_search(wire::Search::Builder s, const std::string& cube, const std::string& query,
                  const SearchOptions& options) {
  s.setCube(text(cube));
  s.setQuery(text(query));
  s.setK(options.k);
  set_texts(s.initTags(static_cast<unsigned>(options.tags.size())), options.tags);
  s.setAsOfMs(options.as_of_ms);
  s.setIncludeArchived(options.include_archived);
  s.setMode(options.mode ? to_string(*options.mode) : "");  // empty: the cube's default
  set_texts(s.initAnyTags(static_cast<unsigned>(options.any_tags.size())), options.any_tags);
  auto meta = s.initMeta(static_cast<unsigned>(options.meta.size()));
  for (unsigned i = 0; i < options.meta.size(); ++i) {
    meta[i].setKey(text(options.meta[i].key));
    meta[i].setValue(text(options.meta[i].value));
  }
  auto tiers = s.initTiers(static_cast<unsigned>(options.tiers.size()));
  for (unsigned i = 0; i < options.tiers.size(); ++i) tiers.set(i, ipc::to_wire(options.tiers[i]));
  auto states = s.initStates(static_cast<unsigned>(options.states.size()));
  for (unsigned i = 0; i < options.states.size(); ++i)
    states.set(i, ipc::to_wire(options.states[i]));
  s.setRecordedSinceMs(options.recorded_since_ms);
  s.setRecordedUntilMs(options.recorded_until_ms);
  s.setValidSinceMs(options.valid_since_ms);
  s.setValidUntilMs(options.valid_until_ms);
  s.setExplain(options.explain);
  set_texts(s.initCubes(static_cast<unsigned>(options.more_cubes.size())), options.more_cubes);
  s.setRecencyWeight(options.recency_weight);
  s.setImportanceWeight(options.importance_weight);
  s.setRetentionWeight(options.retention_weight);
  s.setMmrLambda(options.mmr_lambda);
  s.setFresh(options.fresh);
  if (options.min_score) {
    s.setMinScore(*options.min_score);
    s.setHasMinScore(true);
  }
  const Routing& routing = options.routing;
  if (routing.auto_route) s.setBudget("auto");
  s.setRoute(text(sdk::route_text(routing)));
  if (routing.routed()) {
    s.setReferenceMs(routing.reference_ms);
    s.setContextTokens(routing.context_tokens);
    s.setLambda(routing.lambda);
  }
}

std::vector<Hit> read_hits(ReplyReader& in, capnp::List<wire::Hit>::Reader list) {
  std::vector<Hit> hits;
  for (auto h : list) {
    Hit hit{to_item(in, h.getItem()), h.getScore(), str(h.getCube()), {}};
    for (auto rank : h.getRanks())
      hit.ranks.push_back({in.search_mode(rank.getRetriever()), rank.getRank(), rank.getScore()});
    hits.push_back(std::move(hit));
  }
  return hits;
}

}  // namespace

std::future<Result<std::vector<Hit>>> Client::search_async(std::string cube, std::string query,
                                                           SearchOptions options) {
  return impl_->call<std::vector<Hit>>(
      [&](wire::Request::Builder r) { build_search(r.initSearch(), cube, query, options); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Hit>> {
        ReplyReader in;
        if (r.isHits()) return in.finish(read_hits(in, r.getHits()));
        if (r.isRoutedSearch())  // asked with a route
          return in.finish(read_hits(in, r.getRoutedSearch().getHits()));
        return wrong_reply<std::vector<Hit>>();
      });
}

std::future<Result<RoutedSearch>> Client::search_routed_async(std::string cube, std::string query,
                                                              SearchOptions options) {
  if (!options.routing.routed()) options.routing.route = Route{};
  return impl_->call<RoutedSearch>(
      [&](wire::Request::Builder r) { build_search(r.initSearch(), cube, query, options); },
      [](const wire::Response::Reader& r) -> Result<RoutedSearch> {
        if (!r.isRoutedSearch()) return wrong_reply<RoutedSearch>();
        auto routed = r.getRoutedSearch();
        ReplyReader in;
        RoutedSearch out;
        out.hits = read_hits(in, routed.getHits());
        for (auto p : routed.getContext()) {
          out.context.push_back({str(p.getCube()), p.getItemId(), str(p.getText()), p.getTokens(),
                                 p.getNeighbourOf()});
        }
        out.context_tokens = routed.getContextTokens();
        out.modules = to_module_runs(in, routed.getModules());
        if (routed.hasRouter()) out.router = to_router_choice(in, routed.getRouter());
        return in.finish(std::move(out));
      });
}

std::future<Result<Item>> Client::set_state_async(std::string cube, std::uint64_t id, State state) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto x = r.initSetState();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setState(ipc::to_wire(state));
      },
      decode_item);
}

std::future<Result<Item>> Client::rollback_async(std::string cube, std::uint64_t id,
                                                 std::uint32_t version) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto x = r.initRollback();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setVersion(version);
      },
      decode_item);
}

std::future<Result<ItemDiff>> Client::diff_async(std::string cube, std::uint64_t id,
                                                 std::uint32_t from, std::uint32_t to) {
  return impl_->call<ItemDiff>(
      [&](wire::Request::Builder r) {
        auto x = r.initDiff();
        x.setCube(text(cube));
        x.setItemId(id);
        x.setFromVersion(from);
        x.setToVersion(to);
      },
      [](const wire::Response::Reader& r) -> Result<ItemDiff> {
        if (!r.isDiff()) return wrong_reply<ItemDiff>();
        auto d = r.getDiff();
        ReplyReader in;
        ItemDiff diff;
        diff.from = to_item(in, d.getFrom());
        diff.to = to_item(in, d.getTo());
        diff.text_changed = d.getTextChanged();
        for (auto t : d.getTagsAdded()) diff.tags_added.push_back(str(t));
        for (auto t : d.getTagsRemoved()) diff.tags_removed.push_back(str(t));
        for (auto m : d.getMetaChanges()) {
          MetaChange change{str(m.getKey()), std::nullopt, std::nullopt};
          if (m.getHadBefore()) change.before = str(m.getBefore());
          if (m.getHasAfter()) change.after = str(m.getAfter());
          diff.meta_changes.push_back(std::move(change));
        }
        diff.state_changed = d.getStateChanged();
        diff.validity_changed = d.getValidityChanged();
        return in.finish(std::move(diff));
      });
}

std::future<Result<Snapshot>> Client::snapshot_create_async(std::string cube, std::string tag) {
  return impl_->call<Snapshot>(
      [&](wire::Request::Builder r) {
        auto x = r.initSnapshotCreate();
        x.setCube(text(cube));
        x.setTag(text(tag));
      },
      [](const wire::Response::Reader& r) -> Result<Snapshot> {
        if (!r.isSnapshot()) return wrong_reply<Snapshot>();
        return to_snapshot(r.getSnapshot());
      });
}

std::future<Result<std::vector<Snapshot>>> Client::snapshot_list_async(std::string cube) {
  return impl_->call<std::vector<Snapshot>>(
      [&](wire::Request::Builder r) { r.initSnapshotList().setName(text(cube)); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Snapshot>> {
        if (!r.isSnapshots()) return wrong_reply<std::vector<Snapshot>>();
        std::vector<Snapshot> out;
        for (auto s : r.getSnapshots()) out.push_back(to_snapshot(s));
        return out;
      });
}

std::future<Result<std::vector<SnapshotChange>>> Client::snapshot_diff_async(std::string cube,
                                                                             std::string from_tag,
                                                                             std::string to_tag) {
  return impl_->call<std::vector<SnapshotChange>>(
      [&](wire::Request::Builder r) {
        auto x = r.initSnapshotDiff();
        x.setCube(text(cube));
        x.setFromTag(text(from_tag));
        x.setToTag(text(to_tag));
      },
      [](const wire::Response::Reader& r) -> Result<std::vector<SnapshotChange>> {
        if (!r.isChanges()) return wrong_reply<std::vector<SnapshotChange>>();
        std::vector<SnapshotChange> out;
        for (auto c : r.getChanges()) {
          auto kind = static_cast<unsigned>(c.getKind());
          out.push_back(
              {c.getItemId(),
               kind <= 2 ? static_cast<SnapshotChange::Kind>(kind) : SnapshotChange::Kind::changed,
               c.getFromVersion(), c.getToVersion(), str(c.getText())});
        }
        return out;
      });
}

}  // namespace memos
