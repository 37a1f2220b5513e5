// paramDistill and the job requests (distill.h).
#include "kernel/handlers/distill.h"

#include <capnp/serialize.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "kernel/cube_access.h"
#include "kernel/handlers/param_write.h"
#include "kernel/plugin_executor.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"
#include "kernel/serial_lane.h"

namespace memos::kernel {
namespace {

void set_job(wire::Job::Builder b, const Job& j) {
  b.setId(j.id);
  b.setKind(j.kind);
  b.setCube(j.cube);
  b.setName(j.name);
  b.setState(to_string(j.state));
  b.setDone(j.done);
  b.setTotal(j.total);
  b.setLoss(j.loss);
  b.setMessage(j.message);
  b.setCreatedAtMs(j.created_at_ms);
  b.setStartedAtMs(j.started_at_ms);
  b.setFinishedAtMs(j.finished_at_ms);
  b.setItemId(j.item);
  b.setVersion(j.version);
  b.setMemories(j.memories);
  b.setTokens(j.tokens);
}

void respond_job(const RequestContext& ctx, const Job& job) {
  ctx.respond([&](wire::Response::Builder r) { set_job(r.initJob(), job); });
}

// One distillation's progress through the lane.
struct Run {
  std::uint64_t job = 0;
  RequestContext ctx;  // the asking request's, answered already: its tenant and policy
  DistillSpec spec;
  std::uint64_t session = 0;  // the executor's distillation; 0: not begun
};

void fail_job(const Services& s, const Run& run, const std::string& why) {
  s.jobs->update(run.job, [&](Job& j) {
    if (j.finished()) return;
    j.state = JobState::failed;
    j.message = why;
  });
}

// The context the adapter's write answers: the job, not a client. Its
// reply (an item or an error) finishes the job.
RequestContext job_context(const Services& s, const Run& run) {
  RequestContext c = run.ctx;
  c.idempotency_key.clear();
  c.wait_searchable = false;
  c.max_reply_bytes = SIZE_MAX;
  JobTable* jobs = s.jobs;
  const std::uint64_t id = run.job;
  c.reply = [jobs, id](Frame frame, bool last) {
    if (!last) return;
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(frame->begin(), frame->size()));
    auto r = reader.getRoot<wire::Response>();
    jobs->update(id, [&](Job& j) {
      if (r.isItem()) {
        j.state = JobState::done;
        j.item = r.getItem().getId();
        j.version = r.getItem().getVersion();
        j.message = "wrote adapter '" + j.name + "' (item " + format_id(j.item) + ", version " +
                    std::to_string(j.version) + ")";
      } else {
        j.state = JobState::failed;
        j.message = r.isError() ? std::string(r.getError().getMessage().cStr())
                                : "the adapter's write answered nothing";
      }
    });
  };
  return c;
}

// The adapter is done: into the blob store, checked by the executor like an
// upload, written as the cube's item.
void write_adapter(const Services& s, Run& run) {
  std::string gguf;
  if (Status st = s.executor->distill_finish(run.session, run.spec.name, &gguf); !st.ok())
    return fail_job(s, run, "the executor did not give the adapter: " + st.message);
  store::BlobId blob;
  if (store::Status st = s.blobs->put(gguf, &blob); !st.ok())
    return fail_job(s, run, "keeping the adapter: " + st.message);
  AdapterRef ref{s.blobs->path(blob), blob, gguf.size(), 1, "lora"};
  AdapterFacts facts;
  if (Status st = s.executor->check_adapter(ref, &facts); !st.ok())
    return fail_job(s, run, "the executor refused its own adapter: " + st.message);
  std::string text = run.spec.description;
  if (text.empty()) {
    text = describe(run.spec.name, facts, s.executor->info().model) + ", distilled from " +
           std::to_string(run.spec.sources.size()) + " memories (" + run.spec.selection + ")";
  }
  commit_param(s, job_context(s, run), run.spec.cube,
               parametric_item(
                   facts, ref, run.spec.name, run.spec.scale,
                   "distilled by job " + std::to_string(run.job) + " from " + run.spec.selection),
               std::move(text), run.spec.sources);
}

// Asks the executor to forget the run's distillation, if it began one.
void forget(const Services& s, const Run& run) {
  if (run.session == 0) return;
  if (Status st = s.executor->distill_cancel(run.session); !st.ok())
    spdlog::debug("forgetting distillation {}: {}", run.session, st.message);
}

// Whether the job was asked to stop; if so it is stopped (cancelled).
bool stopped_if_cancelled(const Services& s, const Run& run) {
  if (!s.jobs->cancel_requested(run.job)) return false;
  forget(s, run);
  s.jobs->update(run.job, [](Job& j) {
    if (!j.finished()) j.state = JobState::cancelled;
  });
  return true;
}

// One step on the lane's background queue, which queues the next: a chat
// queued meanwhile runs first.
void post_step(const Services& s, std::shared_ptr<Run> run) {
  s.executor_lane.post_background([&s, run](bool stopping) {
    if (stopping) {
      forget(s, *run);
      return fail_job(s, *run, "memosd stopped; nothing was written");
    }
    if (stopped_if_cancelled(s, *run)) return;
    PluginExecutor::DistillProgress p;
    if (run->session == 0) {
      PluginExecutor::DistillOptions o;
      o.rank = run->spec.rank;
      o.steps = run->spec.steps;
      if (Status st = s.executor->distill_begin(run->spec.texts, o, &p); !st.ok())
        return fail_job(s, *run, st.message);
      run->session = p.id;
      std::vector<std::string>().swap(run->spec.texts);  // the executor has them
    } else if (Status st = s.executor->distill_step(run->session, &p); !st.ok()) {
      forget(s, *run);
      return fail_job(s, *run,
                      st.retryable ? "the executor restarted mid-job; run it again" : st.message);
    }
    s.jobs->update(run->job, [&](Job& j) {
      if (j.state == JobState::queued) {
        j.state = JobState::running;
        j.started_at_ms = now_ms();
      }
      j.done = p.done;
      j.total = p.total;
      j.loss = p.loss;
      j.tokens = p.tokens;
    });
    // A cancel that came during the step stops it before the next one is
    // queued behind other work.
    if (stopped_if_cancelled(s, *run)) return;
    if (p.done < p.total) return post_step(s, run);
    write_adapter(s, *run);
  });
}

// The cube's memories the request names (by tag, by id, or all of them),
// active plaintext ones only. Worker thread. Errors: not_found, bad_request,
// too_large, the store's.
Status gather(const Services& s, const RequestContext& ctx, const std::string& tag,
              const std::vector<store::ItemId>& ids, DistillSpec* spec) {
  std::optional<store::ReadTxn> txn;
  store::Cube cube;
  if (Status st = open_cube(s, ctx, spec->cube, CubeUse::write, &txn, &cube); !st.ok()) return st;
  std::size_t bytes = 0;
  auto take = [&](const store::Item& it) -> Status {
    if (spec->texts.size() >= kMaxDistillMemories) {
      return Status::too_large("over " + std::to_string(kMaxDistillMemories) +
                               " memories: name fewer (--tag, --items)");
    }
    bytes += it.text.size();
    if (bytes > kMaxDistillTextBytes) {
      return Status::too_large("the memories hold over " +
                               std::to_string(kMaxDistillTextBytes >> 20) +
                               " MiB of text: name fewer (--tag, --items)");
    }
    spec->texts.push_back(it.text);
    spec->sources.push_back(it.id);
    return {};
  };
  auto usable = [](const store::Item& it) {
    return it.tier == store::Tier::plaintext && it.state == store::State::active;
  };
  Status taken;
  if (!ids.empty()) {
    for (store::ItemId id : ids) {
      store::Item it;
      store::Status st = txn->get_item(cube.id, id, 0, &it);
      if (st.code == store::Errc::not_found || (st.ok() && !usable(it))) {
        return Status::not_found("item " + format_id(id) + " is not an active plaintext memory");
      }
      if (!st.ok()) return Status::from(st);
      if (taken = take(it); !taken.ok()) return taken;
    }
    spec->selection = std::to_string(ids.size()) + " named memories";
    return {};
  }
  store::Status st = txn->for_each_live_item(cube.id, [&](const store::Item& it) {
    if (!taken.ok() || !usable(it)) return;
    if (!tag.empty() && std::find(it.tags.begin(), it.tags.end(), tag) == it.tags.end()) return;
    taken = take(it);
  });
  if (!st.ok()) return Status::from(st);
  if (!taken.ok()) return taken;
  if (spec->texts.empty()) {
    return Status::not_found(tag.empty() ? "the cube holds no active memory to distill"
                                         : "no active memory of the cube is tagged '" + tag + "'");
  }
  spec->selection = tag.empty() ? "every memory" : "memories tagged " + tag;
  return {};
}

void distill(const Services& s, const RequestContext& ctx, wire::ParamDistill::Reader in) {
  if (!s.jobs) return ctx.fail(Status::unavailable("this memosd runs no jobs", false));
  auto spec = std::make_shared<DistillSpec>();
  spec->cube = exact(in.getCube());
  spec->name = exact(in.getName());
  spec->description = exact(in.getDescription());
  spec->scale = in.getScale() == 0 ? 1 : in.getScale();
  spec->rank = in.getRank();
  spec->steps = in.getSteps();
  std::string tag = exact(in.getTag());
  if (Status st = check_owners_cube(spec->cube, "distill its memories"); !st.ok())
    return ctx.fail(st);
  if (Status st = check_new_param(s, ctx, spec->cube, spec->name, spec->scale, spec->description);
      !st.ok())
    return ctx.fail(st);
  if (spec->rank > kMaxDistillRank)
    return ctx.fail(Status::bad_request("the rank is at most " + std::to_string(kMaxDistillRank)));
  if (spec->steps > kMaxDistillSteps) {
    return ctx.fail(
        Status::bad_request("the steps are at most " + std::to_string(kMaxDistillSteps)));
  }
  if (in.getIds().size() > kMaxDistillMemories) {
    return ctx.fail(Status::too_large("at most " + std::to_string(kMaxDistillMemories) +
                                      " memories in one distillation"));
  }
  if (!tag.empty() && in.getIds().size() > 0)
    return ctx.fail(Status::bad_request("name the memories by tag or by id, not both"));
  if (!tag.empty()) {
    if (Status st = check_tags({tag}, s.config.store); !st.ok()) return ctx.fail(st);
  }
  std::vector<store::ItemId> ids;
  std::set<store::ItemId> seen;
  for (std::uint64_t id : in.getIds()) {
    if (seen.insert(id).second) ids.push_back(id);
  }
  s.run_on_worker([&s, ctx, spec, tag = std::move(tag), ids = std::move(ids)] {
    if (Status st = gather(s, ctx, tag, ids, spec.get()); !st.ok()) return ctx.fail(st);
    Job job;
    if (Status st = start_distillation(s, ctx, std::move(*spec), &job); !st.ok())
      return ctx.fail(st);
    respond_job(ctx, job);
  });
}

void list_jobs(const Services& s, const RequestContext& ctx) {
  if (!s.jobs) return ctx.fail(Status::unavailable("this memosd runs no jobs", false));
  const std::vector<Job> jobs = s.jobs->list(ctx.tenant);
  ctx.respond([&](wire::Response::Builder r) {
    auto out = r.initJobs(static_cast<unsigned>(jobs.size()));
    for (unsigned i = 0; i < out.size(); ++i) set_job(out[i], jobs[i]);
  });
}

void show_job(const Services& s, const RequestContext& ctx, std::uint64_t id) {
  if (!s.jobs) return ctx.fail(Status::unavailable("this memosd runs no jobs", false));
  Job job;
  if (Status st = s.jobs->get(ctx.tenant, id, &job); !st.ok()) return ctx.fail(st);
  respond_job(ctx, job);
}

void cancel_job(const Services& s, const RequestContext& ctx, std::uint64_t id) {
  if (!s.jobs) return ctx.fail(Status::unavailable("this memosd runs no jobs", false));
  Job job;
  if (Status st = s.jobs->cancel(ctx.tenant, id, &job); !st.ok()) return ctx.fail(st);
  respond_job(ctx, job);
}

}  // namespace

