// route_options.h — memctl's routing options, which search and chat share
// (memctl(1); memos(7), "Routing"): --budget, --route, --lambda, --reference
// and --context-tokens, declared and converted in one place.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "memos/client.h"
#include "shell/output.h"

namespace memos::shell {

// The options as typed.
struct RouteOptions {
  std::string budget, route, reference;
  std::uint32_t context_tokens = 0;
  float lambda = 0;
};

// Declares the five options on `cmd`.
void add_route_options(CLI::App* cmd, RouteOptions& o);

// Converts them to what they ask of the SDK. `conflicting`: the options
// given that do not go with a budget or route ("--mode"), empty if none.
// `chat`: a chat's, whose --budget sets the answer tier too and whose
// --route may name answer (a search's may not). Throws UsageError.
memos::Routing convert_route_options(const RouteOptions& o, const std::string& conflicting,
                                     bool chat);

}  // namespace memos::shell
