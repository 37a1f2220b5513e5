// policy_commands.h — memctl's `policy check|show|reload` and `tenant
// usage` (memctl(1), memos-policy(5)). `check` reads files here, with the
// parser memosd uses, and needs no daemon; the others ask memosd.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct PolicyArgs {
  std::string path;    // policy check FILE|DIR
  std::string tenant;  // policy show [TENANT], tenant usage [TENANT]
};

// Declares `policy`, `tenant` and their subcommands on `app`, filling `a`.
void add_policy_commands(CLI::App& app, PolicyArgs& a);
// `policy check`, which runs before memctl connects: its exit status, or
// nullopt for any other command.
std::optional<int> run_local_policy_commands(CLI::App& app, const PolicyArgs& a, const Output& out);
// `policy show`, `policy reload` and `tenant usage`; nullopt for any other
// command.
std::optional<int> run_policy_commands(CLI::App& app, const PolicyArgs& a, memos::Client& client,
                                       const Output& out);

}  // namespace memos::shell
