// daemon_commands.h — memctl's commands about memosd itself: `status`,
// `metrics`, `cluster status|step-down` and `plugin ls|info|reload` (memctl(1)).
// Status and plugin show the plugins, in one form.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct DaemonArgs {
  std::string name;  // plugin info|reload NAME
};

// Declares `status`, `metrics` and `cluster status|step-down` on `app`.
void add_status_command(CLI::App& app);
// Declares `plugin` and its subcommands on `app`, filling `a`.
void add_plugin_commands(CLI::App& app, DaemonArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_daemon_commands(CLI::App& app, const DaemonArgs& a, memos::Client& client,
                                       const Output& out);

}  // namespace memos::shell
