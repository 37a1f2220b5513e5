// Plugin requests: pluginList, pluginInfo, pluginReload.
#include <algorithm>
#include <string>

#include "kernel/handlers/areas.h"
#include "kernel/index_set.h"
#include "kernel/plugin_manager.h"

namespace memos::kernel {
namespace {

// Answers with the named plugin's state, or not_found.
void respond_plugin(const Services& s, const RequestContext& ctx, const std::string& name) {
  for (const auto& p : s.plugins.states()) {
    if (p.manifest.name == name) {
      return ctx.respond(
          [&](wire::Response::Builder r) { set_plugin(r.initPlugin(), p, ctx.plugin_view()); });
    }
  }
  ctx.fail(Status::not_found("no plugin named '" + name + "'"));
}

void list(const Services& s, const RequestContext& ctx) {
  auto plugins = s.plugins.states();
  ctx.respond([&](wire::Response::Builder r) {
    auto list = r.initPlugins(static_cast<unsigned>(plugins.size()));
    for (unsigned i = 0; i < plugins.size(); ++i)
      set_plugin(list[i], plugins[i], ctx.plugin_view());
  });
}

// A new embedder takes over only if it embeds with the same model: every
// cube's vectors were made by it. Errors: conflict (the reload failed or
// the model changed; the running embedder stays).
Status reload_embedder(const Services& s, const std::string& name) {
  std::string model, error;
  auto embedder = s.plugins.load_embedder(&model, &error);
  if (!embedder) {
    // The running embedder stays; the manifest on disk is what failed.
    s.plugins.set_state(name, memos::PluginState::loaded, "reload failed: " + error);
    return Status::conflict("reload failed, the loaded embedder stays: " + error);
  }
  if (model != s.indexes.embedder_model()) {
    s.plugins.set_state(name, memos::PluginState::loaded, "reload refused: its model changed");
    return Status::conflict("the reloaded embedder has model '" + model + "', not '" +
                            s.indexes.embedder_model() +
                            "': existing cubes would not match; restart instead");
  }
  s.indexes.set_embedder(std::move(embedder), model);
  return {};
}

// Errors: permission_denied (not an admin: a reload swaps the embedder for
// every tenant and lifts a quarantine), not_found, conflict.
void reload(const Services& s, const RequestContext& ctx, std::string name) {
  if (!ctx.admin) {
    return ctx.fail(Status::permission_denied(
        "plugin reload is for root or memosd's own uid (it changes every tenant's plugins)"));
  }
  // Loading runs plugin code (create, describe): off the loop.
  s.run_on_worker([&s, ctx, name = std::move(name)] {
    s.plugins.scan();
    auto states = s.plugins.states();
    if (std::none_of(states.begin(), states.end(),
                     [&](const auto& p) { return p.manifest.name == name; })) {
      return ctx.fail(Status::not_found("no plugin named '" + name + "'"));
    }
    if (name == s.plugins.embedder_name()) {
      if (Status st = reload_embedder(s, name); !st.ok()) return ctx.fail(st);
    } else {
      s.plugins.reset_quarantine(name);  // a retriever, the fuser, the executor
    }
    respond_plugin(s, ctx, name);
  });
}

}  // namespace

void add_plugin_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::PLUGIN_LIST, [&s](const RequestContext& c, R::Reader) { list(s, c); });
  table.add(R::PLUGIN_INFO, [&s](const RequestContext& c, R::Reader r) {
    respond_plugin(s, c, exact(r.getPluginInfo()));
  });
  table.add(R::PLUGIN_RELOAD, [&s](const RequestContext& c, R::Reader r) {
    reload(s, c, exact(r.getPluginReload()));
  });
}

}  // namespace memos::kernel
