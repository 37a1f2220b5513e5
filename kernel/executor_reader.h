// executor_reader.h — routing's ModelReader over the model executor: a
// prompt laid out in the model's chat template (chat_tokens), decoded
// greedily from an empty context, nothing kept for reuse. Every model call
// runs on the executor lane (services.h): from the lane itself (a chat
// building its block) the call is made at once; from a worker (a search)
// it is queued there and waited for, so a search with a model tier waits
// behind the chats in progress.
#pragma once

#include "kernel/plugin_executor.h"
#include "kernel/routing/model_reader.h"
#include "kernel/serial_lane.h"

namespace memos::kernel {

class ExecutorReader final : public routing::ModelReader {
 public:
  // `lane`: null when the caller is on the lane already.
  ExecutorReader(const PluginExecutor& executor, SerialLane* lane)
      : executor_(executor), lane_(lane) {}

  // Errors: unavailable (memosd is stopping), and the executor's.
  Status ask(std::string_view instruction, std::string_view input, std::uint32_t max_tokens,
             std::string* out) override;

 private:
  Status ask_here(std::string_view instruction, std::string_view input, std::uint32_t max_tokens,
                  std::string* out) const;

  const PluginExecutor& executor_;
  SerialLane* lane_;
};

}  // namespace memos::kernel
