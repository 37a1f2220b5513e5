// param_commands.h — memctl's parametric tier: `param
// add|cvec|distill|ls|show|rm|export`
// (memctl(1)).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct ParamArgs {
  std::string cube, name, file, description, out, positive, negative, tag;
  std::vector<std::string> items;  // distill --items, as typed
  float scale = 0;
  std::uint32_t version = 0, rank = 0, steps = 0;
  bool detach = false;
};

// Declares the commands and their options on `app`, filling `a`.
void add_param_commands(CLI::App& app, ParamArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_param_commands(CLI::App& app, const ParamArgs& a, memos::Client& client,
                                      const Output& out);

}  // namespace memos::shell
