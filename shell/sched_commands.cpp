// sched_commands.cpp — `sched status|log|run` and `explain`
// (sched_commands.h): their options, and how a schedule, a decision and an
// explanation print.
#include "shell/sched_commands.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "shell/item_output.h"
#include "shell/time_args.h"

namespace memos::shell {
namespace {

// A time, or "never" for 0 (none yet).
std::string when(std::int64_t ms) {
  return ms ? format_time(ms) : "never";
}

Json pass_json(const memos::SchedPass& p) {
  Json j;
  j["at_ms"] = p.at_ms;
  j["took_ms"] = json_number(p.took_ms);
  j["cubes"] = p.cubes;
  j["working_sets"] = p.working_sets;
  j["promoted"] = p.promoted;
  j["demoted"] = p.demoted;
  j["archived"] = p.archived;
  j["prefills_queued"] = p.prefills_queued;
  j["distillations"] = p.distillations;
  return j;
}

void print_pass(const char* label, const memos::SchedPass& p) {
  if (p.at_ms == 0) {
    std::printf("%-12s none yet\n", label);
    return;
  }
  std::printf(
      "%-12s %s, %.1f ms: %u cubes, %u working sets; %u promoted, %u demoted, %u archived, "
      "%u prefills queued, %u distillations\n",
      label, format_time(p.at_ms).c_str(), p.took_ms, p.cubes, p.working_sets, p.promoted,
      p.demoted, p.archived, p.prefills_queued, p.distillations);
}

Json schedule_json(const memos::CubeSchedule& c) {
  Json j;
  j["cube"] = c.cube;
  j["generation"] = c.generation;
  j["items"] = ids_json(c.items);
  j["estimated_tokens"] = c.estimated_tokens;
  j["block_tokens"] = c.block_tokens;
  j["state"] = c.state ? Json(memos::format_id(c.state)) : Json(nullptr);
  j["prefill_pending"] = c.prefill_pending;
  j["chats"] = c.chats;
  j["restores"] = c.restores;
  j["hit_rate"] = json_number(c.chats ? static_cast<double>(c.restores) / c.chats : 0.0);
  j["prompt_tokens"] = c.prompt_tokens;
  j["reused_tokens"] = c.reused_tokens;
  j["updated_at_ms"] = c.updated_at_ms;
  return j;
}

void print_schedule(const memos::CubeSchedule& c) {
  const char* state = c.prefill_pending ? "prefill pending"
                      : c.state         ? "prefilled"
                                        : "not prefilled";
  std::printf("cube %s: %zu memories, about %u tokens (block %u), %s", c.cube.c_str(),
              c.items.size(), c.estimated_tokens, c.block_tokens, state);
  if (c.state) std::printf(" as %s", memos::format_id(c.state).c_str());
  std::printf("\n  chats %llu, restored %llu (hit rate %.0f%%), tokens reused %llu of %llu\n",
              static_cast<unsigned long long>(c.chats), static_cast<unsigned long long>(c.restores),
              c.chats ? 100.0 * static_cast<double>(c.restores) / c.chats : 0.0,
              static_cast<unsigned long long>(c.reused_tokens),
              static_cast<unsigned long long>(c.prompt_tokens));
  std::printf("  generation %llu, changed %s\n", static_cast<unsigned long long>(c.generation),
              when(c.updated_at_ms).c_str());
  // The first members; a set of hundreds would bury the rest of the status.
  constexpr std::size_t kShown = 10;
  for (std::size_t i = 0; i < c.items.size() && i < kShown; ++i) {
    std::printf("  %3zu  %s\n", i, memos::format_id(c.items[i]).c_str());
  }
  if (c.items.size() > kShown) {
    std::printf("  ... and %zu more (--json lists them all)\n", c.items.size() - kShown);
  }
}

int status(const SchedArgs& a, memos::Client& client, const Output& out) {
  auto r = client.sched_status(a.cube);
  if (!r) return out.refused(r.error(), a.cube.empty() ? "" : "cube '" + a.cube + "'");
  const auto& s = r.value();
  if (out.json()) {
    Json j;
    j["enabled"] = s.enabled;
    j["interval_s"] = s.interval_s;
    j["passes"] = s.passes;
    j["last_pass"] = pass_json(s.last_pass);
    j["background_pending"] = s.background_pending;
    j["foreground_pending"] = s.foreground_pending;
    j["settings"] = s.settings;
    j["cubes"] = Json::array();
    for (const auto& c : s.cubes) j["cubes"].push_back(schedule_json(c));
    return out.emit(j);
  }
  std::printf("scheduler    %s, a pass every %u s, %llu passes so far\n",
              s.enabled ? "on" : "off (for this tenant)", s.interval_s,
              static_cast<unsigned long long>(s.passes));
  print_pass("last pass", s.last_pass);
  std::printf("pending      %u background prefills, %u client jobs on the executor lane\n",
              s.background_pending, s.foreground_pending);
  if (s.cubes.empty()) std::printf("no working sets yet (a cube gets one with its first chat)\n");
  for (const auto& c : s.cubes) print_schedule(c);
  return 0;
}

int log(const SchedArgs& a, memos::Client& client, const Output& out) {
  auto r = client.sched_log(a.cube, a.max);
  if (!r) return out.refused(r.error(), a.cube.empty() ? "" : "cube '" + a.cube + "'");
  if (out.json()) {
    Json j = Json::array();
    for (const auto& d : r.value()) {
      Json e;
      e["at_ms"] = d.at_ms;
      e["cube"] = d.cube;
      e["item"] = memos::format_id(d.item);
      e["action"] = d.action;
      e["reason"] = d.reason;
      j.push_back(std::move(e));
    }
    return out.emit(j);
  }
  if (r->empty()) std::printf("no decisions yet\n");
  for (const auto& d : r.value()) {
    std::printf("%s  %-8s  %s/%s  %s\n", format_time(d.at_ms).c_str(), d.action.c_str(),
                d.cube.c_str(), memos::format_id(d.item).c_str(), d.reason.c_str());
  }
  return 0;
}

int run(memos::Client& client, const Output& out) {
  auto r = client.sched_run();
  if (!r) return out.refused(r.error());
  if (out.json()) return out.emit(pass_json(r.value()));
  print_pass("pass", r.value());
  return 0;
}

int explain(const SchedArgs& a, memos::Client& client, const Output& out) {
  auto r = client.explain(a.cube, a.item_id);
  if (!r) return out.refused(r.error(), "cube '" + a.cube + "', item " + a.id);
  const auto& e = r.value();
  if (out.json()) {
    Json j;
    j["item"] = item_json(e.item);
    j["strength"] = json_number(e.strength);
    j["recalls"] = json_number(e.recalls);
    j["last_recall_ms"] = e.last_recall_ms;
    j["retention"] = json_number(e.retention);
    j["score"] = json_number(e.score);
    j["time_unit"] = e.time_unit;
    j["in_working_set"] = e.in_working_set;
    if (e.in_working_set) j["position"] = e.position;
    j["working_set_state"] =
        e.working_set_state ? Json(memos::format_id(e.working_set_state)) : Json(nullptr);
    j["activations"] = ids_json(e.activations);
    j["archive_at_ms"] = e.archive_at_ms;
    j["archived_by_scheduler"] = e.archived_by_scheduler;
    return out.emit(j);
  }
  std::printf("item         %s in %s (%s)\n", memos::format_id(e.item.id).c_str(), a.cube.c_str(),
              to_string(e.item.state));
  std::printf("strength     S = %.3f after %.2f recalls; last recall %s\n", e.strength, e.recalls,
              e.last_recall_ms ? format_time(e.last_recall_ms).c_str() : "never (from creation)");
  std::printf("retention    R = %.4f (t in %s); R x importance %.4f\n", e.retention,
              e.time_unit.c_str(), e.score);
  if (e.in_working_set) {
    std::printf("tier         plaintext, working set position %u", e.position);
    if (e.working_set_state) {
      std::printf(", its state %s", memos::format_id(e.working_set_state).c_str());
    }
    std::printf("\n");
  } else {
    std::printf("tier         plaintext, not in the working set\n");
  }
  std::printf("activation   %zu stored states hold it", e.activations.size());
  for (std::uint64_t id : e.activations) std::printf(" %s", memos::format_id(id).c_str());
  std::printf("\n");
  if (e.archived_by_scheduler) {
    std::printf("archived     by the scheduler; a read brings it back\n");
  } else if (e.archive_at_ms) {
    std::printf("archive at   %s unless recalled\n", format_time(e.archive_at_ms).c_str());
  }
  return 0;
}

}  // namespace

void add_sched_commands(CLI::App& app, SchedArgs& a) {
  auto* sched = app.add_subcommand("sched", "the scheduler: working sets, decisions, passes");
  sched->require_subcommand(1);
  sched->add_subcommand("status", "working sets, pending prefills and the last pass")
      ->add_option("CUBE", a.cube, "only this cube (default: every cube with a working set)");
  auto* log = sched->add_subcommand("log", "the scheduler's decisions and their reasons");
  log->add_option("CUBE", a.cube, "only this cube (default: all of yours)");
  log->add_option("--max", a.max, "the last N decisions (default 100)")
      ->check(CLI::Range(1u, 10000u));
  sched->add_subcommand("run", "run a scheduler pass now");
  auto* explain = app.add_subcommand("explain", "a memory's strength, retention and tier");
  explain->add_option("CUBE", a.cube, "the cube")->required();
  explain->add_option("ITEM", a.id, "the memory's id")->required();
}

void convert_sched_args(CLI::App& app, SchedArgs& a) {
  if (!app.got_subcommand("explain")) return;
  auto id = memos::parse_id(a.id);
  if (!id) throw UsageError{"'" + a.id + "' is not an item id (13 characters of base32)"};
  a.item_id = *id;
}

std::optional<int> run_sched_commands(CLI::App& app, const SchedArgs& a, memos::Client& client,
                                      const Output& out) {
  if (app.got_subcommand("explain")) return explain(a, client, out);
  CLI::App* sched = app.get_subcommand("sched");
  if (!sched->parsed()) return std::nullopt;
  if (sched->got_subcommand("status")) return status(a, client, out);
  if (sched->got_subcommand("log")) return log(a, client, out);
  return run(client, out);
}

}  // namespace memos::shell
