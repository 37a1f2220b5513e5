// model_reader.h — what the High tiers of temporal, expand and compress
// ask of a model (memos(7), "Routing"): the answer to one short prompt.
// The kernel reads with the configured executor (executor_reader.h); the
// tiers only see this, so their parsing and fallbacks are tested without a
// model (tests/unit/routing_test.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kernel/status.h"

namespace memos::kernel::routing {

class ModelReader {
 public:
  virtual ~ModelReader() = default;
  // The model's greedy answer, at most `max_tokens`, to `instruction` (the
  // system turn) and `input` (the user's). Errors: the executor's
  // (unavailable when it is down or memosd is stopping; too_large when the
  // prompt does not fit its context; plugin failures).
  virtual Status ask(std::string_view instruction, std::string_view input, std::uint32_t max_tokens,
                     std::string* out) = 0;
};

}  // namespace memos::kernel::routing
