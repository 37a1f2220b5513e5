// memosd — the memory daemon. See memosd(8).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "kernel/config.h"
#include "kernel/config_discovery.h"
#include "kernel/daemon.h"
#include "kernel/log_output.h"
#include "policies/policy_set.h"

namespace {

// The configuration file as the daemon would run it, with the command line
// over it, headed by where it came from (TOML comments).
void print_config(const memos::kernel::Config& config, const memos::kernel::ConfigChoice& choice) {
  std::printf("# memosd %s --print-config: the configuration it runs with\n", MEMOS_VERSION);
  std::printf("# %s\n", memos::kernel::describe(choice).c_str());
  const auto& given = config.command_line;
  if (!given.socket.empty() || !given.data_dir.empty() || !given.log_level.empty() ||
      !given.policies_dir.empty()) {
    std::printf("# with the command line over it:%s%s%s%s\n",
                given.socket.empty() ? "" : " --socket", given.data_dir.empty() ? "" : " --data",
                given.log_level.empty() ? "" : " --log-level",
                given.policies_dir.empty() ? "" : " --policies");
  }
  std::fputs(memos::kernel::config_to_toml(config).c_str(), stdout);
}

// --check-policy: a policy folder as memosd running as this user would
// load it (ownership included), or one file. Every diagnostic is printed,
// as file:line:column.
int check_policy(const std::string& path) {
  memos::policies::SystemDirectory users;
  auto check =
      memos::policies::check_policy_path(path, users, static_cast<std::uint32_t>(geteuid()));
  for (const auto& d : check.diagnostics) std::fprintf(stderr, "%s\n", d.text().c_str());
  if (!check.ok) return 1;
  std::printf("%s: ok (%zu tenant%s)\n", path.c_str(), check.tenants,
              check.tenants == 1 ? "" : "s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  memos::kernel::Config config;
  memos::kernel::CommandLineKeys given;
  std::string config_path, check_path, check_policy_path;
  bool show_version = false, show_config = false;

  // An option given with an empty value is a mistake (an unset shell
  // variable), never "use the default": `--check-config ""` once started a
  // full daemon on the system paths.
  const CLI::Validator not_empty(
      [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; }, "");
  // Defaults shown as this daemon would take them: the help names the real
  // files and paths, not placeholders.
  memos::kernel::Config defaults;
  memos::kernel::resolve_defaults(&defaults);
  const std::string user_file = memos::kernel::user_config_path();
  const std::string config_default =
      (geteuid() == 0 || user_file.empty() ? "" : user_file + " if it exists, else ") +
      memos::kernel::system_config_path() + " if it exists, else none";

  CLI::App app{"memosd: a memory daemon for LLM agents (see memosd(8))", "memosd"};
  // Option help reads "--socket PATH ... (default: ...)", without CLI11's
  // type names and range checks ("TEXT", "UINT:UINT in [1 - ...]").
  app.get_formatter()->column_width(24);
  auto with_default = [](const std::string& what, const std::string& value) {
    return what + " (default: " + value + ")";
  };
  app.add_option("--config", config_path,
                 with_default("configuration file, memosd.conf(5)", config_default))
      ->check(not_empty)
      ->type_name("FILE");
  app.add_option("--socket", given.socket,
                 with_default("Unix socket to listen on, over the socket key", defaults.socket))
      ->check(not_empty)
      ->type_name("PATH");
  app.add_option("--data", given.data_dir,
                 with_default("data folder, over the data_dir key", defaults.data_dir))
      ->check(not_empty)
      ->type_name("DIR");
  app.add_option("--policies", given.policies_dir,
                 with_default("tenant policy folder, memos-policy(5), over the policies_dir key",
                              "tenants.d beside the configuration file, if it exists"))
      ->check(not_empty)
      ->type_name("DIR");
  app.add_option("--log-level", given.log_level,
                 with_default("trace, debug, info, warn, error or off, over the log_level key",
                              "log_level of the configuration, else " + defaults.log_level))
      ->check(not_empty)
      ->type_name("LEVEL");
  app.add_flag("--version", show_version, "print the version and exit");
  app.add_option("--check-config", check_path, "validate a configuration file and exit")
      ->check(not_empty)
      ->type_name("FILE");
  app.add_option("--check-policy", check_policy_path,
                 "validate a policy folder (or one policy file) and exit")
      ->check(not_empty)
      ->type_name("DIR");
  app.add_flag("--print-config", show_config,
               "print the configuration memosd would run with (every key, in memosd.conf "
               "syntax) and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (show_version) {
    std::printf("memosd %s\n", MEMOS_VERSION);
    return 0;
  }
  if (show_config && !check_path.empty()) {
    std::fprintf(stderr, "memosd: --print-config and --check-config do not go together\n");
    return 2;
  }

  if (!check_policy_path.empty()) return check_policy(check_policy_path);
  if (!check_path.empty()) {
    memos::kernel::Config checked;
    std::string err = memos::kernel::load_config_file(check_path, &checked);
    if (err.empty()) err = memos::kernel::check_named_files(checked);
    if (!err.empty()) {
      std::fprintf(stderr, "memosd: %s\n", err.c_str());
      return 1;
    }
    std::printf("%s: ok\n", check_path.c_str());
    return 0;
  }
  memos::kernel::ConfigChoice choice = memos::kernel::choose_config_file(config_path);
  if (!choice.path.empty()) {
    if (std::string err = memos::kernel::load_config_file(choice.path, &config); !err.empty()) {
      std::fprintf(stderr, "memosd: %s\n", err.c_str());
      return 1;
    }
    config.path = choice.path;
  }
  config.command_line = given;
  memos::kernel::apply_command_line(&config);
  if (std::string err = memos::kernel::validate_config(config); !err.empty()) {
    std::fprintf(stderr, "memosd: %s\n", err.c_str());
    return 2;
  }
  memos::kernel::resolve_defaults(&config);
  if (show_config) {
    print_config(config, choice);
    return 0;
  }

  // libuv sizes its worker pool from the environment on first use.
  unsigned threads = memos::kernel::worker_thread_count(config);
  setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);

  memos::kernel::set_up_logging(config.log_level, config.log_format);
  spdlog::info("{}", memos::kernel::describe(choice));
  memos::kernel::Daemon daemon(std::move(config));
  return daemon.run();
}
