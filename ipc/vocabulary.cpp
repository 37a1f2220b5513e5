#include "memos/vocabulary.h"

#include <array>
#include <utility>

namespace memos {
namespace {

// Each table lists every value in enum order, so printing is an index and
// parsing a scan; a value added to an enum must be added here too.
constexpr std::array<const char*, 3> kTiers = {"plaintext", "activation", "parametric"};
constexpr std::array<const char*, 4> kStates = {"active", "archived", "frozen", "deleted"};
constexpr std::array<const char*, 3> kModes = {"dense", "lexical", "hybrid"};
constexpr std::array<const char*, 3> kPluginStates = {"listed", "loaded", "failed"};
constexpr std::array<const char*, 3> kCostTiers = {"low", "mid", "high"};
constexpr std::array<const char*, kModules + 1> kModuleNames = {"retrieve", "temporal", "expand",
                                                                "compress", "answer"};
constexpr std::string_view kRejected = "rejected: ";
constexpr std::string_view kNotStored = "; not stored: ";

template <class Enum, std::size_t N>
const char* print(const std::array<const char*, N>& names, Enum value) {
  auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : "unknown";
}

template <class Enum, std::size_t N>
std::optional<Enum> parse(const std::array<const char*, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(Tier tier) {
  return print(kTiers, tier);
}
const char* to_string(State state) {
  return print(kStates, state);
}
const char* to_string(SearchMode mode) {
  return print(kModes, mode);
}
const char* to_string(PluginState state) {
  return print(kPluginStates, state);
}

const char* to_string(CostTier tier) {
  return print(kCostTiers, tier);
}
const char* to_string(Module module) {
  return print(kModuleNames, module);
}

std::string to_string(const Route& route) {
  std::string out;
  for (std::size_t i = 0; i < kModules; ++i) {
    const auto m = static_cast<Module>(i);
    if (i != 0) out += ',';
    out += std::string(to_string(m)) + '=' + to_string(route[m]);
  }
  return out;
}

std::string to_string(const ActivationOutcome& o) {
  std::string out = !o.rejected.empty()      ? std::string(kRejected) + o.rejected
                    : o.restored && o.stored ? "restored+stored"
                    : o.restored             ? "restored"
                    : o.stored               ? "stored"
                                             : "none";
  if (!o.not_stored.empty()) out += std::string(kNotStored) + o.not_stored;
  return out;
}

std::optional<Tier> parse_tier(std::string_view name) {
  return parse<Tier>(kTiers, name);
}
std::optional<State> parse_state(std::string_view name) {
  return parse<State>(kStates, name);
}
std::optional<SearchMode> parse_search_mode(std::string_view name) {
  return parse<SearchMode>(kModes, name);
}
std::optional<PluginState> parse_plugin_state(std::string_view name) {
  return parse<PluginState>(kPluginStates, name);
}

std::optional<CostTier> parse_cost_tier(std::string_view name) {
  return parse<CostTier>(kCostTiers, name);
}
std::optional<Module> parse_module(std::string_view name) {
  return parse<Module>(kModuleNames, name);
}

std::optional<Route> parse_route(std::string_view text, Route base,
                                 std::optional<CostTier>* answer) {
  std::array<bool, kModules + 1> seen{};
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view pair = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return std::nullopt;  // "a=b,"
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::optional<Module> module = parse_module(pair.substr(0, eq));
    std::optional<CostTier> tier = parse_cost_tier(pair.substr(eq + 1));
    if (!module || !tier || seen[static_cast<std::size_t>(*module)]) return std::nullopt;
    seen[static_cast<std::size_t>(*module)] = true;
    if (*module == Module::answer) {
      if (!answer) return std::nullopt;  // not a chat's route
      *answer = *tier;
    } else {
      base[*module] = *tier;
    }
  }
  return base;
}

std::optional<ActivationOutcome> parse_activation_outcome(std::string_view text) {
  ActivationOutcome o;
  // A rejection's reason is free text: its "; not stored: " is the last one.
  if (auto at = text.rfind(kNotStored); at != std::string_view::npos) {
    o.not_stored = std::string(text.substr(at + kNotStored.size()));
    if (o.not_stored.empty()) return std::nullopt;
    text = text.substr(0, at);
  }
  if (text.substr(0, kRejected.size()) == kRejected) {
    o.rejected = std::string(text.substr(kRejected.size()));
    if (o.rejected.empty()) return std::nullopt;
    return o;
  }
  if (text == "none") return o;
  if (text == "restored" || text == "restored+stored") o.restored = true;
  if (text == "stored" || text == "restored+stored") o.stored = true;
  if (!o.restored && !o.stored) return std::nullopt;
  return o;
}

const char* search_mode_names() {
  return "dense, lexical or hybrid";
}

}  // namespace memos
