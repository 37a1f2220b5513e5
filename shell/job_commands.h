// job_commands.h — memctl's background jobs: `job ls|show|cancel`
// (memctl(1)), and following one to its end with a progress bar, which
// `param distill` does unless told --detach.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

struct JobArgs {
  std::string id;
  bool wait = false;
};

void add_job_commands(CLI::App& app, JobArgs& a);
std::optional<int> run_job_commands(CLI::App& app, const JobArgs& a, memos::Client& client,
                                    const Output& out);

// Polls the job until it finishes, drawing its progress on standard error
// when that is a terminal (not with --json), then prints it. Returns 0 if
// it is done, kExitRefused if it failed or was cancelled (or memosd forgot
// it: it restarted). Interrupting memctl leaves the job running.
int follow_job(memos::Client& client, const memos::Job& job, const Output& out);

// The job as --json prints it.
Json job_json(const memos::Job& job);

}  // namespace memos::shell
