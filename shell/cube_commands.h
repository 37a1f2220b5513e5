// cube_commands.h — memctl's commands on whole cubes: `cube create|ls|show|
// rm|share|unshare`, their snapshots (`cube snapshot|snapshots|diff`) and archives (`cube
// export|import`) (memctl(1)).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct CubeArgs {
  std::string name, tag, to_tag, file, as_name, retriever, language;
  std::string with;  // cube share|unshare --with TENANT
  bool force = false;
  bool share_read = false;                             // cube share --read (the default)
  bool share_write = false;                            // cube share --write
  std::optional<memos::SearchMode> default_retriever;  // cube create --retriever
};

// Declares `cube` and its subcommands on `app`, filling `a`.
void add_cube_commands(CLI::App& app, CubeArgs& a);
// Converts what CLI11 cannot (the retriever's name). Throws UsageError.
void convert_cube_args(CubeArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_cube_commands(CLI::App& app, const CubeArgs& a, memos::Client& client,
                                     const Output& out);

}  // namespace memos::shell
