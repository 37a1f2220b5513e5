// store_vocabulary.h — the store's lifecycle states and tiers (memcube/,
// which knows nothing of the protocol) as the vocabulary's
// (memos/vocabulary.h), which the kernel prints, parses and puts on the wire.
// The only place the two are mapped.
#pragma once

#include "memcube/store.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

State to_vocabulary(store::State state);
store::State to_store(State state);
Tier to_vocabulary(store::Tier tier);

}  // namespace memos::kernel
