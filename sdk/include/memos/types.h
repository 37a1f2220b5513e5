// memos/types.h — the values of memosd's C++ client: what every Client call
// returns (Result<T>: a value, or an Error with its ErrorCode), what memosd
// holds (Item, Cube, Snapshot, PluginInfo, Activation, ...), what a caller
// describes (NewItem, ItemChange, SearchOptions, ChatOptions), and item ids
// as text. memos/client.h includes it, so a program that includes client.h
// has them all; what each error code means, and which calls return it, is
// documented there ("Errors").
#pragma once

#if __cplusplus < 202002L
// (The CMake target memos::memos_client asks for it; pkg-config cannot.)
#error "memos/client.h needs C++20: compile with -std=c++20"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "memos/vocabulary.h"  // Tier, State, SearchMode, PluginState, ActivationOutcome

namespace memos {

enum class ErrorCode {
  bad_request,
  not_found,
  already_exists,
  too_large,
  busy,
  unavailable,
  internal,
  conflict,
  permission_denied,
  storage_full,
  quota_exceeded,
  rate_limited,
  unknown,
  connect_failed,
  connection_lost,
  protocol_error,
};

// The code's name as memctl prints it, e.g. "notFound" (the schema's spelling).
const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message{};
  bool retryable = false;
  // rate_limited: how long until the tenant may make this kind of request
  // again (0 otherwise).
  std::uint32_t retry_after_ms = 0;
};

// A value or an Error. Accessing value() of an error Result is a bug (it
// aborts), so check ok() first.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Done {};  // the value of operations that return nothing

struct MetaEntry {
  std::string key;
  std::string value;
  bool operator==(const MetaEntry&) const = default;
};

// A parametric item's LoRA adapter (Tier::parametric; memos(7), "Tiers").
// A background job of the tenant's (Client::job_show): a distillation
// today. Jobs live in memosd's memory: a restart forgets them, and one cut
// short wrote nothing.
struct Job {
  std::uint64_t id = 0;
  std::string kind{};  // "distill"
  std::string cube{};
  std::string name{};                 // what it makes
  std::string state{};                // queued, running, done, failed, cancelled
  std::uint32_t done = 0, total = 0;  // steps (total 0 until it starts)
  float loss = 0;                     // a distillation's last training loss
  std::string message{};              // failed: why; done: what it wrote
  std::int64_t created_at_ms = 0, started_at_ms = 0, finished_at_ms = 0;
  std::uint64_t item = 0;  // done: the item written, and its version
  std::uint32_t version = 0;
  std::uint32_t memories = 0, tokens = 0;
  bool finished() const { return state == "done" || state == "failed" || state == "cancelled"; }
};

// What a distillation learns from and makes (Client::param_distill).
struct DistillArgs {
  std::string cube{};
  std::string name{};
  std::string tag{};                 // the memories tagged so ...
  std::vector<std::uint64_t> ids{};  // ... or these; neither: every active memory
  std::uint32_t rank = 0;            // 0: 8
  std::uint32_t steps = 0;           // 0: 40
  float scale = 0;                   // 0: 1
  std::string description{};
};

struct ParamInfo {
  std::string kind{};    // "lora"
  std::string name{};    // unique among the cube's adapters
  std::string digest{};  // hex SHA-256 of its GGUF
  std::uint64_t bytes = 0;
  float scale = 1;           // what a chat uses unless it names a scale
  std::string base_model{};  // hex SHA-256 of the model it is bound to
  std::string architecture{};
  std::uint32_t tensors = 0, rank = 0;
  float alpha = 0;
  std::string origin{};  // "imported", or the distillation that made it
};

