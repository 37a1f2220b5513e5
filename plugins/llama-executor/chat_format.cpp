#include "plugins/llama-executor/chat_format.h"

#include <optional>

namespace memos::llama_exec {
namespace {

// Placeholders no template writes itself.
constexpr std::string_view kSystem = "\x01memos-system\x01";
constexpr std::string_view kUser = "\x01memos-user\x01";

std::optional<std::string> render(const char* tmpl, const std::vector<llama_chat_message>& chat,
                                  bool add_assistant) {
  std::string out(1024, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_assistant, out.data(),
                                          static_cast<int32_t>(out.size()));
    if (n < 0) return std::nullopt;  // a template llama.cpp does not know
    if (static_cast<std::size_t>(n) <= out.size()) {
      out.resize(static_cast<std::size_t>(n));
      return out;
    }
    out.resize(static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

void append(std::vector<llama_token>& to, const std::vector<llama_token>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

ChatTokens chat_tokens(const llama_model* model, const llama_vocab* vocab, std::string_view system,
                       std::string_view user, const Tokenizer& tokenize) {
  ChatTokens out;
  const std::string sys_slot(kSystem), user_slot(kUser);
  if (const char* tmpl = llama_model_chat_template(model, nullptr)) {
    std::vector<llama_chat_message> turns = {{"system", sys_slot.c_str()},
                                             {"user", user_slot.c_str()}};
    auto block = render(tmpl, {turns[0]}, false);
    auto whole = render(tmpl, turns, true);
    std::size_t s = block ? block->find(kSystem) : std::string::npos;
    std::size_t u = whole ? whole->find(kUser) : std::string::npos;
    if (block && whole && whole->compare(0, block->size(), *block) == 0 && s != std::string::npos &&
        u != std::string::npos && u >= block->size()) {
      std::string_view w = *whole;
      std::string_view head = w.substr(0, s);
      std::string_view block_tail =
          w.substr(s + kSystem.size(), block->size() - s - kSystem.size());
      std::string_view question_head = w.substr(block->size(), u - block->size());
      std::string_view question_tail = w.substr(u + kUser.size());
      // A template that writes the BOS itself must not get a second one.
      std::string bos;
      if (llama_token b = llama_vocab_bos(vocab); b != LLAMA_TOKEN_NULL) {
        if (const char* text = llama_vocab_get_text(vocab, b)) bos = text;
      }
      const bool writes_bos = !bos.empty() && head.substr(0, bos.size()) == bos;
      out.block = tokenize(head, !writes_bos, true);
      append(out.block, tokenize(system, false, false));
      append(out.block, tokenize(block_tail, false, true));
      out.question = tokenize(question_head, false, true);
      append(out.question, tokenize(user, false, false));
      append(out.question, tokenize(question_tail, false, true));
      out.format = "chat template";
      return out;
    }
  }
  out.block = tokenize(system, true, false);
  out.question = tokenize("\nUser: " + std::string(user) + "\nAssistant:", false, false);
  out.format = "plain";
  return out;
}

}  // namespace memos::llama_exec
