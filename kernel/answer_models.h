// answer_models.h — the executors that answer a routed chat at each cost
// tier (memos(7), "Routing", the answer module): executor.models.low, mid
// and high name a model each; a tier that names none, or names
// executor.model's file, answers with the executor memosd already runs.
//
// Each other file is loaded once, in an executor of its own (its own
// memos-plugin-host with executor.*'s limits, its model-hash cache under
// <data>/executor/answer-TIER), so that memory is paid once for a model two
// tiers share. They are called on the one executor lane like the main
// executor: a CPU runs one model at a time anyway.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "kernel/config.h"
#include "kernel/plugin_executor.h"
#include "kernel/plugin_manager.h"
#include "kernel/status.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

// The executor that answers at a tier, and which key chose it.
struct AnswerModel {
  std::shared_ptr<PluginExecutor> executor;  // null: no executor at all
  std::string source;                        // "executor.model", "executor.models.high"
  std::string file;                          // the model file's name, for replies
};

class AnswerModels {
 public:
  AnswerModels() = default;
  // Every tier answers with `main` (executor.model; null: none).
  explicit AnswerModels(std::shared_ptr<PluginExecutor> main, const std::string& main_file);

  // Loads the files of config.executor.models beside `main` (executor.model's).
  // Errors: internal, naming the key, when a model will not load (the file,
  // the plugin or its host: PluginManager::load_executor's errors).
  static Status load(PluginManager& plugins, const Config& config,
                     std::shared_ptr<PluginExecutor> main, AnswerModels* out);

  const AnswerModel& at(CostTier tier) const { return tiers_[static_cast<std::size_t>(tier)]; }
  // Stops each executor of a tier's own (a generation in flight fails).
  void stop();

 private:
  std::array<AnswerModel, 3> tiers_;
};

}  // namespace memos::kernel
