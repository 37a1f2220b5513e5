// Cube requests, and the daemon's status: status, cubeCreate, cubeList,
// cubeShow, cubeRemove, cubeShare, cubeUnshare.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/index_set.h"
#include "kernel/inline_reads.h"
#include "kernel/plugin_manager.h"
#include "kernel/policy_use.h"
#include "kernel/quota.h"
#include "kernel/request_checks.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/serial_lane.h"
#include "kernel/tenant_registry.h"

namespace memos::kernel {
namespace {

Status list_cubes(const store::Store& st, std::uint32_t tenant, std::vector<store::Cube>* out) {
  std::optional<store::ReadTxn> txn;
  store::Status s = st.begin_read(&txn);
  if (s.ok()) s = txn->list_cubes(tenant, out);
  std::erase_if(*out, [](const store::Cube& c) { return !visible_to_clients(c); });
  return Status::from(s);
}

// The daemon's state: one short read of the tenant's cube list and counters
// copied under short locks, served on the loop while that is cheap
// (inline_reads.h), else on a worker.
void status(const Services& s, const RequestContext& request) {
  auto read = [&s](const RequestContext& ctx) {
    std::vector<store::Cube> cubes;
    if (Status st = list_cubes(s.store, ctx.tenant, &cubes); !st.ok()) return ctx.fail(st);
    auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - s.stats.started);
    ctx.respond([&](wire::Response::Builder r) {
      auto st = r.initStatus();
      st.setVersion(MEMOS_VERSION);
      st.setPid(static_cast<std::uint32_t>(getpid()));
      st.setUptimeMs(uptime.count());
      st.setTenantUid(ctx.tenant);
      st.setCubes(static_cast<std::uint32_t>(cubes.size()));
      st.setSocket(text(s.stats.socket_path));
      st.setSchedulerPasses(s.scheduler.passes());
      st.setSchedulerLastPassMs(s.scheduler.last_pass().value_or(scheduler::PassSummary{}).at_ms);
      st.setSchedulerWorkingSets(
          static_cast<std::uint32_t>(s.scheduler.schedules(ctx.tenant, 0).size()));
      st.setSchedulerPrefillsPending(
          static_cast<std::uint32_t>(s.executor_lane.background_pending()));
      if (s.executor) {
        const ExecutorInfo& e = s.executor->info();
        st.setExecutorDevice(e.device);
        st.setExecutorDeviceDescription(e.device_description);
        st.setExecutorDeviceNote(e.device_note);
        st.setExecutorGpuLayers(e.gpu_layers);
        st.setExecutorLayers(e.layers);
        st.setExecutorDeviceMemoryBytes(e.device_memory_bytes);
      }
      // Global counts and paths are the host's business, not a tenant's.
      st.setAdmin(ctx.admin);
      if (ctx.admin) {
        st.setConnections(s.stats.connections.load());
        st.setRequestsServed(s.stats.requests_served.load());
        st.setDataDir(text(s.stats.data_dir));
        const IndexLag lag = s.indexes.lag();
        st.setIndexBacklog(lag.backlog);
        st.setIndexOldestMs(lag.oldest_ms);
        st.setFreshnessP50Ms(lag.freshness_p50_ms);
        st.setFreshnessP99Ms(lag.freshness_p99_ms);
      }
      auto plugins = s.plugins.states();
      auto list = st.initPlugins(static_cast<unsigned>(plugins.size()));
      for (unsigned i = 0; i < plugins.size(); ++i)
        set_plugin(list[i], plugins[i], ctx.plugin_view());
    });
  };
  auto defer = [&] { s.run_on_worker([read, request] { read(request); }); };
  if (!s.inline_reads) return defer();
  s.inline_reads->run([&] { read(request); }, defer);
}

void create(const Services& s, const RequestContext& ctx, wire::CubeCreate::Reader args) {
  std::string name = exact(args.getName());
  std::string language = exact(args.getLanguage());
  if (Status st = check_cube_name(name); !st.ok()) return ctx.fail(st);
  SearchMode mode = s.config.search.default_mode;
  if (std::string_view asked = exact_view(args.getRetriever()); !asked.empty()) {
    auto parsed = parse_search_mode(asked);
    if (!parsed) {
      return ctx.fail(Status::bad_request("retriever '" + std::string(asked.substr(0, 64)) +
                                          "' is unknown (" + search_mode_names() + ")"));
    }
    mode = *parsed;
  }
  if (Status st = check_language(language); !st.ok()) return ctx.fail(st);
  if (Status st = check_embedder(*ctx.policy, s.config); !st.ok()) return ctx.fail(st);
  auto created = std::make_shared<store::Cube>();
  std::uint32_t dim = s.config.search.embedding_dim;
  std::string model = s.indexes.embedder_model();
  const std::uint32_t tenant = ctx.tenant;
  s.commits.submit({
      .apply =
          [=](store::WriteTxn& txn) {
            return within_quota(txn, tenant, *ctx.policy, [&] {
              return txn.create_cube(tenant, name, model, dim, now_ms(), created.get(),
                                     to_string(mode), language);
            });
          },
      .done =
          [&s, ctx, created](const store::Status& st) {
            if (!st.ok()) return ctx.fail(Status::from(st));
            if (Status open = s.indexes.open(*created); !open.ok())
              spdlog::error("opening the indexes of cube {}: {}", created->name, open.message);
            ctx.respond([&](wire::Response::Builder r) { set_cube(r.initCube(), *created); });
          },
      .shard = s.store.shard_of(tenant),
  });
}

// The name of the tenant whose memory is stored under `uid` (NSS: not on
// the loop).
std::string tenant_name_of(const Services& s, store::TenantId uid) {
  return s.tenants.tenant_name(s.tenants.peer(uid, nullptr));
}

// A cube shared with the caller: named "owner/cube", with its owner and
// what the grant allows.
void set_shared_cube(wire::Cube::Builder b, const store::Cube& cube, const std::string& owner_name,
                     store::ShareAccess access) {
  set_cube(b, cube);
  b.setName(text(owner_name + "/" + cube.name));
  b.setSharedBy(text(owner_name));
  b.setAccess(to_string(access));
}

// The caller's own cubes by name, then the cubes shared with it by owner
// and name.
void list(const Services& s, const RequestContext& ctx) {
  s.run_on_worker([&s, ctx] {
    struct Shared {
      store::Cube cube;
      std::string owner;
      store::ShareAccess access;
    };
    std::vector<store::Cube> cubes;
    std::vector<Shared> shared;
    {
      std::optional<store::ReadTxn> txn;
      std::vector<store::CubeShare> grants;
      store::Status st = s.store.begin_read(&txn);
      if (st.ok()) st = txn->list_cubes(ctx.tenant, &cubes);
      if (st.ok()) st = txn->shared_with(ctx.tenant, &grants);
      for (std::size_t i = 0; st.ok() && i < grants.size(); ++i) {
        Shared one{{}, {}, grants[i].access};
        st = txn->read_cube(grants[i].cube, &one.cube);
        if (st.ok()) shared.push_back(std::move(one));
      }
      if (!st.ok()) return ctx.fail(Status::from(st));
    }
    std::erase_if(cubes, [](const store::Cube& c) { return !visible_to_clients(c); });
    for (auto& one : shared) one.owner = tenant_name_of(s, one.cube.owner);
    std::sort(shared.begin(), shared.end(), [](const Shared& a, const Shared& b) {
      return std::tie(a.owner, a.cube.name) < std::tie(b.owner, b.cube.name);
    });
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initCubes(static_cast<unsigned>(cubes.size() + shared.size()));
      unsigned i = 0;
      for (const auto& cube : cubes) set_cube(list[i++], cube);
      for (const auto& one : shared) set_shared_cube(list[i++], one.cube, one.owner, one.access);
    });
  });
}

