#include "kernel/scheduler/auto_distill.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel/handlers/distill.h"
#include "kernel/handlers/param_write.h"
#include "kernel/jobs.h"

namespace memos::kernel {

Status start_auto_distill(const Services& s, const store::Cube& cube,
                          const std::shared_ptr<const policies::TenantPolicy>& policy,
                          std::int64_t now_ms, bool* started) {
  *started = false;
  if (!s.jobs || !policy->distill_after) return {};
  const std::string& name = policy->distill_name;
  for (const Job& j : s.jobs->list(cube.owner)) {
    if (!j.finished() && j.cube == cube.name && j.name == name) return {};  // one at a time
  }
  RequestContext ctx;
  ctx.uid = cube.owner;
  ctx.tenant = cube.owner;
  ctx.policy = policy;
  ctx.reply = [](Frame, bool) {};
  DistillSpec spec;
  // Before reading the cube: not the owner's to distill into (the tier off
  // in its policy, no executor or blob store) is passed over, not an error.
  if (Status st = check_new_param(s, ctx, cube.name, name, spec.scale, ""); !st.ok()) return {};
  spec.cube = cube.name;
  spec.name = name;
  spec.selection = "stable memories (parametric.distill_after)";
  std::size_t fresh = 0, bytes = 0;
  {
    std::optional<store::ReadTxn> txn;
    if (store::Status st = s.store.begin_read(&txn); !st.ok()) return Status::from(st);
    std::set<store::ItemId> learned;
    store::ItemId newest_learned = 0;  // ids grow with time
    store::Item adapter;
    store::Status found = txn->find_param(cube.id, name, &adapter);
    if (found.ok() && !adapter.deleted()) {
      learned.insert(adapter.provenance.sources.begin(), adapter.provenance.sources.end());
      if (!learned.empty()) newest_learned = *learned.rbegin();
    } else if (!found.ok() && found.code != store::Errc::not_found) {
      return Status::from(found);
    }
    const std::int64_t stable_before =
        now_ms - static_cast<std::int64_t>(policy->stable_after_s) * 1000;
    std::vector<store::Item> stable;
    store::Status st = txn->for_each_live_item(cube.id, [&](const store::Item& it) {
      if (it.tier != store::Tier::plaintext || it.state != store::State::active) return;
      if (it.recorded_at_ms > stable_before) return;
      stable.push_back(it);
    });
    if (!st.ok()) return Status::from(st);
    // New: not learned, and newer than the newest it learned (an older one
    // it lacks was left out by the bounds, and would start a job every
    // pass).
    for (const store::Item& it : stable) {
      fresh += !learned.contains(it.id) && it.id > newest_learned;
    }
    if (fresh < *policy->distill_after) return {};
    // The newest first, within the distillation's bounds (ids are ordered
    // by time).
    for (auto it = stable.rbegin(); it != stable.rend(); ++it) {
      if (spec.texts.size() >= kMaxDistillMemories ||
          bytes + it->text.size() > kMaxDistillTextBytes) {
        break;
      }
      bytes += it->text.size();
      spec.texts.push_back(it->text);
      spec.sources.push_back(it->id);
    }
  }
  Job job;
  if (Status st = start_distillation(s, ctx, std::move(spec), &job); !st.ok()) return st;
  spdlog::info("distilling {} new stable memories of cube {} (tenant {}) as job {}", fresh,
               cube.name, cube.owner, job.id);
  *started = true;
  return {};
}

}  // namespace memos::kernel
