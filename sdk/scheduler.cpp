// sdk/scheduler.cpp — Client's calls on the scheduler (memos(7),
// "Scheduling"): sched_status, sched_log and sched_run, and explain, which
// shows one memory's strength, retention and placement. Each is one request
// through Impl::call.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "memos/client.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

using sdk::ReplyReader;
using sdk::str;
using sdk::text;
using sdk::to_item;
using sdk::wrong_reply;

namespace {

SchedPass to_pass(wire::SchedPass::Reader p) {
  SchedPass out;
  out.at_ms = p.getAtMs();
  out.took_ms = p.getTookMs();
  out.cubes = p.getCubes();
  out.working_sets = p.getWorkingSets();
  out.promoted = p.getPromoted();
  out.demoted = p.getDemoted();
  out.archived = p.getArchived();
  out.prefills_queued = p.getPrefillsQueued();
  out.distillations = p.getDistillations();
  return out;
}

CubeSchedule to_schedule(wire::CubeSchedule::Reader c) {
  CubeSchedule out;
  out.cube = str(c.getCube());
  out.generation = c.getGeneration();
  for (auto id : c.getItems()) out.items.push_back(id);
  out.estimated_tokens = c.getEstimatedTokens();
  out.block_tokens = c.getBlockTokens();
  out.state = c.getState();
  out.prefill_pending = c.getPrefillPending();
  out.chats = c.getChats();
  out.restores = c.getRestores();
  out.prompt_tokens = c.getPromptTokens();
  out.reused_tokens = c.getReusedTokens();
  out.updated_at_ms = c.getUpdatedAtMs();
  return out;
}

}  // namespace

std::future<Result<SchedStatus>> Client::sched_status_async(std::string cube) {
  return impl_->call<SchedStatus>([&](wire::Request::Builder r) { r.setSchedStatus(text(cube)); },
                                  [](const wire::Response::Reader& r) -> Result<SchedStatus> {
                                    if (!r.isSchedStatus()) return wrong_reply<SchedStatus>();
                                    auto s = r.getSchedStatus();
                                    SchedStatus out;
                                    out.enabled = s.getEnabled();
                                    out.interval_s = s.getIntervalS();
                                    out.passes = s.getPasses();
                                    out.last_pass = to_pass(s.getLastPass());
                                    out.background_pending = s.getBackgroundPending();
                                    out.foreground_pending = s.getForegroundPending();
                                    for (auto c : s.getCubes()) out.cubes.push_back(to_schedule(c));
                                    out.settings = str(s.getSettings());
                                    return out;
                                  });
}

std::future<Result<std::vector<SchedDecision>>> Client::sched_log_async(std::string cube,
                                                                        std::uint32_t max) {
  return impl_->call<std::vector<SchedDecision>>(
      [&](wire::Request::Builder r) {
        auto q = r.initSchedLog();
        q.setCube(text(cube));
        q.setMax(max);
      },
      [](const wire::Response::Reader& r) -> Result<std::vector<SchedDecision>> {
        if (!r.isSchedLog()) return wrong_reply<std::vector<SchedDecision>>();
        std::vector<SchedDecision> out;
        for (auto d : r.getSchedLog()) {
          out.push_back(
              {d.getAtMs(), str(d.getCube()), d.getItem(), str(d.getAction()), str(d.getReason())});
        }
        return out;
      });
}

std::future<Result<SchedPass>> Client::sched_run_async() {
  return impl_->call<SchedPass>([](wire::Request::Builder r) { r.setSchedRun(); },
                                [](const wire::Response::Reader& r) -> Result<SchedPass> {
                                  if (!r.isSchedPass()) return wrong_reply<SchedPass>();
                                  return to_pass(r.getSchedPass());
                                });
}

std::future<Result<Explanation>> Client::explain_async(std::string cube, std::uint64_t id) {
  return impl_->call<Explanation>(
      [&](wire::Request::Builder r) {
        auto x = r.initExplain();
        x.setCube(text(cube));
        x.setItemId(id);
      },
      [](const wire::Response::Reader& r) -> Result<Explanation> {
        if (!r.isExplanation()) return wrong_reply<Explanation>();
        auto e = r.getExplanation();
        ReplyReader in;
        Explanation out;
        out.item = to_item(in, e.getItem());
        out.strength = e.getStrength();
        out.recalls = e.getRecalls();
        out.last_recall_ms = e.getLastRecallMs();
        out.retention = e.getRetention();
        out.score = e.getScore();
        out.time_unit = str(e.getTimeUnit());
        out.in_working_set = e.getInWorkingSet();
        out.position = e.getPosition();
        out.working_set_state = e.getWorkingSetState();
        for (auto a : e.getActivations()) out.activations.push_back(a);
        out.archive_at_ms = e.getArchiveAtMs();
        out.archived_by_scheduler = e.getArchivedByScheduler();
        return in.finish(std::move(out));
      });
}

}  // namespace memos
