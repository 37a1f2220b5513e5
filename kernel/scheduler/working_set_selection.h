// working_set_selection.h — which memories form a cube's working set, and
// in which order (memos(7), "Scheduling"). Pure: the scheduler feeds it
// each memory's score (R times importance, strength.h) and size.
//
// Membership is by score: the best memories that fit the token budget
// (one too large for what is left is passed over for smaller ones after
// it). Order is stable: members that stay keep the order in which they
// joined and newcomers go at the end, best first. A chat lays the set
// first in its context, so a small change to the set keeps most of the
// block's tokens, and the stored KV state of that prefix, valid (the
// activation tier reuses the longest shared chain of chunks).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "memcube/ids.h"

namespace memos::kernel::scheduler {

struct Candidate {
  store::ItemId item = 0;
  double score = 0;
  std::uint32_t tokens = 0;
};

struct Selection {
  std::vector<store::ItemId> items;  // the new set, in its order
  std::uint32_t tokens = 0;
  std::vector<store::ItemId> joined;  // not in `previous`, in the set's order
  std::vector<store::ItemId> left;    // in `previous`, not in the set
  bool changed() const { return !joined.empty() || !left.empty(); }
};

// `previous`: the set as it is (ids no longer candidates simply leave).
// Ties in score go to the lower id, so a selection is a function of its
// input. At most `max_items` members.
Selection select_working_set(const std::vector<store::ItemId>& previous,
                             std::vector<Candidate> candidates, std::uint32_t budget_tokens,
                             std::size_t max_items);

// About how many model tokens a memory takes in a chat's memory block:
// its line's bytes over 4 (English text runs 3.5 to 4.5 bytes a token),
// at least 1, plus its line's "- " and newline. An estimate, used only to
// size the set; the block's real tokens are counted when it is prefilled.
std::uint32_t estimate_tokens(std::string_view text);

// How many model tokens an estimated token is, as a cube's last prefilled
// block measured it: `measured` (its members' real tokens over their
// estimate). Selection divides the budget by it, so the set's real tokens,
// not its estimate, stay within working_set_tokens. `current` is the
// factor in use (1 before any measure). A larger measure is taken at once
// (the set is over its bound); a smaller one only when it is more than
// kCalibrationSlack below, so a set near its bound does not grow and shrink
// each time its measure wobbles with its members (each change is a prefill).
// Kept within [kMinCalibration, kMaxCalibration]; a measure that is not
// finite and positive leaves `current` as it is.
inline constexpr double kCalibrationSlack = 0.05;
inline constexpr double kMinCalibration = 0.5, kMaxCalibration = 2.0;
double calibrate_estimate(double current, double measured);

}  // namespace memos::kernel::scheduler
