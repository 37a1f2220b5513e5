// The books of the executor's device-resident states
// (plugins/llama-executor/device_slots.h): sequences 1..n handed out lowest
// first, cells counted by the tokens each state covers, a hit moves a state
// to the front with its new worth, and room is made from the least useful
// (the least recent among equals) unless that would take a state worth more
// than the newcomer; what goes is named so the engine can empty it.
#define BOOST_TEST_MODULE device_slots
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "plugins/llama-executor/device_slots.h"

using memos::llama_exec::DeviceSlots;
using memos::llama_exec::SlotState;

namespace {

SlotState state(const std::string& digest, std::size_t tokens, double utility = 0) {
  SlotState s;
  s.digest = digest;
  s.tokens.assign(tokens, 7);
  s.utility = utility;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(nothing_is_kept_without_sequences_or_cells) {
  std::vector<std::int32_t> gone;
  DeviceSlots none;
  BOOST_TEST(!none.enabled());
  BOOST_TEST(none.place(state("a", 1), &gone) == 0);
  BOOST_TEST(none.find("a", 0) == nullptr);
  DeviceSlots no_cells(4, 0);
  BOOST_TEST(no_cells.place(state("a", 1), &gone) == 0);
  DeviceSlots small(4, 10);
  BOOST_TEST(small.place(state("too large", 11), &gone) == 0);  // more than all the cells
  BOOST_TEST(gone.empty());
}

BOOST_AUTO_TEST_CASE(sequences_from_1_cells_counted_and_found_again) {
  std::vector<std::int32_t> gone;
  DeviceSlots slots(3, 100);
  BOOST_TEST(slots.place(state("a", 40), &gone) == 1);
  BOOST_TEST(slots.place(state("b", 30), &gone) == 2);
  BOOST_TEST(slots.stats().cells_held == 70u);
  const SlotState* a = slots.find("a", 0.5);
  BOOST_REQUIRE(a != nullptr);
  BOOST_TEST(a->sequence == 1);
  BOOST_TEST(a->tokens.size() == 40u);
  BOOST_TEST(a->utility == 0.5);
  BOOST_TEST(slots.find("c", 0) == nullptr);
  BOOST_TEST(slots.stats().hits == 1u);
  BOOST_TEST(slots.stats().loads == 2u);
  // The same digest again is booked afresh (the caller refills it).
  BOOST_TEST(slots.place(state("a", 40), &gone) >= 1);
  BOOST_TEST(slots.stats().held == 2u);
  BOOST_TEST(slots.stats().cells_held == 70u);
  BOOST_TEST(gone.empty());
}

BOOST_AUTO_TEST_CASE(room_comes_from_the_least_useful_then_the_least_recent) {
  std::vector<std::int32_t> gone;
  DeviceSlots slots(8, 100);
  const auto a = slots.place(state("a", 40, 1.0), &gone);
  const auto b = slots.place(state("b", 40, 1.0), &gone);
  BOOST_REQUIRE(slots.find("a", 1.0) != nullptr);            // b is now the least recent
  BOOST_TEST(slots.place(state("c", 40, 1.0), &gone) == b);  // 120 > 100: b goes
  BOOST_TEST(gone == std::vector<std::int32_t>{b});
  BOOST_TEST(slots.find("b", 1.0) == nullptr);
  BOOST_TEST(slots.stats().evictions == 1u);
  // A newcomer worth less than what room would take stays out.
  gone.clear();
  BOOST_TEST(slots.place(state("d", 40, 0.1), &gone) == 0);
  BOOST_TEST(gone.empty());
  BOOST_TEST(slots.find("a", 5.0) != nullptr);
  // One worth more takes the room of the least useful (c at 1.0, not a).
  BOOST_TEST(slots.place(state("e", 40, 2.0), &gone) != a);
  BOOST_TEST(slots.find("a", 5.0) != nullptr);
  BOOST_TEST(slots.find("c", 1.0) == nullptr);
  // A large one takes as many as it needs.
  gone.clear();
  BOOST_TEST(slots.place(state("f", 100, 9.0), &gone) != 0);
  BOOST_TEST(gone.size() == 2u);
  BOOST_TEST(slots.stats().held == 1u);
}

BOOST_AUTO_TEST_CASE(a_sequence_short_evicts_even_with_cells_to_spare) {
  std::vector<std::int32_t> gone;
  DeviceSlots slots(2, 1000);
  slots.place(state("a", 1), &gone);
  slots.place(state("b", 1), &gone);
  BOOST_TEST(slots.place(state("c", 1), &gone) == 1);  // a, the least recent, goes
  BOOST_TEST(gone == std::vector<std::int32_t>{1});
}

BOOST_AUTO_TEST_CASE(erase_and_clear_free_sequences_and_cells) {
  std::vector<std::int32_t> gone;
  DeviceSlots slots(2, 10);
  BOOST_TEST(slots.place(state("a", 5), &gone) == 1);
  slots.erase("a");
  slots.erase("never held");
  BOOST_TEST(slots.find("a", 0) == nullptr);
  BOOST_TEST(slots.stats().cells_held == 0u);
  BOOST_TEST(slots.place(state("b", 5), &gone) == 1);
  BOOST_TEST(slots.place(state("c", 5), &gone) == 2);
  BOOST_TEST((slots.clear() == std::vector<std::int32_t>{2, 1}));
  BOOST_TEST(slots.stats().held == 0u);
  BOOST_TEST(slots.place(state("d", 10), &gone) != 0);
  BOOST_TEST(slots.stats().evictions == 0u);
}
