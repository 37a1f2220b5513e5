#include "shell/job_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace memos::shell {
namespace {

constexpr auto kPollEvery = std::chrono::milliseconds(250);
constexpr int kBarWidth = 30;

std::string progress_text(const memos::Job& j) {
  if (j.total == 0) return j.state;
  return std::to_string(j.done) + "/" + std::to_string(j.total) + " steps";
}

void print_job_line(const memos::Job& j) {
  std::printf("%-6llu %-8s %-10s %-20s %-20s %s\n", static_cast<unsigned long long>(j.id),
              j.kind.c_str(), j.state.c_str(), (j.cube + "/" + j.name).c_str(),
              progress_text(j).c_str(), j.message.c_str());
}

void print_job(const memos::Job& j) {
  std::printf("job %llu: %s %s/%s, %s\n", static_cast<unsigned long long>(j.id), j.kind.c_str(),
              j.cube.c_str(), j.name.c_str(), j.state.c_str());
  std::printf("  memories %u, tokens %u, %s", j.memories, j.tokens, progress_text(j).c_str());
  if (j.done > 0) std::printf(", loss %.3f", static_cast<double>(j.loss));
  std::printf("\n");
  if (j.started_at_ms && j.finished_at_ms) {
    std::printf("  ran %.1f s\n", static_cast<double>(j.finished_at_ms - j.started_at_ms) / 1000);
  }
  if (!j.message.empty()) std::printf("  %s\n", j.message.c_str());
}

// "\r[#####.....] 12/48 steps, loss 4.31", redrawn in place.
void draw_bar(const memos::Job& j) {
  const int filled =
      j.total ? static_cast<int>(kBarWidth * static_cast<double>(j.done) / j.total) : 0;
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kBarWidth, '.');
  std::fprintf(stderr, "\r[%s] %s", bar.c_str(), progress_text(j).c_str());
  if (j.done > 0) std::fprintf(stderr, ", loss %.3f", static_cast<double>(j.loss));
  std::fprintf(stderr, "   ");
  std::fflush(stderr);
}

int finish(const memos::Job& j, const Output& out) {
  if (out.json()) {
    out.emit(job_json(j));
  } else {
    print_job(j);
  }
  return j.state == "done" ? 0 : kExitRefused;
}

int run(CLI::App& cmd, const JobArgs& a, memos::Client& client, const Output& out) {
  if (cmd.got_subcommand("ls")) {
    auto r = client.job_list();
    if (!r) return out.refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& job : r.value()) j.push_back(job_json(job));
      return out.emit(j);
    }
    if (r->empty()) std::printf("no jobs\n");
    for (const auto& job : r.value()) print_job_line(job);
    return 0;
  }
  std::uint64_t id = 0;
  try {
    std::size_t used = 0;
    id = std::stoull(a.id, &used);
    if (used != a.id.size()) throw std::invalid_argument(a.id);
  } catch (const std::exception&) {
    throw UsageError{"'" + a.id + "' is not a job id (a number: memctl job ls)"};
  }
  auto r = cmd.got_subcommand("cancel") ? client.job_cancel(id) : client.job_show(id);
  if (!r) return out.refused(r.error());
  if (cmd.got_subcommand("show") && a.wait) return follow_job(client, r.value(), out);
  if (out.json()) return out.emit(job_json(r.value()));
  print_job(r.value());
  return 0;
}

}  // namespace

Json job_json(const memos::Job& j) {
  Json o;
  o["id"] = j.id;
  o["kind"] = j.kind;
  o["cube"] = j.cube;
  o["name"] = j.name;
  o["state"] = j.state;
  o["done"] = j.done;
  o["total"] = j.total;
  o["loss"] = j.loss;
  o["message"] = j.message;
  o["created_at_ms"] = j.created_at_ms;
  o["started_at_ms"] = j.started_at_ms;
  o["finished_at_ms"] = j.finished_at_ms;
  if (j.item) {
    o["item"] = memos::format_id(j.item);
    o["version"] = j.version;
  }
  o["memories"] = j.memories;
  o["tokens"] = j.tokens;
  return o;
}

int follow_job(memos::Client& client, const memos::Job& job, const Output& out) {
  const bool bar = !out.json() && isatty(STDERR_FILENO);
  memos::Job j = job;
  while (!j.finished()) {
    if (bar) draw_bar(j);
    std::this_thread::sleep_for(kPollEvery);
    auto r = client.job_show(j.id);
    if (!r) {
      if (bar) std::fprintf(stderr, "\n");
      return out.refused(r.error(), "job " + std::to_string(j.id));
    }
    j = r.value();
  }
  if (bar) {
    draw_bar(j);
    std::fprintf(stderr, "\n");
  }
  return finish(j, out);
}

void add_job_commands(CLI::App& app, JobArgs& a) {
  auto* job = app.add_subcommand("job", "background jobs: distillations");
  job->require_subcommand(1);
  job->add_subcommand("ls", "your jobs, oldest first");
  auto* show = job->add_subcommand("show", "one job: its progress or outcome");
  show->add_option("ID", a.id, "the job")->required();
  show->add_flag("--wait", a.wait, "follow it to its end, with a progress bar on a terminal");
  job->add_subcommand("cancel", "stop a job; it writes nothing")
      ->add_option("ID", a.id, "the job")
      ->required();
}

std::optional<int> run_job_commands(CLI::App& app, const JobArgs& a, memos::Client& client,
                                    const Output& out) {
  if (CLI::App* cmd = app.get_subcommand("job"); cmd->parsed()) return run(*cmd, a, client, out);
  return std::nullopt;
}

}  // namespace memos::shell