Status start_distillation(const Services& s, const RequestContext& ctx, DistillSpec spec,
                          Job* out) {
  Job job;
  job.tenant = ctx.tenant;
  job.kind = "distill";
  job.cube = spec.cube;
  job.name = spec.name;
  job.memories = static_cast<std::uint32_t>(spec.texts.size());
  std::uint64_t id = 0;
  if (Status st = s.jobs->add(job, &id); !st.ok()) return st;
  if (Status st = s.jobs->get(ctx.tenant, id, out); !st.ok()) return st;
  auto run = std::make_shared<Run>();
  run->job = id;
  run->ctx = ctx;
  run->ctx.reply = [](Frame, bool) {};  // the request is answered with the job, not through here
  run->spec = std::move(spec);
  // The executor holds one distillation at a time: jobs take turns.
  s.jobs->take_turn(id, [&s, run] { post_step(s, run); });
  return {};
}

void add_distill_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::PARAM_DISTILL,
            [&s](const RequestContext& c, R::Reader r) { distill(s, c, r.getParamDistill()); });
  table.add(R::JOB_LIST, [&s](const RequestContext& c, R::Reader) { list_jobs(s, c); });
  table.add(R::JOB_SHOW,
            [&s](const RequestContext& c, R::Reader r) { show_job(s, c, r.getJobShow()); });
  table.add(R::JOB_CANCEL,
            [&s](const RequestContext& c, R::Reader r) { cancel_job(s, c, r.getJobCancel()); });
}

}  // namespace memos::kernel
