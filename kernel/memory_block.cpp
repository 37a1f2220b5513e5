#include "kernel/memory_block.h"

#include <algorithm>

namespace memos::kernel {

namespace {

void sort_by_id(std::vector<store::Item>* items) {
  std::sort(items->begin(), items->end(),
            [](const store::Item& a, const store::Item& b) { return a.id < b.id; });
}

void add_lines(const std::vector<store::Item>& items, MemoryBlock* block) {
  for (const auto& item : items) {
    block->text += "- ";
    // One memory per line: a newline inside one would read as a new memory.
    for (char c : item.text) block->text += (c == '\n' || c == '\r') ? ' ' : c;
    block->text += '\n';
    block->ids.push_back(item.id);
  }
}

}  // namespace

MemoryBlock build_memory_block(std::vector<store::Item> items) {
  sort_by_id(&items);
  MemoryBlock block;
  block.text = "Memories of this user, oldest first:\n";
  add_lines(items, &block);
  if (items.empty()) block.text += "(none)\n";
  return block;
}

MemoryBlock build_memory_block(std::vector<store::Item> working_set,
                               std::vector<store::Item> rest) {
  sort_by_id(&rest);
  MemoryBlock block;
  block.text = "Memories of this user:\n";
  add_lines(working_set, &block);
  add_lines(rest, &block);
  if (working_set.empty() && rest.empty()) block.text += "(none)\n";
  return block;
}

}  // namespace memos::kernel
