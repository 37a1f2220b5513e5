// memos/scheduling.h — what the scheduler reports (Client::sched_status,
// sched_log, sched_explain; memos(7), "Scheduling"): its passes, each
// cube's working set, its decisions, and what it knows of one memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memos/types.h"

namespace memos {

// One scheduler pass: what it looked at and what it moved.
struct SchedPass {
  std::int64_t at_ms = 0;  // when it began; 0: none yet
  double took_ms = 0;
  std::uint32_t cubes = 0;
  std::uint32_t working_sets = 0;  // cubes with a working set after it
  std::uint32_t promoted = 0;      // memories that joined a working set
  std::uint32_t demoted = 0;       // memories that left one
  std::uint32_t archived = 0;
  std::uint32_t prefills_queued = 0;  // working-set states queued for background prefill
  std::uint32_t distillations = 0;    // jobs started by the policy's parametric.distill_after
};

// A cube's working set: the memories its owner's chats lay first, in the
// set's stable order, and the stored state of their block.
struct CubeSchedule {
  std::string cube{};
  std::uint64_t generation = 0;  // +1 each time its members change
  std::vector<std::uint64_t> items{};
  std::uint32_t estimated_tokens = 0;  // as selected (about 4 bytes a token)
  std::uint32_t block_tokens = 0;      // of its memory block, once tokenized; 0: not yet
  std::uint64_t state = 0;             // the activation item holding it; 0: none yet
  bool prefill_pending = false;        // queued on the executor lane
  std::uint64_t chats = 0;             // over the cube since memosd started
  std::uint64_t restores = 0;          // of those, how many restored a stored state
  std::uint64_t prompt_tokens = 0;
  std::uint64_t reused_tokens = 0;  // of prompt_tokens, restored rather than decoded
  std::int64_t updated_at_ms = 0;   // when its members last changed
};

struct SchedStatus {
  bool enabled = false;  // the caller's scheduler.enabled
  std::uint32_t interval_s = 0;
  std::uint64_t passes = 0;              // since memosd started
  SchedPass last_pass{};                 // the last timed pass
  std::uint32_t background_pending = 0;  // prefills queued on the executor lane
  std::uint32_t foreground_pending = 0;  // client chats and prefills queued there
  std::vector<CubeSchedule> cubes{};     // the caller's cubes with a working set
  std::string settings{};                // the caller's effective [scheduler] table, as TOML
};

// One decision of the scheduler and its reason.
struct SchedDecision {
  std::int64_t at_ms = 0;
  std::string cube{};
  std::uint64_t item = 0;  // a memory, or an activation item (evicted)
  std::string action{};    // promoted, demoted, evicted, archived or restored
  std::string reason{};
};

// What the scheduler knows of one memory.
struct Explanation {
  Item item{};                      // the head, with its read counts
  double strength = 1;              // S: 1 plus what each recall added
  double recalls = 0;               // weighted (a search hit counts search_recall_weight)
  std::int64_t last_recall_ms = 0;  // 0: never (retention counts from its creation)
  double retention = 1;             // R = exp(-t / S), now
  double score = 0;                 // R times importance: its claim to the working set
  std::string time_unit{};          // of t: seconds, minutes, hours or days
  bool in_working_set = false;
  std::uint32_t position = 0;                // its place in the set (0: first)
  std::uint64_t working_set_state = 0;       // the set's activation item; 0: none
  std::vector<std::uint64_t> activations{};  // the cube's activation items made from it
  std::int64_t archive_at_ms = 0;  // forgetting = "archive": when it goes unless recalled; 0: never
  bool archived_by_scheduler = false;  // a read brings it back
};

}  // namespace memos
