// item_commands.h — memctl's commands on memory items: add, get, update,
// rm, archive, freeze, activate, rollback, diff, history, and search
// (memctl(1)). They share one set of arguments: CUBE, --tag and the item
// options are bound by several of them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/output.h"
#include "shell/route_options.h"

namespace memos::shell {

struct ItemArgs {
  std::string cube, text, id, query;
  std::vector<std::string> tags, meta;
  // Checked and converted before connecting, so bad usage is exit status 2
  // whether or not a daemon is running.
  std::uint64_t item_id = 0;
  std::vector<memos::MetaEntry> meta_entries;
  std::uint32_t version = 0, to_version = 0;
  std::uint32_t k = 10;
  bool include_archived = false;
  // add: raw option text, converted (with the ids below) before connecting.
  float importance = 0;
  std::string ttl, valid_from, valid_to, as_of, session, supersedes, idempotency_key;
  std::vector<std::string> sources;
  memos::NewItem item;        // add, with everything converted
  std::int64_t as_of_ms = 0;  // search
  // search: raw option text (names checked by CLI11 with the vocabulary),
  // then `search` with everything converted.
  std::string mode, since, until, valid_since, valid_until;
  std::vector<std::string> any_tags, tiers, states, search_meta;
  bool explain = false;
  bool wait_searchable = false;  // item writes: answered once searchable
  bool fresh = false;            // search: see every write answered before it
  float recency_weight = 0, importance_weight = 0, mmr_lambda = 0;
  std::string boost;               // --boost as typed: "retention" or "retention=W"
  std::optional<float> min_score;  // search: only hits at least this relevant
  RouteOptions routing;            // search's, as typed
  memos::SearchOptions search;
  std::vector<std::string> cubes;  // CUBE[,CUBE...]
};

// Declares the commands and their options on `app`, filling `a`.
void add_item_commands(CLI::App& app, ItemArgs& a);
// Converts the options that need more than CLI11's checks. Throws UsageError.
void convert_item_args(ItemArgs& a);
// Runs the command if it is one of these, returning its exit status;
// nullopt otherwise.
std::optional<int> run_item_commands(CLI::App& app, const ItemArgs& a, memos::Client& client,
                                     const Output& out);

}  // namespace memos::shell
