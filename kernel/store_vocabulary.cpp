#include "kernel/store_vocabulary.h"

namespace memos::kernel {

State to_vocabulary(store::State state) {
  switch (state) {
    case store::State::active:
      return State::active;
    case store::State::archived:
      return State::archived;
    case store::State::frozen:
      return State::frozen;
    case store::State::deleted:
      return State::deleted;
  }
  return State::active;
}

store::State to_store(State state) {
  switch (state) {
    case State::active:
      return store::State::active;
    case State::archived:
      return store::State::archived;
    case State::frozen:
      return store::State::frozen;
    case State::deleted:
      return store::State::deleted;
  }
  return store::State::active;
}

Tier to_vocabulary(store::Tier tier) {
  switch (tier) {
    case store::Tier::plaintext:
      return Tier::plaintext;
    case store::Tier::activation:
      return Tier::activation;
    case store::Tier::parametric:
      return Tier::parametric;
  }
  return Tier::plaintext;
}

}  // namespace memos::kernel
