// memory_block.h — how memories become the prompt ahead of a question.
//
// The executor lays the block out as the system turn of the model's chat
// template and tokenizes it apart from the question, so the block's tokens
// are the same whatever follows: that is what lets a stored state of the
// block serve every question asked over the same memories. Memories are
// ordered by id (oldest first), not by relevance, so the same set always
// makes the same block.
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

}  // namespace memos::kernel
