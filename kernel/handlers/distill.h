// distill.h — plaintext into the parametric tier (memos(7), "Tiers"):
// paramDistill gathers a cube's memories and starts a distillation job
// (jobs.h), which the executor runs step by step on the executor lane's
// background queue, so that a client's chat waits at most one step (one
// training window, or one matrix's factoring); the adapter is checked by
// the executor like an upload and written as one item, with the memories
// as its sources, only once the job is done.
//
// A job that is cancelled, fails, or is cut short by a stopping memosd
// writes nothing; what the executor held for it is forgotten.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernel/handlers/dispatch_table.h"
#include "kernel/handlers/request_context.h"
#include "kernel/jobs.h"
#include "kernel/services.h"
#include "memcube/store.h"

namespace memos::kernel {

// What a distillation learns from and makes.
struct DistillSpec {
  std::string cube;  // the tenant's own
  std::string name;  // the adapter's
  float scale = 1;
  std::string description;             // "" : made
  std::uint32_t rank = 0, steps = 0;   // 0: the executor's defaults
  std::string selection;               // how the memories were chosen, for the item's origin
  std::vector<std::string> texts;      // the memories ...
  std::vector<store::ItemId> sources;  // ... and their ids
};

// At most this many memories, and text bytes, in one distillation.
constexpr std::size_t kMaxDistillMemories = 10000;
constexpr std::size_t kMaxDistillTextBytes = 16u << 20;
constexpr std::uint32_t kMaxDistillRank = 256;
constexpr std::uint32_t kMaxDistillSteps = 10000;

// Queues the job for ctx's tenant and starts it on the executor lane.
// `ctx` is the request that asked (the item is written as its tenant).
// Errors: JobTable::add's.
Status start_distillation(const Services& s, const RequestContext& ctx, DistillSpec spec, Job* out);

// paramDistill, jobList, jobShow, jobCancel.
void add_distill_handlers(DispatchTable& table, const Services& services);

}  // namespace memos::kernel
