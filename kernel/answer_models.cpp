#include "kernel/answer_models.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <utility>

#include "kernel/systemd.h"

namespace memos::kernel {
namespace {

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

AnswerModels::AnswerModels(std::shared_ptr<PluginExecutor> main, const std::string& main_file) {
  for (AnswerModel& m : tiers_) m = {main, "executor.model", file_name(main_file)};
}

Status AnswerModels::load(PluginManager& plugins, const Config& config,
                          std::shared_ptr<PluginExecutor> main, AnswerModels* out) {
  *out = AnswerModels(main, config.executor.model);
  if (!main) return {};
  for (std::size_t i = 0; i < out->tiers_.size(); ++i) {
    const std::string& path = config.executor.models[i];
    if (path.empty() || path == config.executor.model) continue;
    const std::string tier = to_string(static_cast<CostTier>(i));
    AnswerModel& model = out->tiers_[i];
    model.source = "executor.models." + tier;
    model.file = file_name(path);
    // A file a lower tier loaded already: the same executor.
    bool shared = false;
    for (std::size_t j = 0; j < i && !shared; ++j) {
      if (config.executor.models[j] == path) {
        model.executor = out->tiers_[j].executor;
        shared = true;
      }
    }
    if (shared) continue;
    const std::string state_dir = config.data_dir + "/executor/answer-" + tier;
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) return Status::internal("cannot create " + state_dir + ": " + ec.message());
    systemd::notify("STATUS=loading the model " + path + "\nEXTEND_TIMEOUT_USEC=" +
                    std::to_string(std::uint64_t{config.executor.start_timeout_ms} * 1000));
    ExecutorConfig executor = config.executor;
    executor.model = path;
    std::string error;
    model.executor = plugins.load_executor(executor, config.activation, state_dir, &error);
    if (!model.executor) return Status::internal(model.source + " = " + path + ": " + error);
    spdlog::info("the answer module's {} tier runs {}", tier, path);
  }
  return {};
}

void AnswerModels::stop() {
  for (std::size_t i = 0; i < tiers_.size(); ++i) {
    // executor.model's is the daemon's to stop; a shared one stops once.
    if (!tiers_[i].executor || tiers_[i].source == "executor.model") continue;
    bool stopped = false;
    for (std::size_t j = 0; j < i; ++j) stopped |= tiers_[j].executor == tiers_[i].executor;
    if (!stopped) tiers_[i].executor->stop();
  }
}

}  // namespace memos::kernel
