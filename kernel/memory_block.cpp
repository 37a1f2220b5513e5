#include "kernel/memory_block.h"

#include <algorithm>

namespace memos::kernel {

MemoryBlock build_memory_block(std::vector<store::Item> items) {
  std::sort(items.begin(), items.end(),
            [](const store::Item& a, const store::Item& b) { return a.id < b.id; });
  MemoryBlock block;
  block.text = "Memories of this user, oldest first:\n";
  for (const auto& item : items) {
    block.text += "- ";
    // One memory per line: a newline inside one would read as a new memory.
    for (char c : item.text) block.text += (c == '\n' || c == '\r') ? ' ' : c;
    block.text += '\n';
    block.ids.push_back(item.id);
  }
  if (items.empty()) block.text += "(none)\n";
  return block;
}

}  // namespace memos::kernel
