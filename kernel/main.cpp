// memosd — the memory daemon. See memosd(8).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "kernel/config.h"
#include "kernel/daemon.h"

namespace {

void set_up_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("memosd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
  memos::kernel::Config config;
  std::string config_path, socket, data_dir, log_level, check_path;
  bool show_version = false;

  // An option given with an empty value is a mistake (an unset shell
  // variable), never "use the default": `--check-config ""` once started a
  // full daemon on the system paths.
  const CLI::Validator not_empty(
      [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; },
      "NOT EMPTY");
  CLI::App app{"memosd: a memory daemon for LLM agents (see memosd(8))", "memosd"};
  app.add_option("--config", config_path, "TOML configuration file")->check(not_empty);
  app.add_option("--socket", socket, "Unix socket to listen on")->check(not_empty);
  app.add_option("--data", data_dir, "data folder")->check(not_empty);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(not_empty);
  app.add_flag("--version", show_version, "print the version and exit");
  app.add_option("--check-config", check_path, "validate a configuration file and exit")
      ->check(not_empty);
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
  if (!config_path.empty()) {
    if (std::string err = memos::kernel::load_config_file(config_path, &config); !err.empty()) {
      std::fprintf(stderr, "memosd: %s\n", err.c_str());
      return 1;
    }
    config.path = config_path;
  }
  if (!socket.empty()) config.socket = socket;
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (!log_level.empty()) {
    config.log_level = log_level;
    config.log_level_from_command_line = true;
  }
  if (std::string err = memos::kernel::validate_config(config); !err.empty()) {
    std::fprintf(stderr, "memosd: %s\n", err.c_str());
    return 2;
  }

  // libuv sizes its worker pool from the environment on first use.
  unsigned threads = config.worker_threads;
  if (threads == 0) threads = std::max(2u, std::thread::hardware_concurrency());
  setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);

  set_up_logging(config.log_level);
  memos::kernel::Daemon daemon(std::move(config));
  return daemon.run();
}
