// memory_block.h — how memories become the prompt ahead of a question.
//
// The executor lays the block out as the system turn of the model's chat
// template and tokenizes it apart from the question, so the block's tokens
// are the same whatever follows: that is what lets a stored state of the
// block serve every question asked over the same memories. Memories are
// ordered by id (oldest first), not by relevance, so the same set always
// makes the same block; a cube's working set goes first, in its own order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memcube/store.h"

namespace memos::kernel {

struct MemoryBlock {
  std::string text;
  std::vector<std::uint64_t> ids;  // in block order
};

MemoryBlock build_memory_block(std::vector<store::Item> items);

// A block whose first memories are a cube's working set (scheduler.h), in
// the set's own order, followed by `rest` ordered by id. The set's lines
// come first and the same whatever follows, so the stored state of a block
// of the set alone is a prefix of every such block.
MemoryBlock build_memory_block(std::vector<store::Item> working_set, std::vector<store::Item> rest);

}  // namespace memos::kernel