struct Item {
  std::uint64_t id = 0;  // time-ordered; format_id() for its text form
  std::uint32_t version = 0;
  std::string text{};
  std::vector<std::string> tags{};
  std::vector<MetaEntry> meta{};
  std::int64_t created_at_ms = 0;   // when version 1 was recorded
  std::int64_t recorded_at_ms = 0;  // when this version was recorded
  bool deleted = false;             // this version is a tombstone
  Tier tier = Tier::plaintext;
  State state = State::active;
  float importance = 0;
  std::int64_t expires_at_ms = 0;  // 0: never
  // Valid time: the fact holds from valid_from_ms until valid_to_ms (0: open).
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_to_ms = 0;
  // Provenance of this version.
  std::uint32_t writer_uid = 0;
  std::string session_id{};
  std::vector<std::uint64_t> sources{};
  std::uint64_t cube_version = 0;  // the cube's head version when written
  // Reads of the item (get, search hits), counted in batches about once a
  // second; filled in by get and search only.
  std::uint64_t hits = 0;
  std::int64_t last_access_ms = 0;
  std::optional<ParamInfo> param{};  // a parametric item's adapter
};

struct MetaChange {
  std::string key{};
  std::optional<std::string> before, after;  // empty: absent on that side
};

struct ItemDiff {
  Item from, to;
  bool text_changed = false;
  std::vector<std::string> tags_added, tags_removed;
  std::vector<MetaChange> meta_changes{};
  bool state_changed = false;
  bool validity_changed = false;
};

// Another tenant's access to a cube (Client::cube_share).
struct CubeGrant {
  std::string tenant{};   // its name, as Client::tenant_usage gives it
  std::uint32_t uid = 0;  // the uid its memory is stored under
  bool write = false;     // may add, update and remove items; else read only
  std::int64_t granted_at_ms = 0;
};

struct Cube {
  std::uint64_t id = 0;
  std::string name{};
  std::uint32_t owner_uid = 0;
  std::int64_t created_at_ms = 0;
  std::string embedder{};
  std::uint32_t dimension = 0;
  std::uint64_t live_items = 0;
  std::uint64_t head_version = 0;  // advanced by every item version written
  // How search ranks unless told otherwise (an empty one on the wire, from
  // a cube made before cubes had one, reads as dense: see client.h, Errors).
  SearchMode default_retriever = SearchMode::dense;
  std::string language{};  // stemming language of lexical search
  // cube_show only: what each retriever holds ("dense: hnsw, 120000
  // documents, 0 tombstones; lexical: ..."); a rebuild says "rebuilding".
  std::string indexes{};
  // A cube another tenant shares with this one: its owner's tenant name
  // and whether this tenant may write to it (its `name` is then
  // "owner/cube", the name every call takes). Empty for the tenant's own.
  std::string shared_by{};
  bool shared_write = false;
  // cube_show, cube_share, cube_unshare of the tenant's own cube: the
  // tenants it is shared with, by uid.
  std::vector<CubeGrant> shares{};
};

// A named cube-wide version.
struct Snapshot {
  std::string tag{};
  std::uint64_t cube_version = 0;
  std::int64_t created_at_ms = 0;
  std::uint64_t live_items = 0;
  std::uint32_t created_by = 0;
};

struct SnapshotChange {
  enum class Kind { added, removed, changed };
  std::uint64_t item_id = 0;
  Kind kind = Kind::changed;
  std::uint32_t from_version = 0;  // 0: not live at the first
  std::uint32_t to_version = 0;    // 0: not live at the second
  std::string text{};              // at the second, or at the first if removed
};

// How one retriever ranked a hit (SearchOptions::explain).
struct Rank {
  SearchMode retriever = SearchMode::dense;  // hybrid: the fused list
  std::uint32_t rank = 0;                    // 1-based; 0: not among its candidates
  float score = 0;
};

struct Hit {
  Item item;
  // dense: cosine similarity; lexical: BM25; hybrid: fused reciprocal rank
  // (1 = first in both lists) plus any recency and importance boosts.
  float score = 0;
  std::string cube{};         // the cube it came from
  std::vector<Rank> ranks{};  // filled with SearchOptions::explain
};

// One query-time module as a routed search ran it.
struct ModuleRun {
  Module module = Module::retrieve;
  CostTier tier = CostTier::mid;
  double ms = 0;  // wall time
  std::string detail{};
};

