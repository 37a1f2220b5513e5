// chat_block.h — what a chat or prefill asks (ChatArgs) and the memory block
// it runs on (Block): which model answers it (choose_answer) and how the
// block is found and tokenized (make_block). The requests themselves are
// generation.cpp's.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernel/answer_models.h"
#include "kernel/chat_adapters.h"
#include "kernel/handlers/request_context.h"
#include "kernel/handlers/route_args.h"
#include "kernel/memory_block.h"
#include "kernel/routing/routed_search.h"

namespace memos::kernel::chat_block {

constexpr std::uint32_t kDefaultChatK = 5;
constexpr std::uint32_t kDefaultMaxTokens = 128;

struct ChatArgs {
  std::string cube;
  std::string prompt;
  std::uint32_t k = kDefaultChatK;
  std::vector<std::uint64_t> ids;
  std::uint32_t top = 0;           // prefill: the most read memories
  std::optional<SearchMode> mode;  // empty: the cube's default
  bool activate = false;
  bool no_reuse = false;   // the client's: decode everything, from nothing
  bool no_states = false;  // no stored states (the tier is off, or not the tenant's)
  bool stream = false;     // chatPiece replies ahead of the answer
  // LoRA adapters of the cube (params.h); none named: the policy's.
  std::vector<policies::AdapterChoice> adapters;
  bool no_adapters = false;  // the base model, whatever the policy says
  std::uint32_t max_tokens = kDefaultMaxTokens;
  float temperature = 0;
  std::uint32_t top_k = 0;
  float top_p = 0;
  std::uint32_t seed = 0;
  RouteArgs route;  // a routed chat: the block is the routed search's context
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
};

// The memory block of a chat or prefill, tokenized.
struct Block {
  store::Cube cube;
  MemoryBlock memories;
  std::vector<std::int32_t> block_tokens;
  std::vector<std::int32_t> question_tokens;
  std::string format;             // of the prompt: "chat template" or "plain"
  bool with_working_set = false;  // the cube's working set leads the block
  // The adapters it runs with (chat_adapters): for the executor, for the
  // reply, and the set's text that keys its states.
  std::vector<AdapterRef> adapters;
  std::vector<std::string> adapter_labels;
  std::string adapter_set;
  std::vector<routing::ModuleRun> modules;    // a routed chat's
  std::optional<routing::RouterView> router;  // budget "auto": how its tiers were chosen
  // The executor that tokenizes and answers: executor.model's, or in a
  // routed chat its answer tier's (answer_models.h).
  AnswerModel answer;
  std::optional<routing::ModuleRun> answer_run;  // a routed chat's answer module
};

double ms_since(std::chrono::steady_clock::time_point start);
// Without executor.model: unavailable, not retryable, saying which key.
Status no_executor();
// An executor failure as the client sees it: unavailable and retryable when
// its host died (it restarts), else internal.
Status executor_failure(const std::string& what, const Status& s);

// The model that answers `args`: executor.model's unless the chat is
// routed, then its answer tier's: the one it names or its budget's, with
// "auto" the tenant's default tier (the router chooses the memory modules;
// the answer's quality needs a real model to learn).
void choose_answer(const Services& s, const RequestContext& ctx, const ChatArgs& args, Block* b);

// The memories (named, most read, or found by searching for the prompt),
// their block and the tokens of block and question. Lane thread. Errors:
// not_found (cube, a named memory), the search's, the executor's.
Status make_block(const Services& s, const RequestContext& ctx, const ChatArgs& args, Block* out);

}  // namespace memos::kernel::chat_block
