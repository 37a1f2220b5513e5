#include "ipc/wire_vocabulary.h"

#include <cstdint>

namespace memos::ipc {

wire::Tier to_wire(Tier tier) {
  switch (tier) {
    case Tier::plaintext:
      return wire::Tier::PLAINTEXT;
    case Tier::activation:
      return wire::Tier::ACTIVATION;
    case Tier::parametric:
      return wire::Tier::PARAMETRIC;
  }
  // Not a Tier (a cast from a bad number): sent as that number, which the
  // peer's from_wire() refuses.
  return static_cast<wire::Tier>(static_cast<std::uint16_t>(tier));
}

wire::State to_wire(State state) {
  switch (state) {
    case State::active:
      return wire::State::ACTIVE;
    case State::archived:
      return wire::State::ARCHIVED;
    case State::frozen:
      return wire::State::FROZEN;
    case State::deleted:
      return wire::State::DELETED;
  }
  return static_cast<wire::State>(static_cast<std::uint16_t>(state));  // as for Tier
}

std::optional<Tier> from_wire(wire::Tier tier) {
  switch (tier) {
    case wire::Tier::PLAINTEXT:
      return Tier::plaintext;
    case wire::Tier::ACTIVATION:
      return Tier::activation;
    case wire::Tier::PARAMETRIC:
      return Tier::parametric;
  }
  return std::nullopt;  // a value from a newer schema
}

std::optional<State> from_wire(wire::State state) {
  switch (state) {
    case wire::State::ACTIVE:
      return State::active;
    case wire::State::ARCHIVED:
      return State::archived;
    case wire::State::FROZEN:
      return State::frozen;
    case wire::State::DELETED:
      return State::deleted;
  }
  return std::nullopt;  // a value from a newer schema
}

}  // namespace memos::ipc
