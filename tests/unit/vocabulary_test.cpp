// The protocol's named values (memos/vocabulary.h) and their wire enums
// (ipc/wire_vocabulary.h): every value prints and parses back, and nothing
// else parses.
#define BOOST_TEST_MODULE vocabulary
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/wire_vocabulary.h"
#include "memos/vocabulary.h"

namespace {

using namespace std::string_literals;

constexpr std::array kTiers = {memos::Tier::plaintext, memos::Tier::activation,
                               memos::Tier::parametric};
constexpr std::array kStates = {memos::State::active, memos::State::archived, memos::State::frozen,
                                memos::State::deleted};
constexpr std::array kModes = {memos::SearchMode::dense, memos::SearchMode::lexical,
                               memos::SearchMode::hybrid};
constexpr std::array kPluginStates = {memos::PluginState::listed, memos::PluginState::loaded,
                                      memos::PluginState::failed};

// Names that must never parse as any value: unknown, empty, another case,
// padded, very long, and with an embedded NUL (a C string would stop there).
std::vector<std::string> bad_names(std::string_view good) {
  std::string upper(good), first_upper(good);
  for (char& c : upper) c = static_cast<char>(c - 'a' + 'A');
  first_upper[0] = static_cast<char>(first_upper[0] - 'a' + 'A');
  return {"",
          "telepathy",
          upper,
          first_upper,
          " " + std::string(good),
          std::string(good) + " ",
          std::string(good) + "s",
          std::string(good.substr(0, good.size() - 1)),
          std::string(good) + '\0',
          std::string(good) + '\0' + "x",
          '\0' + std::string(good),
          std::string(1 << 20, 'a'),
          std::string(good) + std::string(1 << 20, 'a')};
}

template <class Enum, std::size_t N, class Parse>
void check_round_trip_and_rejects(const std::array<Enum, N>& values, Parse parse) {
  std::vector<std::string> names;
  for (Enum value : values) {
    std::string name = memos::to_string(value);
    BOOST_TEST(name != "unknown");
    auto parsed = parse(name);
    BOOST_TEST_REQUIRE(parsed.has_value(), name);
    BOOST_TEST((*parsed == value), name);
    names.push_back(name);
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = i + 1; j < names.size(); ++j) BOOST_TEST(names[i] != names[j]);
  }
  for (const auto& name : names) {
    for (const auto& bad : bad_names(name)) {
      BOOST_TEST(!parse(bad).has_value(), "'" << bad.substr(0, 40) << "' parsed");
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_tier_round_trips_and_nothing_else_parses) {
  check_round_trip_and_rejects(kTiers, memos::parse_tier);
  BOOST_TEST(memos::to_string(memos::Tier::plaintext) == "plaintext"s);
  BOOST_TEST(memos::to_string(memos::Tier::parametric) == "parametric"s);
}

BOOST_AUTO_TEST_CASE(every_state_round_trips_and_nothing_else_parses) {
  check_round_trip_and_rejects(kStates, memos::parse_state);
  BOOST_TEST(memos::to_string(memos::State::deleted) == "deleted"s);
}

BOOST_AUTO_TEST_CASE(every_search_mode_round_trips_and_nothing_else_parses) {
  check_round_trip_and_rejects(kModes, memos::parse_search_mode);
  // The list error messages show names each mode, in enum order.
  std::string names = memos::search_mode_names();
  std::size_t at = 0;
  for (auto mode : kModes) {
    std::size_t found = names.find(memos::to_string(mode), at);
    BOOST_TEST(found != std::string::npos, memos::to_string(mode));
    at = found;
  }
}

BOOST_AUTO_TEST_CASE(every_plugin_state_round_trips_and_nothing_else_parses) {
  check_round_trip_and_rejects(kPluginStates, memos::parse_plugin_state);
}

BOOST_AUTO_TEST_CASE(values_outside_an_enum_print_as_unknown) {
  BOOST_TEST(memos::to_string(static_cast<memos::Tier>(200)) == "unknown"s);
  BOOST_TEST(memos::to_string(static_cast<memos::State>(200)) == "unknown"s);
  BOOST_TEST(memos::to_string(static_cast<memos::SearchMode>(200)) == "unknown"s);
  BOOST_TEST(memos::to_string(static_cast<memos::PluginState>(200)) == "unknown"s);
}

BOOST_AUTO_TEST_CASE(activation_outcomes_round_trip_in_all_five_forms) {
  const std::vector<std::pair<memos::ActivationOutcome, std::string>> forms = {
      {{false, false, ""}, "none"},
      {{true, false, ""}, "restored"},
      {{false, true, ""}, "stored"},
      {{true, true, ""}, "restored+stored"},
      {{false, false, "model hash differs"}, "rejected: model hash differs"},
  };
  for (const auto& [outcome, text] : forms) {
    BOOST_TEST(memos::to_string(outcome) == text);
    auto parsed = memos::parse_activation_outcome(text);
    BOOST_TEST_REQUIRE(parsed.has_value(), text);
    BOOST_TEST((*parsed == outcome), text);
  }
  // A rejection wins over the rest when printed.
  BOOST_TEST(memos::to_string({true, true, "why"}) == "rejected: why");
  // A reason may hold anything after the prefix, even the separator again.
  auto odd = memos::parse_activation_outcome("rejected: rejected: x");
  BOOST_TEST_REQUIRE(odd.has_value());
  BOOST_TEST(odd->rejected == "rejected: x");
}

// memosd appends why storing a new state failed to whichever form it has.
BOOST_AUTO_TEST_CASE(activation_outcomes_carry_why_a_state_was_not_stored) {
  const std::vector<std::pair<memos::ActivationOutcome, std::string>> forms = {
      {{false, false, "", "disk full"}, "none; not stored: disk full"},
      {{true, false, "", "over budget"}, "restored; not stored: over budget"},
      {{false, false, "bad magic", "disk full"}, "rejected: bad magic; not stored: disk full"},
  };
  for (const auto& [outcome, text] : forms) {
    BOOST_TEST(memos::to_string(outcome) == text);
    auto parsed = memos::parse_activation_outcome(text);
    BOOST_TEST_REQUIRE(parsed.has_value(), text);
    BOOST_TEST((*parsed == outcome), text);
  }
  // A reason is required after the separator, and the form before it must be one.
  for (const std::string& bad :
       {"none; not stored: "s, "; not stored: x"s, "odd; not stored: x"s}) {
    BOOST_TEST(!memos::parse_activation_outcome(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_CASE(activation_outcomes_refuse_what_is_not_one_of_the_forms) {
  for (const std::string& bad :
       {""s, "rejected: "s, "rejected:"s, "rejected"s, "Rejected: why"s, "NONE"s,
        "stored+restored"s, "restored+"s, "+stored"s, "restored stored"s, "none\0"s, "stored\0x"s,
        " none"s, std::string(1 << 20, 'r')}) {
    BOOST_TEST(!memos::parse_activation_outcome(bad).has_value(),
               "'" << bad.substr(0, 40) << "' parsed");
  }
}

BOOST_AUTO_TEST_CASE(wire_tiers_and_states_round_trip) {
  for (auto tier : kTiers) {
    auto back = memos::ipc::from_wire(memos::ipc::to_wire(tier));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == tier), memos::to_string(tier));
  }
  for (auto state : kStates) {
    auto back = memos::ipc::from_wire(memos::ipc::to_wire(state));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == state), memos::to_string(state));
  }
  // Each name means the same on both sides.
  BOOST_TEST((memos::ipc::to_wire(memos::Tier::activation) == memos::wire::Tier::ACTIVATION));
  BOOST_TEST((memos::ipc::to_wire(memos::State::frozen) == memos::wire::State::FROZEN));
  BOOST_TEST((memos::ipc::to_wire(memos::State::deleted) == memos::wire::State::DELETED));
}

BOOST_AUTO_TEST_CASE(wire_values_from_a_newer_schema_are_refused) {
  for (std::uint16_t raw : {std::uint16_t{3}, std::uint16_t{4}, std::uint16_t{0xFFFF}}) {
    BOOST_TEST(!memos::ipc::from_wire(static_cast<memos::wire::Tier>(raw)).has_value(), raw);
  }
  for (std::uint16_t raw : {std::uint16_t{4}, std::uint16_t{5}, std::uint16_t{0xFFFF}}) {
    BOOST_TEST(!memos::ipc::from_wire(static_cast<memos::wire::State>(raw)).has_value(), raw);
  }
}