// How a routed request's tiers were chosen (RoutedSearch::router,
// ChatReply::router): by the router for budget "auto", or, for a fixed
// route explained, the features a router would read.
struct RouteScore {
  std::string route{};
  float quality = 0;  // predicted evidence recall of its context
  float cost = 0;     // normalised, 0..1
  float score = 0;    // quality - lambda x cost
};

struct RouterChoice {
  std::string source{};  // the router plugin, "default tier", "budget spent" or "fixed route"
  std::string reason{};  // the router's, or why it was not asked
  Route route{};         // the route run
  double ms = 0;         // features, embedding and the router's call
  std::vector<std::pair<std::string, float>> features{};
  std::vector<float> vector{};       // the query's embedding (explain only)
  std::vector<RouteScore> scores{};  // best first
};

struct PluginInfo {
  std::string name{};
  std::vector<std::string> kinds{};
  PluginState state = PluginState::listed;
  std::string detail{};  // its version once loaded, or why it failed
  std::string health{};  // loaded plugins: running, restarting or quarantined
  bool isolated = false;
  std::string library{};
  std::string manifest{};
  std::vector<MetaEntry> capabilities{};
  std::vector<MetaEntry> settings{};
};

// A tenant's policy as memosd enforces it (memos-policy(5)).
struct PolicyInfo {
  std::string tenant{};            // its name: the policy's, else the user's (or "uid:N")
  std::string file{};              // the policy file; empty for the built-in default
  std::string text{};              // the effective policy, as TOML
  std::string folder{};            // where memosd read its policies; empty: none (built-in)
  std::uint32_t tenants = 0;       // how many tenants that folder names
  bool admin = false;              // whether the caller is an administrator
  std::uint32_t stored_under = 0;  // the uid the tenant's memory is stored under
};

// One bound of a tenant's policy and how much of it is used, both in the
// key's unit (MiB for the _mb keys; used rounded up).
struct UsageBound {
  std::string name{};  // the policy key: "max_items"
  std::uint64_t limit = 0;
  std::uint64_t used = 0;
};

// What a tenant holds, as its bounds count it.
struct TenantUsage {
  std::string tenant{};
  std::uint32_t stored_under = 0;
  std::uint64_t cubes = 0;
  std::uint64_t items = 0;  // live items, archived and frozen included
  std::uint64_t text_bytes = 0;
  std::uint64_t activation_items = 0;
  std::uint64_t activation_bytes = 0;
  std::vector<UsageBound> bounds{};  // the bounds its policy sets
  std::uint64_t param_bytes = 0;     // of its adapters' files
  std::uint64_t router_tokens = 0;   // context tokens of its routed queries today (UTC)
};

struct Status {
  std::string version{};
  std::uint32_t pid = 0;
  std::int64_t uptime_ms = 0;
  std::uint32_t tenant_uid = 0;
  std::uint32_t cubes = 0;
  std::uint32_t connections = 0;
  std::uint64_t requests_served = 0;
  std::string data_dir{};
  std::string socket{};
  std::vector<PluginInfo> plugins{};
  // Root or memosd's own uid. Only then are connections, requests_served,
  // data_dir and the plugins' library, manifest and settings filled in, and
  // only then may plugin_reload() succeed.
  bool admin = false;
  // Indexing behind the answers (admin only): writes answered but not yet
  // searchable, how long the oldest has waited, and the time from commit
  // to searchable over recent commit groups.
  std::uint64_t index_backlog = 0;
  double index_oldest_ms = 0;
  double freshness_p50_ms = 0;
  double freshness_p99_ms = 0;
  // The scheduler's background work (memos(7), "Scheduling"): its passes
  // since memosd started, when the last timed one began (0: none yet), the
  // caller's cubes with a working set, and working-set prefills queued on
  // the executor lane.
  std::uint64_t scheduler_passes = 0;
  std::int64_t scheduler_last_pass_ms = 0;
  std::uint32_t scheduler_working_sets = 0;
  std::uint32_t scheduler_prefills_pending = 0;
  // The executor (executor.device): where it runs, as it said when loaded:
  // "CPU" or the GPU's name ("CUDA0"), "" without an executor; under
  // device "auto" without a GPU, the note says why.
  std::string executor_device{};
  std::string executor_device_description{};
  std::string executor_device_note{};
  std::uint32_t executor_gpu_layers = 0;  // of executor_layers, in the GPU's memory
  std::uint32_t executor_layers = 0;
  std::uint64_t executor_device_memory_bytes = 0;
};

