// Cube requests, and the daemon's status: status, cubeCreate, cubeList,
// cubeShow, cubeRemove.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "kernel/handlers/areas.h"
#include "kernel/index_set.h"
#include "kernel/inline_reads.h"
#include "kernel/plugin_manager.h"
#include "kernel/quota.h"
#include "kernel/request_checks.h"

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
  auto created = std::make_shared<store::Cube>();
  std::uint32_t dim = s.config.search.embedding_dim;
  std::string model = s.indexes.embedder_model();
  const std::uint32_t tenant = ctx.tenant;
  s.commits.submit({
      [=](store::WriteTxn& txn) {
        return within_quota(txn, tenant, *ctx.policy, [&] {
          return txn.create_cube(tenant, name, model, dim, now_ms(), created.get(), to_string(mode),
                                 language);
        });
      },
      [&s, ctx, created](const store::Status& st) {
        if (!st.ok()) return ctx.fail(Status::from(st));
        if (Status open = s.indexes.open(*created); !open.ok())
          spdlog::error("opening the indexes of cube {}: {}", created->name, open.message);
        ctx.respond([&](wire::Response::Builder r) { set_cube(r.initCube(), *created); });
      },
  });
}

void list(const Services& s, const RequestContext& ctx) {
  s.run_on_worker([&s, ctx] {
    std::vector<store::Cube> cubes;
    if (Status st = list_cubes(s.store, ctx.tenant, &cubes); !st.ok()) return ctx.fail(st);
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initCubes(static_cast<unsigned>(cubes.size()));
      for (unsigned i = 0; i < cubes.size(); ++i) set_cube(list[i], cubes[i]);
    });
  });
}

void show(const Services& s, const RequestContext& ctx, wire::CubeRef::Reader args) {
  s.run_on_worker([&s, ctx, name = exact(args.getName())] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s.store, ctx.tenant, name, &txn, &cube); !st.ok())
      return ctx.fail(st);
    std::string indexes = s.indexes.describe(cube);
    ctx.respond([&](wire::Response::Builder r) {
      auto b = r.initCube();
      set_cube(b, cube);
      b.setIndexes(indexes);
    });
  });
}

void remove(const Services& s, const RequestContext& ctx, wire::CubeRemove::Reader args) {
  auto removed = std::make_shared<store::Cube>();
  const std::uint32_t tenant = ctx.tenant;
  const bool force = args.getForce();
  s.commits.submit({
      [tenant, force, removed, name = exact(args.getName())](store::WriteTxn& txn) {
        // Only a cube a client may name (not an import's staging cube).
        store::Cube named;
        if (store::Status st = find_client_cube(txn.reader(), tenant, name, &named); !st.ok())
          return st;
        return txn.remove_cube(tenant, name, force, removed.get());
      },
      [&s, ctx, removed](const store::Status& st) {
        if (!st.ok()) return ctx.fail(Status::from(st));
        s.indexes.drop(removed->id);
        ctx.respond([](wire::Response::Builder r) { r.setCubeRemoved(); });
      },
      /*frees_space=*/true,
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
}

}  // namespace memos::kernel
