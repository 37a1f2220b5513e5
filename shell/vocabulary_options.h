// vocabulary_options.h — memctl options whose values are names from the
// protocol's vocabulary (memos/vocabulary.h: search modes, states, tiers).
// The check CLI11 runs is built on the vocabulary's own parse function, so
// the names are spelled in one place, and its error lists what is accepted.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memos/vocabulary.h"
#include "shell/output.h"

namespace memos::shell {

// What memctl's options accept. --state leaves out deleted: deleted items
// are never searched (see history).
inline const std::vector<SearchMode> kSearchModes = {SearchMode::dense, SearchMode::lexical,
                                                     SearchMode::hybrid};
inline const std::vector<Tier> kTiers = {Tier::plaintext, Tier::activation, Tier::parametric};
inline const std::vector<State> kSearchableStates = {State::active, State::archived, State::frozen};

template <class Enum>
using ParseName = std::optional<Enum> (*)(std::string_view);

// "a, b or c", from the values' printed names.
template <class Enum>
std::string names_of(const std::vector<Enum>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += i + 1 == values.size() ? " or " : ", ";
    out += to_string(values[i]);
  }
  return out;
}

// Accepts the names of `accepted` only (a subset of the enum where the
// command takes fewer, as --state does). The help shows them as
// {a,b,c}; an error says "'x' is unknown (a, b or c)".
template <class Enum>
CLI::Validator one_of(ParseName<Enum> parse, std::vector<Enum> accepted) {
  std::string braced = "{";
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    braced += (i ? "," : "") + std::string(to_string(accepted[i]));
  }
  braced += "}";
  return CLI::Validator(
      [parse, accepted](std::string& name) -> std::string {
        std::optional<Enum> value = parse(name);
        std::string quoted = "'" + name.substr(0, 64) + "'";
        if (!value) return quoted + " is unknown (" + names_of(accepted) + ")";
        for (Enum a : accepted) {
          if (a == *value) return "";
        }
        return quoted + " is not accepted here (" + names_of(accepted) + ")";
      },
      braced);
}

// The value of a name one_of() has accepted.
template <class Enum>
Enum value_of(ParseName<Enum> parse, const std::string& name) {
  std::optional<Enum> value = parse(name);
  if (!value) throw UsageError{"'" + name + "' is unknown"};  // one_of() let it through: a bug
  return *value;
}

// The value of an optional name: empty when the option was not given.
template <class Enum>
std::optional<Enum> optional_value_of(ParseName<Enum> parse, const std::string& name) {
  if (name.empty()) return std::nullopt;
  return value_of(parse, name);
}

}  // namespace memos::shell
