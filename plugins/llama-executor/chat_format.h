// chat_format.h — a memory block and a question laid out in the model's chat
// template (the block as the system turn, the question as the user's turn
// and the start of the assistant's), tokenized apart.
//
// The template is rendered around placeholders and the caller's text is
// tokenized alone, without special tokens, so that a memory or a prompt
// holding "<|im_start|>" stays text. When the model has no template that
// llama.cpp can apply, or its system turn is not a prefix of the whole
// (some templates fold the system text into the user's turn), the layout is
// plain: the block with the model's BOS, then "\nUser: PROMPT\nAssistant:".
#pragma once

#include <llama.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace memos::llama_exec {

struct ChatTokens {
  std::vector<llama_token> block;
  std::vector<llama_token> question;
  std::string format;  // "chat template" or "plain"
};

// Tokenizes `text`; add_special adds the model's BOS, parse_special reads
// special-token text as those tokens.
using Tokenizer = std::function<std::vector<llama_token>(std::string_view text, bool add_special,
                                                         bool parse_special)>;

ChatTokens chat_tokens(const llama_model* model, const llama_vocab* vocab, std::string_view system,
                       std::string_view user, const Tokenizer& tokenize);

}  // namespace memos::llama_exec
