// model_tiers.h — the High tiers of temporal, expand and compress, which
// read with a model (ModelReader; memos(7), "Routing"):
//
//   temporal  the model names the days the question is about
//             ("FROM 2023-05-01 TO 2023-05-31", or "NONE")
//   expand    of a wider ring of same-session turns around each best hit,
//             the model keeps those it says help answer ("yes"/"no")
//   compress  the model rewrites each memory to what bears on the question,
//             within its share of the token budget
//
// Each keeps its module's contract whatever the model says: an answer that
// does not read (a small or confused model), or a model that fails, falls
// back to the Mid tier for that step, and the module's detail says so;
// compress still ends within the budget (extractive selection over what
// the model wrote). Errors: none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/routing/context.h"
#include "kernel/routing/model_reader.h"
#include "kernel/routing/time_window.h"

namespace memos::kernel::routing {

// What a temporal answer says: a window, that the question names no time,
// or nothing readable.
enum class WindowAnswer { window, none, unreadable };
// Reads "FROM YYYY-MM-DD TO YYYY-MM-DD" (anywhere in the text, any case) as
// [from, to + 1 day) UTC, or "NONE". Dates must be real, from <= to.
WindowAnswer parse_window_answer(std::string_view text, TimeWindow* out);
// "yes" or "no" at the start (after spaces and punctuation), any case.
std::optional<bool> parse_yes_no(std::string_view text);

// Temporal High: the model's window for `query` asked on `reference_ms`.
// On `unreadable`, `why` says what the model answered or how it failed.
WindowAnswer model_time_window(ModelReader& model, std::string_view query,
                               std::int64_t reference_ms, TimeWindow* out, std::string* why);

// Expand High: for each of `turns`, whether the model says it helps answer
// `query`; nullopt (with `why`) when the model fails or an answer does not
// read, so the caller keeps the Mid choice.
std::optional<std::vector<bool>> model_select(ModelReader& model, std::string_view query,
                                              const std::vector<std::string_view>& turns,
                                              std::string* why);

// Compress High over `pieces`, in place, to `budget` tokens: each piece
// rewritten by the model within its share of the budget (a piece whose
// rewrite fails or is empty keeps its text), then compress Mid if the
// whole is still over. Returns how many pieces the model rewrote. A context
// within the budget is left as it is.
std::size_t model_compress(ModelReader& model, std::string_view query, std::uint32_t budget,
                           std::vector<ContextPiece>* pieces, std::string* why);

}  // namespace memos::kernel::routing
