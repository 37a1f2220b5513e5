// item_commands.cpp — the item commands and search (item_commands.h): their
// options, the conversion of what CLI11 cannot check (ids, times, durations,
// KEY=VALUE metadata, the list of cubes to search), and running each one
// through the SDK.
#include "shell/item_commands.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shell/item_output.h"
#include "shell/route_options.h"
#include "shell/search_output.h"
#include "shell/text_format.h"
#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace memos::shell {
namespace {

// --boost retention's weight. Next to a fused relevance in [0, 1] it
// reorders memories of like relevance by use, without letting a well
// remembered but unrelated memory win.
constexpr float kDefaultRetentionBoost = 0.3f;

// --boost's value: "retention" or "retention=W", W in [0, 100]. Throws
// UsageError.
float retention_boost(const std::string& text) {
  const std::string name = "retention";
  if (text == name) return kDefaultRetentionBoost;
  if (text.rfind(name + "=", 0) == 0) {
    const std::string w = text.substr(name.size() + 1);
    char* end = nullptr;
    const float v = std::strtof(w.c_str(), &end);
    if (!w.empty() && end == w.c_str() + w.size() && std::isfinite(v) && v >= 0 && v <= 100)
      return v;
  }
  throw UsageError{"--boost takes retention or retention=W (W from 0 to 100), not '" +
                   text.substr(0, 64) + "'"};
}

// A memory's TEXT says something. memosd refuses an empty or blank text
// too; saying so before connecting makes it bad usage (exit status 2).
CLI::Validator not_blank() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty()) return "the text is empty";
        if (text.find_first_not_of(" \t\n\r\v\f") == std::string::npos)
          return "the text is only whitespace";
        return "";
      },
      "");
}

// NaN and infinities compare with no score as a user means.
CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const float v = std::strtof(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !std::isfinite(v))
          return "'" + text.substr(0, 32) + "' is not a finite number";
        return "";
      },
      "NUMBER");
}

std::vector<memos::MetaEntry> parse_meta(const std::vector<std::string>& pairs) {
  std::vector<memos::MetaEntry> meta;
  for (const auto& p : pairs) {
    auto eq = p.find('=');  // the key ends at the first '='; the value may hold more
    if (eq == std::string::npos || eq == 0)
      throw UsageError{"--meta wants KEY=VALUE, got '" + p + "'"};
    meta.push_back({p.substr(0, eq), p.substr(eq + 1)});
  }
  return meta;
}

// What a hit's score is, as the first line of search's human output
// (memctl(1), search): the three modes' numbers mean different things, and
// hybrid's is not a relevance. The mode is the cube's unless --mode names it.
std::string score_legend(memos::Client& client, const ItemArgs& a) {
  std::optional<memos::SearchMode> mode = a.search.mode;
  if (!mode) {
    auto cube = client.cube_show(a.cubes.empty() ? a.cube : a.cubes.front());
    if (cube) mode = cube->default_retriever;
  }
  if (!mode) return "score: as memosd ranked them (see memctl(1), search)";
  switch (*mode) {
    case memos::SearchMode::dense:
      return "score: cosine similarity of query and memory (dense search; 1 = same direction)";
    case memos::SearchMode::lexical:
      return "score: BM25 (lexical search: the query's words in the memory, rarer words weigh "
             "more; no upper bound)";
    case memos::SearchMode::hybrid:
      break;
  }
  return "score: rank fusion (hybrid search): 1 = first in both the dense and the lexical "
         "ranking, plus any --recency or --importance boost; it orders these results, it does "
         "not say how relevant they are";
}

}  // namespace

