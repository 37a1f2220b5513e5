// memctl — command-line client of memosd. See memctl(1).
//
// Exit status: 0 success, 1 the daemon refused the request or could not be
// reached, 2 bad usage.
//
// This file holds the global options and the wiring: each group of commands
// declares its options, converts its arguments and runs in a file of its own
// (daemon_commands, cube_commands, item_commands, kv_commands,
// policy_commands, sched_commands).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/command_line.h"
#include "shell/cube_commands.h"
#include "shell/daemon_commands.h"
#include "shell/item_commands.h"
#include "shell/job_commands.h"
#include "shell/kv_commands.h"
#include "shell/output.h"
#include "shell/param_commands.h"
#include "shell/policy_commands.h"
#include "shell/sched_commands.h"

namespace {

using memos::shell::kExitUsage;
using memos::shell::Output;
using memos::shell::UsageError;

struct Args {
  std::string socket;
  bool json = false;
  std::uint32_t stale_ms = 0;               // cluster mode: how stale a read may be
  memos::shell::DaemonArgs daemon;          // status, plugin
  memos::shell::CubeArgs cube;              // cube
  memos::shell::ItemArgs item;              // add, get, update, ..., search
  memos::shell::GenerationArgs generation;  // chat, kv
  memos::shell::ParamArgs param;            // param
  memos::shell::JobArgs job;                // job
  memos::shell::PolicyArgs policy;          // policy
  memos::shell::SchedArgs sched;            // sched, explain
};

int run(CLI::App& app, const Args& a) {
  Output out(a.json);
  if (auto rc = memos::shell::run_local_policy_commands(app, a.policy, out)) return *rc;
  memos::ClientOptions options;
  options.wait_searchable = a.item.wait_searchable;
  options.max_staleness_ms = a.stale_ms;
  auto connected = memos::Client::connect(a.socket, options);
  if (!connected) return out.refused(connected.error());
  memos::Client& client = *connected.value();
  if (auto rc = memos::shell::run_generation_commands(app, a.generation, client, out)) return *rc;
  if (auto rc = memos::shell::run_param_commands(app, a.param, client, out)) return *rc;
  if (auto rc = memos::shell::run_job_commands(app, a.job, client, out)) return *rc;
  if (auto rc = memos::shell::run_daemon_commands(app, a.daemon, client, out)) return *rc;
  if (auto rc = memos::shell::run_policy_commands(app, a.policy, client, out)) return *rc;
  if (auto rc = memos::shell::run_sched_commands(app, a.sched, client, out)) return *rc;
  if (auto rc = memos::shell::run_cube_commands(app, a.cube, client, out)) return *rc;
  if (auto rc = memos::shell::run_item_commands(app, a.item, client, out)) return *rc;
  throw UsageError{"no command given"};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"memctl: command-line client of memosd (see memctl(1))", "memctl"};
  app.formatter(std::make_shared<memos::shell::HelpFormatter>());  // before the commands copy it
  app.set_version_flag("--version", "memctl " MEMOS_VERSION, "print memctl's version and exit");
  app.add_option("--socket", a.socket, "memosd's socket (default: $MEMOS_SOCKET, then memosd's)")
      ->type_name("PATH");
  app.add_flag("--json", a.json, "print JSON (bytes that are not UTF-8 become U+FFFD)");
  app.add_option("--stale", a.stale_ms,
                 "cluster mode: a node that held every acknowledged write at most MS ago "
                 "answers reads at once (default 0: reads see every write acknowledged before)")
      ->type_name("MS")
      ->check(CLI::Validator(
          [](std::string& value) {
            return value.empty() ? std::string("milliseconds, 0 to 4294967295") : std::string();
          },
          "", "non-empty"));
  app.require_subcommand(1);
  app.fallthrough();  // --json, --socket and --stale are accepted after the command too

  // In this order in --help.
  memos::shell::add_status_command(app);
  memos::shell::add_cube_commands(app, a.cube);
  memos::shell::add_plugin_commands(app, a.daemon);
  memos::shell::add_item_commands(app, a.item);
  memos::shell::add_generation_commands(app, a.generation);
  memos::shell::add_param_commands(app, a.param);
  memos::shell::add_job_commands(app, a.job);
  memos::shell::add_policy_commands(app, a.policy);
  memos::shell::add_sched_commands(app, a.sched);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return memos::shell::report_parse_error(app, e,
                                            std::vector<std::string>(argv + 1, argv + argc));
  }
  try {
    // Before connecting, so bad usage is exit status 2 whether or not a
    // daemon is running.
    memos::shell::convert_cube_args(a.cube);
    memos::shell::convert_item_args(a.item);
    memos::shell::convert_generation_args(app, a.generation);
    memos::shell::convert_sched_args(app, a.sched);
    return run(app, a);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "memctl: %s\n", e.message.c_str());
    return kExitUsage;
  }
}
