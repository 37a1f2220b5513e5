// route_options.h — memctl's routing options, which search and chat share
// (memctl(1); memos(7), "Routing"): --budget, --route, --reference and
// --context-tokens, declared and converted in one place.
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
};

// What they ask of the SDK (SearchOptions' and ChatOptions' fields).
struct RouteChoice {
  std::optional<memos::Route> route;
  bool route_auto = false;
  std::int64_t reference_ms = 0;
  std::uint32_t context_tokens = 0;
};

// Declares the four options on `cmd`.
void add_route_options(CLI::App* cmd, RouteOptions& o);

// Converts them. `conflicting`: the options given that do not go with a
// budget or route ("--mode"), empty if none. Throws UsageError.
RouteChoice convert_route_options(const RouteOptions& o, const std::string& conflicting);

}  // namespace memos::shell
