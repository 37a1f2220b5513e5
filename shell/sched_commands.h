// sched_commands.h — memctl's scheduler commands: `sched status|log|run` and
// `explain CUBE ITEM` (memctl(1); memos(7), "Scheduling").
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct SchedArgs {
  std::string cube, id;  // id as typed; converted by convert_sched_args()
  std::uint32_t max = 0;
  std::uint64_t item_id = 0;
};

// Declares the commands and their options on `app`, filling `a`.
void add_sched_commands(CLI::App& app, SchedArgs& a);
// Converts the item id. Throws UsageError.
void convert_sched_args(CLI::App& app, SchedArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_sched_commands(CLI::App& app, const SchedArgs& a, memos::Client& client,
                                      const Output& out);

}  // namespace memos::shell
