#include "kernel/executor_reader.h"

#include <future>
#include <string>

namespace memos::kernel {

Status ExecutorReader::ask_here(std::string_view instruction, std::string_view input,
                                std::uint32_t max_tokens, std::string* out) const {
  GenerateArgs args;
  std::vector<std::int32_t> question;
  std::string format;
  if (Status s = executor_.chat_tokens(std::string(instruction), std::string(input), &args.tokens,
                                       &question, &format);
      !s.ok())
    return s;
  args.tokens.insert(args.tokens.end(), question.begin(), question.end());
  if (args.tokens.size() + max_tokens > executor_.info().context_tokens)
    return Status::too_large("the prompt does not fit the model's context");
  args.max_tokens = max_tokens;
  GenerateResult result;
  if (Status s = executor_.generate(args, &result); !s.ok()) return s;
  *out = std::move(result.text);
  return {};
}

Status ExecutorReader::ask(std::string_view instruction, std::string_view input,
                           std::uint32_t max_tokens, std::string* out) {
  if (!lane_) return ask_here(instruction, input, max_tokens, out);
  std::promise<Status> done;
  auto answered = done.get_future();
  lane_->post([&](bool stopping) {
    done.set_value(stopping ? Status::unavailable("memosd is stopping")
                            : ask_here(instruction, input, max_tokens, out));
  });
  return answered.get();
}

}  // namespace memos::kernel