// A cube as `ctx`'s peer may see it: its own with its grants, or one
// shared with it. Worker.
void respond_cube(const Services& s, const RequestContext& ctx, const std::string& name) {
  std::optional<store::ReadTxn> txn;
  store::Cube cube;
  CubeRef ref;
  if (Status st = open_cube(s, ctx, name, CubeUse::read, &txn, &cube, &ref); !st.ok())
    return ctx.fail(st);
  store::CubeShare grant;
  std::vector<store::CubeShare> grants;
  store::Status st = ref.shared ? txn->find_share(cube.id, ctx.tenant, &grant)
                                : txn->list_shares(cube.id, &grants);
  if (!st.ok()) return ctx.fail(Status::from(st));
  txn.reset();
  std::vector<std::string> grantees;
  for (const auto& g : grants) grantees.push_back(tenant_name_of(s, g.tenant));
  std::string indexes = s.indexes.describe(cube);
  const std::string owner = ref.shared ? tenant_name_of(s, cube.owner) : "";
  ctx.respond([&](wire::Response::Builder r) {
    auto b = r.initCube();
    if (ref.shared) {
      set_shared_cube(b, cube, owner, grant.access);
    } else {
      set_cube(b, cube);
    }
    b.setIndexes(indexes);
    auto list = b.initShares(static_cast<unsigned>(grants.size()));
    for (unsigned i = 0; i < grants.size(); ++i) {
      list[i].setTenant(text(grantees[i]));
      list[i].setUid(grants[i].tenant);
      list[i].setAccess(to_string(grants[i].access));
      list[i].setGrantedAtMs(grants[i].granted_at_ms);
    }
  });
}