struct NewItem {
  std::string text{};
  std::vector<std::string> tags{};
  std::vector<MetaEntry> meta{};
  float importance = 0;            // 0..1
  std::int64_t ttl_ms = 0;         // 0: never expires
  std::int64_t valid_from_ms = 0;  // when the fact starts to hold; 0: now
  std::int64_t valid_to_ms = 0;    // when it stops; 0: open
  std::string session_id{};
  std::vector<std::uint64_t> sources{};  // items it was derived from
  // An item whose fact this one replaces: its valid_to is closed at this
  // item's valid_from (it stays, marked no longer valid). 0: none.
  std::uint64_t supersedes = 0;
  // Makes a retry safe: a second add with the same key (same tenant) writes
  // nothing and returns what the first one wrote. At most 128 bytes; a key
  // reused for a different write is a conflict.
  std::string idempotency_key{};
  // Answered once searchable rather than once durable (read-your-writes).
  bool wait_searchable = false;
  // Store the text even if a live item of the cube (active, archived or
  // frozen) holds exactly the same bytes; without it that add is refused
  // with already_exists naming the item. Tags and metadata are not
  // compared: the same words with other tags are a duplicate.
  bool allow_duplicate = false;
};

struct ItemChange {
  std::string text{};
  std::optional<std::vector<std::string>> tags{};  // replaced only when set
  std::optional<std::vector<MetaEntry>> meta{};    // replaced only when set
  std::string session_id{};
  std::string idempotency_key{};  // as in NewItem
  bool wait_searchable = false;   // as in NewItem
};

// How a routed search or chat chooses the tiers of its query-time memory
// modules (memos(7), "Routing"). Neither route nor auto_route: not routed.
struct Routing {
  // Fixed tiers: Route::all(CostTier::low) is the cheapest budget.
  std::optional<Route> route{};
  // Or the router plugin's choice (budget "auto"), the route with the best
  // predicted recall less lambda times its cost (0: the tenant's lambda).
  // Without a router memosd runs its default tier, and says why.
  bool auto_route = false;
  float lambda = 0;
  // A chat's answer tier: the executor that answers (executor.models.TIER;
  // one without its own model answers with executor.model). Unset: mid
  // with a fixed route, the tenant's default tier with auto_route (the
  // router chooses the memory modules, not the model). A search naming one
  // is refused (bad_request): it hands its context to no model.
  std::optional<CostTier> answer{};
  std::int64_t reference_ms = 0;     // when the question is asked (its time words); 0: now
  std::uint32_t context_tokens = 0;  // compress=mid's token budget; 0: the daemon's

  bool routed() const { return route.has_value() || auto_route || answer.has_value(); }
};

