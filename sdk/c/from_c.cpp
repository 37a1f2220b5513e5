// sdk/c/from_c.cpp — arguments into the C++ SDK's values, and the option
// structs' defaults (the memos_*_init functions), taken from the C++ types'
// own so the two never disagree.
#include "sdk/c/from_c.h"

#include <cmath>

namespace memos::c_api {
namespace {

[[noreturn]] void bad(const char* field, const char* why) {
  throw BadArgument(std::string(field) + ": " + why);
}

template <class T>
void need_array(const T* data, std::size_t n, const char* field) {
  if (data == nullptr && n != 0) bad(field, "NULL with a non-zero count");
}

std::vector<std::string> texts(const char* const* data, std::size_t n, const char* field) {
  need_array(data, n, field);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(text(data[i]));
  return out;
}

std::vector<MetaEntry> metas(const memos_pair* data, std::size_t n, const char* field) {
  need_array(data, n, field);
  std::vector<MetaEntry> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back({text(data[i].key), text(data[i].value)});
  return out;
}

template <class Enum>
std::vector<Enum> enums(const int* data, std::size_t n, int count, const char* field) {
  need_array(data, n, field);
  std::vector<Enum> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (data[i] < 0 || data[i] >= count) bad(field, "a value out of range");
    out.push_back(static_cast<Enum>(data[i]));
  }
  return out;
}

Routing routing(const memos_routing& in, bool chat) {
  auto out = make_routing(text(in.budget), text(in.route), in.lambda, chat);
  if (!out) bad("routing", out.error().message.c_str());
  out->reference_ms = in.reference_ms;
  out->context_tokens = in.context_tokens;
  return std::move(*out);
}

}  // namespace

std::string text(const char* s) {
  return s == nullptr ? std::string() : std::string(s);
}

std::vector<std::uint64_t> ids(const std::uint64_t* data, std::size_t n, const char* field) {
  need_array(data, n, field);
  return std::vector<std::uint64_t>(data, data + n);
}

std::optional<SearchMode> search_mode(int mode, const char* field) {
  if (mode == -1) return std::nullopt;
  if (mode < 0 || mode > MEMOS_MODE_HYBRID)
    bad(field, "not a search mode (-1, or enum memos_search_mode)");
  return static_cast<SearchMode>(mode);
}

State state(int value, const char* field) {
  if (value < 0 || value > MEMOS_STATE_DELETED) bad(field, "not an enum memos_state");
  return static_cast<State>(value);
}

ClientOptions client_options(const memos_client_options* options) {
  ClientOptions out;
  if (options == nullptr) return out;
  out.max_message_bytes = options->max_message_bytes;
  out.wait_searchable = options->wait_searchable != 0;
  out.max_staleness_ms = options->max_staleness_ms;
  return out;
}

NewItem new_item(const memos_new_item* item) {
  if (item == nullptr) bad("item", "NULL");
  NewItem out;
  out.text = text(item->text);
  out.tags = texts(item->tags, item->n_tags, "item.tags");
  out.meta = metas(item->meta, item->n_meta, "item.meta");
  out.importance = item->importance;
  out.ttl_ms = item->ttl_ms;
  out.valid_from_ms = item->valid_from_ms;
  out.valid_to_ms = item->valid_to_ms;
  out.session_id = text(item->session_id);
  out.sources = ids(item->sources, item->n_sources, "item.sources");
  out.supersedes = item->supersedes;
  out.idempotency_key = text(item->idempotency_key);
  out.wait_searchable = item->wait_searchable != 0;
  out.allow_duplicate = item->allow_duplicate != 0;
  return out;
}

ItemChange item_change(const memos_item_change* change) {
  if (change == nullptr) bad("change", "NULL");
  ItemChange out;
  out.text = text(change->text);
  if (change->set_tags) out.tags = texts(change->tags, change->n_tags, "change.tags");
  if (change->set_meta) out.meta = metas(change->meta, change->n_meta, "change.meta");
  out.session_id = text(change->session_id);
  out.idempotency_key = text(change->idempotency_key);
  out.wait_searchable = change->wait_searchable != 0;
  return out;
}