void show(const Services& s, const RequestContext& ctx, wire::CubeRef::Reader args) {
  s.run_on_worker([&s, ctx, name = exact(args.getName())] { respond_cube(s, ctx, name); });
}

// cubeShare (`write` set or not) and cubeUnshare (`grant` false): the
// owner changes who else may use its cube. Errors: permission_denied
// (owner/cube), not_found (the cube, the tenant, or for unshare the
// grant), bad_request (the owner itself), the store's.
void change_grant(const Services& s, const RequestContext& ctx, wire::CubeShare::Reader args,
                  bool grant) {
  std::string cube = exact(args.getCube());
  std::string tenant = exact(args.getTenant());
  const auto access = args.getWrite() ? store::ShareAccess::write : store::ShareAccess::read;
  if (Status st = check_owners_cube(cube, grant ? "share it" : "unshare it"); !st.ok())
    return ctx.fail(st);
  if (Status st = check_cube_name(cube); !st.ok()) return ctx.fail(st);
  if (tenant.empty() || tenant.size() > 64)
    return ctx.fail(Status::bad_request("name the tenant (at most 64 characters)"));
  // The tenant's name is looked up through NSS: on a worker.
  s.run_on_worker([&s, ctx, cube = std::move(cube), tenant = std::move(tenant), access, grant] {
    std::optional<Peer> grantee = s.tenants.find_tenant(tenant);
    if (!grantee) return ctx.fail(Status::not_found("no tenant named '" + tenant + "'"));
    if (grantee->tenant == ctx.tenant) {
      return ctx.fail(Status::bad_request("'" + tenant + "' is this cube's own tenant"));
    }
    const store::TenantId owner = ctx.tenant, to = grantee->tenant;
    s.commits.submit({
        .apply = [=](store::WriteTxn& txn) -> store::Status {
          store::Cube found;
          store::Status st = find_client_cube(txn.reader(), owner, cube, &found);
          if (!st.ok()) return st;
          if (grant) return txn.put_share({found.id, to, access, now_ms()});
          st = txn.remove_share(found.id, to, nullptr);
          if (st.code == store::Errc::not_found)
            st.message = "cube '" + cube + "' is not shared with '" + tenant + "'";
          return st;
        },
        .done =
            [&s, ctx, cube, owner, to, grant, tenant](const store::Status& st) {
              if (!st.ok()) return ctx.fail(Status::from(st));
              spdlog::info("uid {} {} cube {} {} {} (uid {})", ctx.uid,
                           grant ? "shared" : "unshared", cube, grant ? "with" : "from", tenant,
                           to);
              s.run_on_worker([&s, ctx, cube] { respond_cube(s, ctx, cube); });
            },
        .shard = s.store.shard_of(owner),
    });
  });
}

void remove(const Services& s, const RequestContext& ctx, wire::CubeRemove::Reader args) {
  if (Status st = check_owners_cube(exact_view(args.getName()), "remove it"); !st.ok())
    return ctx.fail(st);
  auto removed = std::make_shared<store::Cube>();
  const std::uint32_t tenant = ctx.tenant;
  const bool force = args.getForce();
  s.commits.submit({
      .apply =
          [tenant, force, removed, name = exact(args.getName())](store::WriteTxn& txn) {
            // Only a cube a client may name (not an import's staging cube).
            store::Cube named;
            if (store::Status st = find_client_cube(txn.reader(), tenant, name, &named); !st.ok())
              return st;
            return txn.remove_cube(tenant, name, force, removed.get());
          },
      .done =
          [&s, ctx, removed](const store::Status& st) {
            if (!st.ok()) return ctx.fail(Status::from(st));
            s.indexes.drop(removed->id);
            ctx.respond([](wire::Response::Builder r) { r.setCubeRemoved(); });
          },
      .frees_space = true,
      .shard = s.store.shard_of(tenant),
  });
}

}  // namespace

void add_cube_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::STATUS, [&s](const RequestContext& c, R::Reader) { status(s, c); });
  table.add(R::CUBE_CREATE,
            [&s](const RequestContext& c, R::Reader r) { create(s, c, r.getCubeCreate()); });
  table.add(R::CUBE_LIST, [&s](const RequestContext& c, R::Reader) { list(s, c); });
  table.add(R::CUBE_SHOW,
            [&s](const RequestContext& c, R::Reader r) { show(s, c, r.getCubeShow()); });
  table.add(R::CUBE_REMOVE,
            [&s](const RequestContext& c, R::Reader r) { remove(s, c, r.getCubeRemove()); });
  table.add(R::CUBE_SHARE, [&s](const RequestContext& c, R::Reader r) {
    change_grant(s, c, r.getCubeShare(), true);
  });
  table.add(R::CUBE_UNSHARE, [&s](const RequestContext& c, R::Reader r) {
    change_grant(s, c, r.getCubeUnshare(), false);
  });
}

}  // namespace memos::kernel