// Every condition is applied inside the retrievers, so k hits come back
// whenever k items qualify (memos(7)).
struct SearchOptions {
  std::uint32_t k = 10;
  std::vector<std::string> tags{};  // only items carrying all of them
  std::int64_t as_of_ms = 0;        // facts valid at this time; 0: now
  bool include_archived = false;
  std::optional<SearchMode> mode{};     // empty: the cube's default retriever
  std::vector<std::string> any_tags{};  // only items carrying at least one
  std::vector<MetaEntry> meta{};        // only items with each key set to that value
  std::vector<Tier> tiers{};            // empty: any tier
  std::vector<State> states{};          // empty: active (plus archived with include_archived)
  std::int64_t recorded_since_ms = 0;   // recorded in [since, until); 0: no bound
  std::int64_t recorded_until_ms = 0;
  std::int64_t valid_since_ms = 0;  // facts holding at some time in [since, until)
  std::int64_t valid_until_ms = 0;
  bool explain = false;                   // fill Hit::ranks
  std::vector<std::string> more_cubes{};  // searched too, one ranking over all
  // Hybrid weighting; 0 keeps the daemon's defaults.
  float recency_weight = 0;
  float importance_weight = 0;
  // Adds this weight times each memory's retention R = exp(-t / S)
  // (memos(7), "Scheduling"): memories in use rank above forgotten ones of
  // like relevance. 0: off (there is no daemon default).
  float retention_weight = 0;
  float mmr_lambda = 0;  // in (0,1): diversify; 1 or more: off
  // See every write answered before this search (waits at most the
  // indexing lag); off: what is indexed now.
  bool fresh = false;
  // Only the hits (of the k best) at least this relevant, possibly none:
  // dense compares with the score (cosine similarity, -1..1), lexical with
  // the score (BM25, 0 and up), hybrid with the dense retriever's cosine
  // of the hit (Hit::score there only orders; a hit the dense retriever did
  // not rank does not pass). Must be finite (bad_request). Empty: all k.
  std::optional<float> min_score{};
  // Routing (memos(7), "Routing"): run the query-time memory modules at
  // fixed tiers or the router's. Not with mode or min_score (bad_request):
  // the retrieve tier chooses the mode. search() returns the hits;
  // search_routed() the context, the modules' costs and the router's
  // choice too.
  Routing routing{};
};

// Memory-augmented generation (Client::chat; memos(7), "tiers").
// An adapter a chat runs with: one of the cube's parametric items.
struct AdapterUse {
  std::string name{};
  float scale = 0;  // 0: the item's own scale
};

struct ChatOptions {
  std::uint32_t k = 5;               // memories retrieved for the block
  std::vector<std::uint64_t> ids{};  // or exactly these memories
  std::optional<SearchMode> mode{};  // search mode; empty: the cube's default
  bool activate = false;             // store the block's state for next time
  bool no_reuse = false;             // decode the block even if a state is stored
  std::uint32_t max_tokens = 128;    // generated, at most
  float temperature = 0;             // 0: greedy
  std::uint32_t top_k = 0;           // 0: off
  float top_p = 0;                   // 0 or 1: off
  std::uint32_t seed = 0;
  // LoRA adapters of the cube to answer with (at most 8); none: those of the
  // tenant policy's parametric.adapters the cube holds. no_adapters: the
  // base model, whatever the policy says.
  std::vector<AdapterUse> adapters{};
  bool no_adapters = false;
  // Routing, as SearchOptions's: the block is the routed search's context
  // (the hits, their neighbouring turns, compressed to the token budget).
  // Not with ids or mode (bad_request).
  Routing routing{};
};

struct ChatReply {
  std::string text{};
  std::vector<std::uint64_t> memories{};  // the block's memories, in block order
  std::uint32_t prompt_tokens = 0;        // block and prompt
  std::uint32_t block_tokens = 0;
  std::uint32_t reused_tokens = 0;  // not decoded: from a stored state or the executor's context
  std::uint32_t cached_tokens = 0;  // of them, still in the executor's context (no state read)
  std::uint32_t generated_tokens = 0;
  // What the chat did with the activation tier (restored, stored, both,
  // neither, or refused a stored state), and why storing the block's state
  // failed, when it did (`not_stored`).
  ActivationOutcome activation_status{};
  std::uint64_t activation = 0;  // the item restored or stored; 0: none
  double restore_ms = 0, prefill_ms = 0, first_token_ms = 0, total_ms = 0;
  std::string finish{};   // "length", "eog" or "prompt"
  bool resident = false;  // the state was already in the executor's memory
  std::string format{};   // the prompt's layout: "chat template" or "plain"
  // About how much prefill the restored state saved: its block's reused
  // tokens as long as they took to decode when the state was made, less
  // restore_ms. Negative when restoring cost more; 0 when nothing was
  // restored or the state's prefill time is unknown.
  double saved_ms = 0;
  std::vector<std::string> adapters{};   // "NAME*SCALE" of each adapter it ran with
  std::vector<ModuleRun> modules{};      // a routed chat's, in pipeline order
  std::optional<RouterChoice> router{};  // budget "auto": how its tiers were chosen
};