void add_item_commands(CLI::App& app, ItemArgs& a) {
  // Every item write is answered once durable; this waits for its index too.
  auto wait_flag = [&a](CLI::App* write) {
    write->add_flag("--wait-searchable", a.wait_searchable,
                    "answer once the change is searchable, not only durable");
  };
  auto* add = app.add_subcommand("add", "add a memory; prints its id");
  add->add_option("CUBE", a.cube, "the cube")->required();
  add->add_option("TEXT", a.text, "the memory, one argument: quote it")
      ->required()
      ->check(not_blank());
  add->add_option("--tag", a.tags, "a tag (repeatable)")->type_name("TAG");
  add->add_option("--meta", a.meta, "KEY=VALUE metadata (repeatable)")->type_name("KEY=VALUE");
  add->add_option("--importance", a.importance, "0 to 1")->check(CLI::Range(0.0f, 1.0f));
  add->add_option("--ttl", a.ttl, "expire after this long (90s, 12h, 30d)")->type_name("DURATION");
  add->add_option("--valid-from", a.valid_from, "when the fact starts to hold (default now)")
      ->type_name("TIME");
  add->add_option("--valid-to", a.valid_to, "when the fact stops holding")->type_name("TIME");
  add->add_option("--session", a.session, "the writer's session id")->type_name("SESSION");
  add->add_option("--source", a.sources, "an item this one was derived from (repeatable)")
      ->type_name("ID");
  add->add_option("--supersedes", a.supersedes, "an item whose fact this one replaces")
      ->type_name("ID");
  add->add_option("--idempotency-key", a.idempotency_key,
                  "a retry with the same key returns the first add's item")
      ->type_name("KEY");
  add->add_flag("--allow-duplicate", a.item.allow_duplicate,
                "store the text even if a live memory of the cube holds exactly the same");
  wait_flag(add);

  auto* get = app.add_subcommand("get", "show a memory");
  get->add_option("CUBE", a.cube, "the cube")->required();
  get->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();
  get->add_option("--version", a.version, "a past version")->check(CLI::Range(1u, 0xFFFFFFFFu));

  auto* update = app.add_subcommand("update", "write a new version of a memory");
  update->add_option("CUBE", a.cube, "the cube")->required();
  update->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();
  update->add_option("TEXT", a.text, "the new text, one argument: quote it")
      ->required()
      ->check(not_blank());
  update->add_option("--tag", a.tags, "replace the tags (repeatable)")->type_name("TAG");
  update->add_option("--meta", a.meta, "replace the metadata, KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  update->add_option("--session", a.session, "the writer's session id")->type_name("SESSION");
  wait_flag(update);

  for (auto [verb, help] : {std::pair{"archive", "archive a memory (it leaves search)"},
                            std::pair{"freeze", "freeze a memory (it becomes immutable)"},
                            std::pair{"activate", "make an archived or frozen memory active"}}) {
    auto* sub = app.add_subcommand(verb, help);
    sub->add_option("CUBE", a.cube, "the cube")->required();
    sub->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();
    wait_flag(sub);
  }

  auto* rollback = app.add_subcommand("rollback", "make an old version the latest again");
  rollback->add_option("CUBE", a.cube, "the cube")->required();
  rollback->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")
      ->required();
  rollback->add_option("VERSION", a.version, "the version to restore (1 or more)")
      ->required()
      ->check(CLI::Range(1u, 0xFFFFFFFFu));
  wait_flag(rollback);

  auto* diff = app.add_subcommand("diff", "what changed between two versions");
  diff->add_option("CUBE", a.cube, "the cube")->required();
  diff->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();
  diff->add_option("FROM", a.version, "a version (1 or more)")
      ->required()
      ->check(CLI::Range(1u, 0xFFFFFFFFu));
  diff->add_option("TO", a.to_version, "a version (default: the latest)")
      ->check(CLI::Range(1u, 0xFFFFFFFFu));

  auto* rm = app.add_subcommand("rm", "delete a memory (a tombstone version)");
  rm->add_option("CUBE", a.cube, "the cube")->required();
  rm->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();
  wait_flag(rm);

  auto* history = app.add_subcommand("history", "every version of a memory");
  history->add_option("CUBE", a.cube, "the cube")->required();
  history->add_option("ID", a.id, "the memory's id (13 characters, as add printed it)")->required();

  auto* search = app.add_subcommand("search", "search a cube");
  search->add_option("CUBE", a.cube, "the cube, or several: notes,journal")->required();
  search->add_option("QUERY", a.query, "what to look for, one argument: quote it")->required();
  search->add_option("-k", a.k, "how many results (default 10)")->check(CLI::Range(1u, 100000u));
  search->add_option("--mode", a.mode, "dense, lexical or hybrid (default: the cube's)")
      ->check(memos::shell::one_of(memos::parse_search_mode, kSearchModes));
  search->add_option("--tag", a.tags, "only memories with this tag (repeatable: all of them)")
      ->type_name("TAG");
  search->add_option("--any-tag", a.any_tags, "only memories with one of these tags (repeatable)")
      ->type_name("TAG");
  search->add_option("--meta", a.search_meta, "only memories with KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  search->add_option("--tier", a.tiers, "only this tier (repeatable)")
      ->check(memos::shell::one_of(memos::parse_tier, kTiers));
  search->add_option("--state", a.states, "only this state (repeatable; default active)")
      ->check(memos::shell::one_of(memos::parse_state, kSearchableStates));
  search->add_option("--since", a.since, "recorded at or after this time")->type_name("TIME");
  search->add_option("--until", a.until, "recorded before this time")->type_name("TIME");
  search->add_option("--valid-since", a.valid_since, "facts holding at or after this time")
      ->type_name("TIME");
  search->add_option("--valid-until", a.valid_until, "facts holding before this time")
      ->type_name("TIME");
  search->add_option("--as-of", a.as_of, "facts valid at this time (default now)")
      ->type_name("TIME");
  search->add_flag("--archived", a.include_archived, "include archived memories");
  search->add_flag("--explain", a.explain, "show how each retriever ranked each result");
  search->add_flag("--fresh", a.fresh, "see every write answered before this search");
  search->add_option("--recency", a.recency_weight, "hybrid: weight of recency (0-100)")
      ->check(CLI::Range(0.0f, 100.0f));
  search->add_option("--importance", a.importance_weight, "hybrid: weight of importance (0-100)")
      ->check(CLI::Range(0.0f, 100.0f));
  search
      ->add_option("--boost", a.boost,
                   "hybrid: boost memories in use by their retention (weight 0.3, or W)")
      ->type_name("retention[=W]");
  search->add_option("--mmr", a.mmr_lambda, "hybrid: diversify, relevance share in (0,1)")
      ->check(CLI::Range(0.0f, 1.0f));
  search
      ->add_option("--min-score", a.min_score,
                   "only hits at least this relevant: cosine (dense, and hybrid's dense "
                   "score) or BM25 (lexical)")
      ->type_name("SCORE")
      ->check(finite_number());
  add_route_options(search, a.routing);
}

void convert_item_args(ItemArgs& a) {
  auto id_of = [](const std::string& text) {
    auto id = memos::parse_id(text);
    if (!id) throw UsageError{"'" + text + "' is not an item id (13 characters of base32)"};
    return *id;
  };
  auto time_of = [](const std::string& option, const std::string& text) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto t = memos::shell::parse_time(text, now);
    if (!t) {
      throw UsageError{
          option +
          " wants a time such as 2026-11-27, 2026-11-27T14:30Z, @1767225600 or now; got '" + text +
          "'"};
    }
    return *t;
  };
  if (!a.id.empty()) a.item_id = id_of(a.id);
  a.meta_entries = parse_meta(a.meta);
  a.item.text = a.text;
  a.item.tags = a.tags;
  a.item.meta = a.meta_entries;
  a.item.importance = a.importance;
  a.item.session_id = a.session;
  a.item.idempotency_key = a.idempotency_key;
  for (const auto& s : a.sources) a.item.sources.push_back(id_of(s));
  if (!a.supersedes.empty()) a.item.supersedes = id_of(a.supersedes);
  if (!a.ttl.empty()) {
    auto ttl = memos::shell::parse_duration(a.ttl);
    if (!ttl)
      throw UsageError{"--ttl wants a duration such as 90s, 12h or 30d; got '" + a.ttl + "'"};
    a.item.ttl_ms = *ttl;
  }
  if (!a.valid_from.empty()) a.item.valid_from_ms = time_of("--valid-from", a.valid_from);
  if (!a.valid_to.empty()) a.item.valid_to_ms = time_of("--valid-to", a.valid_to);
  if (!a.as_of.empty()) a.as_of_ms = time_of("--as-of", a.as_of);

  auto& s = a.search;
  s.k = a.k;
  s.mode = memos::shell::optional_value_of(memos::parse_search_mode, a.mode);
  s.tags = a.tags;
  s.any_tags = a.any_tags;
  s.meta = parse_meta(a.search_meta);
  s.as_of_ms = a.as_of_ms;
  s.include_archived = a.include_archived;
  for (const auto& t : a.tiers) s.tiers.push_back(memos::shell::value_of(memos::parse_tier, t));
  for (const auto& st : a.states)
    s.states.push_back(memos::shell::value_of(memos::parse_state, st));
  if (!a.since.empty()) s.recorded_since_ms = time_of("--since", a.since);
  if (!a.until.empty()) s.recorded_until_ms = time_of("--until", a.until);
  if (!a.valid_since.empty()) s.valid_since_ms = time_of("--valid-since", a.valid_since);
  if (!a.valid_until.empty()) s.valid_until_ms = time_of("--valid-until", a.valid_until);
  s.explain = a.explain;
  s.fresh = a.fresh;
  s.recency_weight = a.recency_weight;
  s.importance_weight = a.importance_weight;
  if (!a.boost.empty()) s.retention_weight = retention_boost(a.boost);
  s.mmr_lambda = a.mmr_lambda;
  s.min_score = a.min_score;
  std::string conflicting = !a.mode.empty() ? "--mode" : a.min_score ? "--min-score" : "";
  s.routing = convert_route_options(a.routing, conflicting, false);
  // CUBE may name several: notes,journal
  std::string rest = a.cube;
  a.cubes.clear();
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string one = rest.substr(0, comma);
    if (one.empty()) throw UsageError{"empty cube name in '" + a.cube + "'"};
    a.cubes.push_back(one);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  if (a.cubes.size() > 1) s.more_cubes.assign(a.cubes.begin() + 1, a.cubes.end());
}

std::optional<int> run_item_commands(CLI::App& app, const ItemArgs& a, memos::Client& client,
                                     const Output& out) {
  auto cmd = [&](const char* name) { return app.got_subcommand(name); };
  // A refusal names what it was about as typed (the cube, the item, the
  // version) where the daemon's message does not ("no such item").
  auto refused = [&](const memos::Error& e) {
    std::vector<std::string> about;
    if (e.message.find("'" + a.cube + "'") == std::string::npos)
      about.push_back("cube '" + a.cube + "'");
    if (!a.id.empty() && e.message.find(memos::format_id(a.item_id)) == std::string::npos)
      about.push_back("item " + a.id);
    if (a.version != 0 && (cmd("get") || cmd("rollback") || cmd("diff")))
      about.push_back("version " + std::to_string(a.version));
    return out.refused(e, join(about, ", "));
  };
  if (cmd("add") || cmd("update") || cmd("get") || cmd("rm") || cmd("archive") || cmd("freeze") ||
      cmd("activate") || cmd("rollback")) {
    memos::Result<memos::Item> r = memos::Error{memos::ErrorCode::internal, "", false};
    if (cmd("add")) {
      r = client.add(a.cube, a.item);
      if (!r && r.error().code == memos::ErrorCode::already_exists) {
        memos::Error e = r.error();
        e.message += "; --allow-duplicate stores it anyway";
        return out.refused(e);
      }
    } else if (cmd("archive") || cmd("freeze") || cmd("activate")) {
      auto state = cmd("archive")  ? memos::State::archived
                   : cmd("freeze") ? memos::State::frozen
                                   : memos::State::active;
      r = client.set_state(a.cube, a.item_id, state);
    } else if (cmd("rollback")) {
      r = client.rollback(a.cube, a.item_id, a.version);
    } else if (cmd("update")) {
      memos::ItemChange change{a.text, std::nullopt, std::nullopt, a.session};
      if (!a.tags.empty()) change.tags = a.tags;
      if (!a.meta.empty()) change.meta = a.meta_entries;
      r = client.update(a.cube, a.item_id, std::move(change));
    } else if (cmd("get")) {
      r = client.get(a.cube, a.item_id, a.version);
    } else {
      r = client.remove(a.cube, a.item_id);
    }
    if (!r) return refused(r.error());
    if (out.json()) return out.emit(item_json(r.value()));
    std::string id = memos::format_id(r->id);
    if (cmd("add")) {
      std::printf("%s\n", id.c_str());
    } else if (cmd("update")) {
      std::printf("%s version %u\n", id.c_str(), r->version);
    } else if (cmd("rm")) {
      std::printf("%s deleted (tombstone version %u)\n", id.c_str(), r->version);
    } else if (!cmd("get")) {
      std::printf("%s version %u (%s)\n", id.c_str(), r->version, memos::to_string(r->state));
    } else {
      print_item(r.value());
    }
    return 0;
  }

  if (cmd("history")) {
    auto r = client.history(a.cube, a.item_id);
    if (!r) return refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& item : r.value()) j.push_back(item_json(item));
      return out.emit(j);
    }
    for (const auto& item : r.value()) {
      std::string note;
      if (item.state != memos::State::active)
        note = std::string("[") + memos::to_string(item.state) + "] ";
      if (item.valid_to_ms != 0) note += "[valid until " + format_time(item.valid_to_ms) + "] ";
      std::printf("v%-3u %s  %s%s\n", item.version, format_time(item.recorded_at_ms).c_str(),
                  note.c_str(), item.deleted ? "" : one_line(item.text).c_str());
    }
    return 0;
  }

  if (cmd("diff")) {
    auto r = client.diff(a.cube, a.item_id, a.version, a.to_version);
    if (!r) return refused(r.error());
    if (out.json()) return out.emit(diff_json(r.value()));
    print_diff(r.value());
    return 0;
  }

  if (cmd("search")) {
    const std::string& cube = a.cubes.empty() ? a.cube : a.cubes.front();
    if (a.search.routing.routed()) {
      auto r = client.search_routed(cube, a.query, a.search);
      if (!r) return refused(r.error());
      if (out.json()) return out.emit(routed_json(r.value(), a.explain));
      print_routed(r.value(), a.cubes.size() > 1, a.explain);
      return 0;
    }
    auto r = client.search(cube, a.query, a.search);
    if (!r) return refused(r.error());
    if (out.json()) return out.emit(hits_json(r.value(), a.explain));
    if (r->empty() && a.min_score) {
      // Not an error: the search ran, and nothing was close enough.
      std::fprintf(stderr, "memctl: nothing relevant found (no hit scored %g or more)\n",
                   static_cast<double>(*a.min_score));
      return 0;
    }
    if (r->empty()) {
      std::printf("no matches\n");
      return 0;
    }
    std::printf("%s\n", score_legend(client, a).c_str());
    print_hits(r.value(), a.cubes.size() > 1, a.explain);
    return 0;
  }
  return std::nullopt;
}

}  // namespace memos::shell
