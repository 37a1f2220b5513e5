// memos/vocabulary.h — the named values of memosd's protocol: storage tiers,
// lifecycle states, search modes, plugin states and the outcome of a chat's
// activation. One enum (or struct) each, with one print/parse pair, shared
// by memosd, the client SDK and memctl, so a name is spelled in one place.
//
// The names are the ones memctl prints and accepts and the ones the
// protocol carries where it carries text (a search mode, a plugin's state,
// a chat's activation status). Printing never fails; parsing returns
// std::nullopt for a name it does not know (a newer peer's, or a typo), and
// callers turn that into their own error. Item ids as text are here too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memos {

// Where a memory lives: searchable text, a model's KV state, or weights
// (an adapter or control vector) bound to a model.
enum class Tier : std::uint8_t { plaintext, activation, parametric };

// Lifecycle: active <-> archived <-> frozen (set_state); active or archived
// -> deleted (remove); deleted -> active (rollback). A frozen item is
// immutable until made active; an archived one leaves search unless asked.
enum class State : std::uint8_t { active, archived, frozen, deleted };

// How a search ranks: embeddings (FAISS), BM25 over stemmed words (Xapian),
// or both fused by reciprocal rank.
enum class SearchMode : std::uint8_t { dense, lexical, hybrid };

// The cost tier a query-time memory module runs at (memos(7), "Routing"):
// each module offers the same contract at three costs.
enum class CostTier : std::uint8_t { low, mid, high };

// The query-time memory modules, in the order a routed search runs them:
// find the memories (retrieve), read the question's time words into a
// valid-time window (temporal), add each hit's neighbouring turns
// (expand), fit the context to a token budget (compress); then, in a chat,
// the model that answers over the context (answer: executor.models.TIER).
enum class Module : std::uint8_t { retrieve, temporal, expand, compress, answer };
// The modules a Route holds: those before answer, which a search runs too.
// A chat's answer tier is chosen beside its route (parse_route's `answer`).
inline constexpr std::size_t kModules = 4;

// A tier for each module: what a router chooses, or a fixed budget.
struct Route {
  std::array<CostTier, kModules> tiers{CostTier::mid, CostTier::mid, CostTier::mid, CostTier::mid};

  static Route all(CostTier tier) { return {{tier, tier, tier, tier}}; }
  CostTier& operator[](Module m) { return tiers[static_cast<std::size_t>(m)]; }
  CostTier operator[](Module m) const { return tiers[static_cast<std::size_t>(m)]; }
  bool operator==(const Route&) const = default;
};

// A plugin's manifest was found (listed), its library is in use (loaded), or
// loading it failed (failed; the detail says why).
enum class PluginState : std::uint8_t { listed, loaded, failed };

// What a chat did with the activation tier: restored a stored KV state of
// its memory block, stored a new one, both (restored a shorter prefix and
// stored the longer block), neither, or refused a stored state (`rejected`
// says why; the block was then prefilled).
struct ActivationOutcome {
  bool restored = false;
  bool stored = false;
  std::string rejected{};    // non-empty: a stored state was refused
  std::string not_stored{};  // non-empty: a new state was made but storing it failed

  bool operator==(const ActivationOutcome&) const = default;
};

const char* to_string(Tier tier);          // "plaintext", "activation", "parametric"
const char* to_string(State state);        // "active", "archived", "frozen", "deleted"
const char* to_string(SearchMode mode);    // "dense", "lexical", "hybrid"
const char* to_string(PluginState state);  // "listed", "loaded", "failed"
const char* to_string(CostTier tier);      // "low", "mid", "high"
const char* to_string(Module module);      // "retrieve", "temporal", "expand", "compress", "answer"
// "retrieve=high,temporal=mid,expand=low,compress=mid"
std::string to_string(const Route& route);
// "none", "restored", "stored", "restored+stored" or "rejected: why" (rejected
// wins over the others), then "; not stored: why" when storing failed.
std::string to_string(const ActivationOutcome&);

std::optional<Tier> parse_tier(std::string_view name);
std::optional<State> parse_state(std::string_view name);
std::optional<SearchMode> parse_search_mode(std::string_view name);
std::optional<PluginState> parse_plugin_state(std::string_view name);
std::optional<ActivationOutcome> parse_activation_outcome(std::string_view text);
std::optional<CostTier> parse_cost_tier(std::string_view name);
std::optional<Module> parse_module(std::string_view name);
// "MODULE=TIER,..." over `base`: the modules named take their tier, the
// others keep base's; each module at most once. With `answer`, an
// "answer=TIER" pair is read into it (a chat's); without, it is malformed.
// nullopt if malformed.
std::optional<Route> parse_route(std::string_view text, Route base = {},
                                 std::optional<CostTier>* answer = nullptr);

// "dense, lexical or hybrid": for error messages that list what is accepted.
const char* search_mode_names();

// Item ids as text: 13 characters of Crockford base32, sortable like the
// ids; what memctl prints and accepts and what memosd's messages name.
std::string format_id(std::uint64_t id);
// Case-insensitive; also accepts O for 0 and I/L for 1. Empty if invalid.
std::optional<std::uint64_t> parse_id(std::string_view text);

}  // namespace memos
