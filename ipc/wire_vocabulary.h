// ipc/wire_vocabulary.h — the vocabulary's tiers and lifecycle states as the
// client protocol carries them (memos.capnp's Tier and State enums).
//
// The two enums list the same values in the same order today, but each side
// converts through these functions rather than a cast, so a value added to
// one of them cannot silently become another value of the other. A peer
// built from a newer schema may send a number this one does not know:
// from_wire() returns std::nullopt for it, and the caller decides what that
// means (a bad request in memosd, a protocol error in the SDK).
#pragma once

#include <optional>

#include "ipc/schema/memos.capnp.h"
#include "memos/vocabulary.h"

namespace memos::ipc {

wire::Tier to_wire(Tier tier);
wire::State to_wire(State state);

std::optional<Tier> from_wire(wire::Tier tier);
std::optional<State> from_wire(wire::State state);

}  // namespace memos::ipc
