// Scheduler requests: schedStatus, schedLog, schedRun, explain (memos(7),
// "Scheduling"). Each runs on a worker: they read the store, and a pass
// may take a while over a large tenant.
//
// A tenant sees and moves only its own memory: status and log list the
// caller's cubes, a pass runs over the caller's cubes (an administrator's
// over everyone's), and explain answers for a cube the caller may read
// (a shared cube's strength is its owner's, shown as it is).
#include <toml++/toml.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/request_checks.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/scheduler/strength.h"
#include "kernel/serial_lane.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

constexpr std::uint32_t kDefaultLogEntries = 100;
constexpr std::uint32_t kMaxLogEntries = 10000;

std::string settings_toml(const policies::SchedulerSettings& s) {
  toml::table t;
  t.insert_or_assign("enabled", s.enabled);
  t.insert_or_assign("working_set_tokens", static_cast<std::int64_t>(s.working_set_tokens));
  t.insert_or_assign("strength_gain", s.strength_gain);
  t.insert_or_assign("search_recall_weight", s.search_recall_weight);
  t.insert_or_assign("time_unit", policies::time_unit_name(s.time_unit_s));
  t.insert_or_assign("forgetting", std::string(policies::to_string(s.forgetting)));
  t.insert_or_assign("archive_below", s.archive_below);
  t.insert_or_assign("archive_after_s", static_cast<std::int64_t>(s.archive_after_s));
  toml::table root;
  root.insert_or_assign("scheduler", std::move(t));
  std::ostringstream out;
  out << root;
  return out.str();
}

void set_pass(wire::SchedPass::Builder b, const scheduler::PassSummary& p) {
  b.setAtMs(p.at_ms);
  b.setTookMs(p.took_ms);
  b.setCubes(p.cubes);
  b.setWorkingSets(p.working_sets);
  b.setPromoted(p.promoted);
  b.setDemoted(p.demoted);
  b.setArchived(p.archived);
  b.setPrefillsQueued(p.prefills_queued);
  b.setDistillations(p.distillations);
}

// A status or log request's cube: "" (every cube of the caller's) or a
// name. Errors: bad_request.
Status check_cube_filter(const std::string& name) {
  return name.empty() ? Status{} : check_cube_text(name);
}

// The caller's cube names by id, for the cubes it owns. Errors: the store's.
Status own_cube_names(const Services& s, const RequestContext& ctx,
                      std::map<store::CubeId, std::string>* out) {
  std::optional<store::ReadTxn> txn;
  std::vector<store::Cube> cubes;
  store::Status st = s.store.begin_read(&txn);
  if (st.ok()) st = txn->list_cubes(ctx.tenant, &cubes);
  if (!st.ok()) return Status::from(st);
  for (const auto& c : cubes) (*out)[c.id] = c.name;
  return {};
}

// The one cube `name` names, the caller's own ("" : none, 0). Errors:
// not_found, permission_denied (another tenant's cube: its schedule is its
// owner's), the store's.
Status own_cube(const Services& s, const RequestContext& ctx, const std::string& name,
                store::CubeId* out) {
  *out = 0;
  if (name.empty()) return {};
  if (Status st = check_owners_cube(name, "show its schedule"); !st.ok()) return st;
  if (Status st = check_cube_name(name); !st.ok()) return st;
  std::optional<store::ReadTxn> txn;
  store::Cube cube;
  if (Status st = open_cube(s, ctx, name, CubeUse::owner, &txn, &cube); !st.ok()) return st;
  *out = cube.id;
  return {};
}

void status(const Services& s, const RequestContext& ctx, std::string cube_name) {
  if (Status st = check_cube_filter(cube_name); !st.ok()) return ctx.fail(st);
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name)] {
    store::CubeId only = 0;
    std::map<store::CubeId, std::string> names;
    if (Status st = own_cube(s, ctx, cube_name, &only); !st.ok()) return ctx.fail(st);
    if (Status st = own_cube_names(s, ctx, &names); !st.ok()) return ctx.fail(st);
    auto cubes = s.scheduler.schedules(ctx.tenant, only);
    std::erase_if(cubes, [&](const auto& c) { return !names.contains(c.set.cube); });
    const auto settings = scheduler::settings_for(s.config, *ctx.policy);
    const auto pass = s.scheduler.last_pass().value_or(scheduler::PassSummary{});
    const std::string text = settings_toml(settings);
    ctx.respond([&](wire::Response::Builder r) {
      auto b = r.initSchedStatus();
      b.setEnabled(settings.enabled);
      b.setIntervalS(s.config.scheduler.interval_s);
      b.setPasses(s.scheduler.passes());
      set_pass(b.initLastPass(), pass);
      b.setBackgroundPending(static_cast<std::uint32_t>(s.executor_lane.background_pending()));
      b.setForegroundPending(static_cast<std::uint32_t>(s.executor_lane.foreground_pending()));
      b.setSettings(text);
      auto list = b.initCubes(static_cast<unsigned>(cubes.size()));
      for (unsigned i = 0; i < cubes.size(); ++i) {
        const auto& c = cubes[i];
        auto o = list[i];
        o.setCube(names[c.set.cube]);
        o.setGeneration(c.set.generation);
        auto items = o.initItems(static_cast<unsigned>(c.set.items.size()));
        for (unsigned j = 0; j < items.size(); ++j) items.set(j, c.set.items[j]);
        o.setEstimatedTokens(c.set.estimated_tokens);
        o.setBlockTokens(c.set.block_tokens);
        o.setState(c.set.state);
        o.setPrefillPending(c.prefill_pending);
        o.setChats(c.chats);
        o.setRestores(c.restores);
        o.setPromptTokens(c.prompt_tokens);
        o.setReusedTokens(c.reused_tokens);
        o.setUpdatedAtMs(c.set.updated_at_ms);
      }
    });
  });
}