SearchOptions search_options(const memos_search_options* options) {
  SearchOptions out;
  if (options == nullptr) return out;
  const memos_search_options& in = *options;
  out.k = in.k;
  out.tags = texts(in.tags, in.n_tags, "options.tags");
  out.as_of_ms = in.as_of_ms;
  out.include_archived = in.include_archived != 0;
  out.mode = search_mode(in.mode, "options.mode");
  out.any_tags = texts(in.any_tags, in.n_any_tags, "options.any_tags");
  out.meta = metas(in.meta, in.n_meta, "options.meta");
  out.tiers = enums<Tier>(in.tiers, in.n_tiers, MEMOS_TIER_PARAMETRIC + 1, "options.tiers");
  out.states = enums<State>(in.states, in.n_states, MEMOS_STATE_DELETED + 1, "options.states");
  out.recorded_since_ms = in.recorded_since_ms;
  out.recorded_until_ms = in.recorded_until_ms;
  out.valid_since_ms = in.valid_since_ms;
  out.valid_until_ms = in.valid_until_ms;
  out.explain = in.explain != 0;
  out.more_cubes = texts(in.more_cubes, in.n_more_cubes, "options.more_cubes");
  out.recency_weight = in.recency_weight;
  out.importance_weight = in.importance_weight;
  out.retention_weight = in.retention_weight;
  out.mmr_lambda = in.mmr_lambda;
  out.fresh = in.fresh != 0;
  if (in.has_min_score) out.min_score = in.min_score;
  out.routing = routing(in.routing, false);
  return out;
}

ChatOptions chat_options(const memos_chat_options* options) {
  ChatOptions out;
  if (options == nullptr) return out;
  const memos_chat_options& in = *options;
  out.k = in.k;
  out.ids = ids(in.ids, in.n_ids, "options.ids");
  out.mode = search_mode(in.mode, "options.mode");
  out.activate = in.activate != 0;
  out.no_reuse = in.no_reuse != 0;
  out.max_tokens = in.max_tokens;
  out.temperature = in.temperature;
  out.top_k = in.top_k;
  out.top_p = in.top_p;
  out.seed = in.seed;
  need_array(in.adapters, in.n_adapters, "options.adapters");
  for (std::size_t i = 0; i < in.n_adapters; ++i)
    out.adapters.push_back({text(in.adapters[i].name), in.adapters[i].scale});
  out.no_adapters = in.no_adapters != 0;
  out.routing = routing(in.routing, true);
  return out;
}

DistillArgs distill_args(const memos_distill_args* args) {
  if (args == nullptr) bad("args", "NULL");
  DistillArgs out;
  out.cube = text(args->cube);
  out.name = text(args->name);
  out.tag = text(args->tag);
  out.ids = ids(args->ids, args->n_ids, "args.ids");
  out.rank = args->rank;
  out.steps = args->steps;
  out.scale = args->scale;
  out.description = text(args->description);
  return out;
}

}  // namespace memos::c_api

// ---- the defaults, from the C++ types' -------------------------------------

extern "C" {

void memos_client_options_init(memos_client_options* options) {
  memos::ClientOptions d;
  *options = memos_client_options{};
  options->max_message_bytes = d.max_message_bytes;
  options->wait_searchable = d.wait_searchable;
  options->max_staleness_ms = d.max_staleness_ms;
}

void memos_new_item_init(memos_new_item* item) {
  *item = memos_new_item{};
}

void memos_item_change_init(memos_item_change* change) {
  *change = memos_item_change{};
}

void memos_search_options_init(memos_search_options* options) {
  memos::SearchOptions d;
  *options = memos_search_options{};
  options->k = d.k;
  options->mode = -1;
  options->mmr_lambda = d.mmr_lambda;
}

void memos_chat_options_init(memos_chat_options* options) {
  memos::ChatOptions d;
  *options = memos_chat_options{};
  options->k = d.k;
  options->mode = -1;
  options->max_tokens = d.max_tokens;
}

void memos_distill_args_init(memos_distill_args* args) {
  *args = memos_distill_args{};
}

}  // extern "C"
