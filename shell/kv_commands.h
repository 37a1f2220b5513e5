// kv_commands.h — memctl's generation commands: `chat` and `kv prefill|ls|
// rm|stats` (memctl(1)).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/output.h"
#include "shell/route_options.h"

namespace memos::shell {

struct GenerationArgs {
  std::string cube, prompt, id;
  std::vector<std::string> ids;       // as typed; converted by convert_generation_args()
  std::string mode;                   // chat --mode as typed; converted likewise
  std::vector<std::string> adapters;  // chat --adapter NAME[:SCALE] as typed; converted likewise
  std::uint32_t top = 0;
  RouteOptions routing;  // chat's, as typed; converted likewise
  memos::ChatOptions chat;
  std::uint64_t item_id = 0;
};

// Declares the commands and their options on `app`, filling `a`.
void add_generation_commands(CLI::App& app, GenerationArgs& a);
// Converts what CLI11 cannot (ids, the search mode's name). Throws UsageError.
void convert_generation_args(CLI::App& app, GenerationArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_generation_commands(CLI::App& app, const GenerationArgs& a,
                                           memos::Client& client, const Output& out);

}  // namespace memos::shell
