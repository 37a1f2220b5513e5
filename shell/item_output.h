// item_output.h — how memctl prints a memory item: its --json object and
// its human form, and an item diff's human form. Shared by the item commands
// and search (item_commands.cpp).
#pragma once

#include "memos/client.h"
#include "shell/json_output.h"

namespace memos::shell {

// One item as a JSON object: every field, times as ISO 8601, ids as text.
Json item_json(const memos::Item& item);
// One item, a field a line (memctl get).
void print_item(const memos::Item& item);
// An item diff as a JSON object: both versions whole, then what changed.
Json diff_json(const memos::ItemDiff& d);
// What changed between two versions, a change a line (memctl diff).
void print_diff(const memos::ItemDiff& d);

}  // namespace memos::shell