// A piece of a streamed chat, as memosd sends it: first prefill progress
// (prefill_total > 0), then the answer's text piece by piece.
struct ChatPiece {
  std::string text{};  // the next text of the answer (whole UTF-8 characters)
  // Prefill progress: prompt tokens decoded of those not restored from a
  // stored state. Both 0 in a text piece.
  std::uint32_t prefill_done = 0;
  std::uint32_t prefill_total = 0;
};

// An activation item: a model's KV state of a memory block.
struct Activation {
  std::uint64_t id = 0;
  std::string cube{};
  std::string model{};
  std::string model_hash{};
  std::string kv_type{};
  std::uint32_t tokens = 0;
  std::uint64_t bytes = 0;
  std::vector<std::uint64_t> sources{};
  std::int64_t created_at_ms = 0;
  std::int64_t last_used_ms = 0;
  std::uint64_t uses = 0;
  double prefill_ms = 0;  // kv_prefill: what making it took (0: it existed)
};

struct KvStats {
  std::string model{};  // empty: no executor configured
  std::string model_hash{};
  std::string kv_type{};
  std::uint32_t context_tokens = 0;
  std::uint32_t chunk_tokens = 0;
  std::uint64_t items = 0;  // the tenant's
  std::uint64_t bytes = 0;
  std::uint64_t tenant_max_bytes = 0;
  std::uint32_t resident_states = 0;  // in the executor's memory, all tenants
  std::uint64_t resident_bytes = 0;
  std::uint64_t resident_budget_bytes = 0;
  std::uint64_t resident_hits = 0;
  std::uint64_t resident_misses = 0;
  std::uint64_t rejected_states = 0;
  std::uint32_t prompts_held = 0;  // in the executor's context (executor.prompt_cache)
  std::uint64_t prompt_hits = 0;   // calls that started from one
  std::uint64_t prompt_hit_tokens = 0;
  std::uint32_t adapters_loaded = 0;  // LoRA adapters the executor keeps loaded, all tenants
  std::uint64_t adapter_bytes = 0;
  std::uint64_t adapter_budget_bytes = 0;
  std::uint64_t adapter_loads = 0;
  // Where the executor runs and where its resident states live: in
  // page-locked host memory (pinned: a GPU executor's, copied to the device
  // by DMA) or in ordinary memory.
  std::string device{};  // "CPU" or the GPU's name ("CUDA0")
  std::string device_description{};
  std::uint32_t gpu_layers = 0;  // of `layers`, in the GPU's memory
  std::uint32_t layers = 0;
  std::uint64_t device_free_bytes = 0;  // the device's memory (the host's on the CPU)
  std::uint64_t device_total_bytes = 0;
  std::uint32_t resident_pinned_states = 0;
  std::uint64_t resident_pinned_bytes = 0;
  std::uint64_t pinned_bytes = 0;         // page-locked memory the executor holds
  std::uint64_t pinned_budget_bytes = 0;  // activation.pinned_mb; 0 on the CPU
  // Resident states in the executor's KV cache on its device
  // (activation.gpu_max_mb): restored by a copy within the device.
  std::uint64_t device_budget_bytes = 0;  // the cells they may take, in bytes
  std::uint32_t device_states = 0;
  std::uint64_t device_state_bytes = 0;  // the cells they take, in bytes
  std::uint64_t device_state_hits = 0;   // restores that shared their cells
};

// Ids as text: format_id() and parse_id(), in memos/vocabulary.h (memosd
// names ids in its messages the same way).

}  // namespace memos