void log(const Services& s, const RequestContext& ctx, wire::SchedLogQuery::Reader in) {
  std::string cube_name = exact(in.getCube());
  if (Status st = check_cube_filter(cube_name); !st.ok()) return ctx.fail(st);
  const std::uint32_t max = in.getMax() == 0 ? kDefaultLogEntries : in.getMax();
  if (max > kMaxLogEntries) {
    return ctx.fail(
        Status::bad_request("max is at most " + std::to_string(kMaxLogEntries) + " decisions"));
  }
  s.run_on_worker([&s, ctx, max, cube_name = std::move(cube_name)] {
    store::CubeId only = 0;
    std::map<store::CubeId, std::string> names;
    if (Status st = own_cube(s, ctx, cube_name, &only); !st.ok()) return ctx.fail(st);
    if (Status st = own_cube_names(s, ctx, &names); !st.ok()) return ctx.fail(st);
    auto decisions = s.scheduler.decisions(ctx.tenant, only, max);
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initSchedLog(static_cast<unsigned>(decisions.size()));
      for (unsigned i = 0; i < list.size(); ++i) {
        const auto& d = decisions[i];
        auto it = names.find(d.cube);
        // A cube removed since keeps the name the decision was made under.
        list[i].setCube(it != names.end() ? it->second : d.cube_name);
        list[i].setAtMs(d.at_ms);
        list[i].setItem(d.item);
        list[i].setAction(scheduler::to_string(d.action));
        list[i].setReason(d.reason);
      }
    });
  });
}

void run(const Services& s, const RequestContext& ctx) {
  s.run_on_worker([&s, ctx] {
    scheduler::PassSummary pass;
    std::optional<store::TenantId> only;
    if (!ctx.admin) only = ctx.tenant;
    if (Status st = s.scheduler.run_pass(s, only, &pass); !st.ok()) return ctx.fail(st);
    ctx.respond([&](wire::Response::Builder r) { set_pass(r.initSchedPass(), pass); });
  });
}

void explain(const Services& s, const RequestContext& ctx, wire::ItemRef::Reader in) {
  std::string cube_name = exact(in.getCube());
  const std::uint64_t item = in.getItemId();
  if (Status st = check_cube_text(cube_name); !st.ok()) return ctx.fail(st);
  s.run_on_worker([&s, ctx, item, cube_name = std::move(cube_name)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    store::Item head;
    store::AccessStats stats;
    std::vector<std::uint64_t> activations;
    store::Status st = txn->get_item(cube.id, item, 0, &head);
    if (st.code == store::Errc::not_found) st.message = "memory " + format_id(item) + " not found";
    if (st.ok()) st = txn->access_stats(cube.id, item, &stats);
    if (st.ok()) {
      st = txn->list_activations(cube.id, [&](const store::Activation& a) {
        if (std::find(a.sources.begin(), a.sources.end(), item) != a.sources.end())
          activations.push_back(a.id);
      });
    }
    txn.reset();
    if (!st.ok()) return ctx.fail(Status::from(st));
    // The owner's settings: the strength is the owner's memory's.
    auto owner_policy = s.tenants.peer(cube.owner, nullptr).policy;
    const auto settings = scheduler::settings_for(s.config, *owner_policy);
    const std::int64_t now = now_ms();
    const double r = scheduler::retention(stats, head.created_at_ms, now, settings.time_unit_s);
    std::int64_t archive_at = 0;
    if (settings.forgetting == policies::Forgetting::archive &&
        head.state == store::State::active) {
      archive_at = scheduler::falls_below_at_ms(stats, head.created_at_ms, settings.time_unit_s,
                                                settings.archive_below) +
                   static_cast<std::int64_t>(settings.archive_after_s) * 1000;
    }
    auto set = s.scheduler.working_set(cube.id);
    std::optional<std::uint32_t> position;
    if (set) {
      auto it = std::find(set->items.begin(), set->items.end(), item);
      if (it != set->items.end()) position = static_cast<std::uint32_t>(it - set->items.begin());
    }
    ctx.respond([&](wire::Response::Builder out) {
      auto e = out.initExplanation();
      auto b = e.initItem();
      set_item(b, head);
      set_access(b, stats);
      e.setStrength(stats.strength);
      e.setRecalls(stats.recalls);
      e.setLastRecallMs(stats.last_recall_ms);
      e.setRetention(r);
      e.setScore(scheduler::working_set_score(r, head.importance));
      e.setTimeUnit(policies::time_unit_name(settings.time_unit_s));
      e.setInWorkingSet(position.has_value());
      e.setPosition(position.value_or(0));
      e.setWorkingSetState(set ? set->state : 0);
      auto list = e.initActivations(static_cast<unsigned>(activations.size()));
      for (unsigned i = 0; i < list.size(); ++i) list.set(i, activations[i]);
      e.setArchiveAtMs(archive_at);
      e.setArchivedByScheduler(head.state == store::State::archived &&
                               head.provenance.session == scheduler::kSchedulerSession);
    });
  });
}

}  // namespace

void add_scheduler_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::SCHED_STATUS, [&s](const RequestContext& c, R::Reader r) {
    status(s, c, exact(r.getSchedStatus()));
  });
  table.add(R::SCHED_LOG,
            [&s](const RequestContext& c, R::Reader r) { log(s, c, r.getSchedLog()); });
  table.add(R::SCHED_RUN, [&s](const RequestContext& c, R::Reader) { run(s, c); });
  table.add(R::EXPLAIN,
            [&s](const RequestContext& c, R::Reader r) { explain(s, c, r.getExplain()); });
}

}  // namespace memos::kernel
