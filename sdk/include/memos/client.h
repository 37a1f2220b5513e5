// memos/client.h — the C++ client of memosd.
//
// A Client holds one connection to memosd's Unix socket. Every operation has
// an asynchronous form (NAME_async, returning a std::future) and a blocking
// form (NAME, which waits for it). Asynchronous calls pipeline: any number
// may be in flight on one connection, and the daemon may answer them in any
// order; each future is completed with its own reply.
//
// Threading: a Client may be used from several threads at once. Futures are
// completed on the client's reader thread; get() them from any thread.
//
// Errors. No function throws; each returns Result<T>, holding a value or an
// Error {code, message, retryable}. The codes:
//   Daemon-side (the request reached memosd and was refused):
//     bad_request      malformed or invalid arguments (bad cube name, invalid
//                      UTF-8, duplicate tag, unknown operation). Fix, don't retry.
//     not_found        the cube, item or version does not exist (an item
//                      deleted at its head version is not_found; its earlier
//                      versions remain readable with an explicit version).
//     already_exists   cube_create: the tenant already has a cube of that name.
//     too_large        a field exceeds a configured limit (text, tags, meta, k).
//     conflict         cube_remove of a cube with live items without force;
//                      a change to a frozen item; a state it is already in;
//                      validity out of order (valid_to before valid_from, a
//                      superseding fact that starts before the one it replaces).
//     storage_full     the store's map or disk is full. Retryable.
//     unavailable      memosd is shutting down. Retryable (after restart).
//     busy             memosd is overloaded. Retryable.
//     permission_denied the tenant may not do this.
//     internal         a bug or an unexpected storage failure in memosd.
//     unknown          a code newer than this client.
//   Client-side:
//     connect_failed   the socket could not be reached (no daemon, wrong
//                      path, permission). Retryable.
//     connection_lost  the connection closed before the reply arrived; the
//                      request may or may not have been applied. Retryable.
//     protocol_error   the daemon's reply could not be decoded. The
//                      connection is closed.
// Every write (cube_create, cube_remove, add, update, remove) is acknowledged
// only once memosd has committed it durably.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
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

struct Cube {
  std::uint64_t id = 0;
  std::string name{};
  std::uint32_t owner_uid = 0;
  std::int64_t created_at_ms = 0;
  std::string embedder{};
  std::uint32_t dimension = 0;
  std::uint64_t live_items = 0;
  std::uint64_t head_version = 0;   // advanced by every item version written
  std::string default_retriever{};  // how search ranks unless told otherwise
  std::string language{};           // stemming language of lexical search
  // cube_show only: what each retriever holds ("dense: hnsw, 120000
  // documents, 0 tombstones; lexical: ..."); a rebuild says "rebuilding".
  std::string indexes{};
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
  std::string retriever{};  // "dense", "lexical" or "hybrid"
  std::uint32_t rank = 0;   // 1-based; 0: not among its candidates
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

struct PluginInfo {
  std::string name{};
  std::vector<std::string> kinds{};
  std::string state{};   // "listed", "loaded" or "failed"
  std::string detail{};  // its version once loaded, or why it failed
  std::string health{};  // loaded plugins: running, restarting or quarantined
  bool isolated = false;
  std::string library{};
  std::string manifest{};
  std::vector<MetaEntry> capabilities{};
  std::vector<MetaEntry> settings{};
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
};

struct ItemChange {
  std::string text{};
  std::optional<std::vector<std::string>> tags{};  // replaced only when set
  std::optional<std::vector<MetaEntry>> meta{};    // replaced only when set
  std::string session_id{};
  std::string idempotency_key{};  // as in NewItem
};

// Every condition is applied inside the retrievers, so k hits come back
// whenever k items qualify (memos(7)).
struct SearchOptions {
  std::uint32_t k = 10;
  std::vector<std::string> tags{};  // only items carrying all of them
  std::int64_t as_of_ms = 0;        // facts valid at this time; 0: now
  bool include_archived = false;
  std::string mode{};                   // "dense", "lexical", "hybrid"; "": the cube's default
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
  float mmr_lambda = 0;  // in (0,1): diversify; 1 or more: off
};

// Memory-augmented generation (Client::chat; memos(7), "tiers").
struct ChatOptions {
  std::uint32_t k = 5;               // memories retrieved for the block
  std::vector<std::uint64_t> ids{};  // or exactly these memories
  std::string mode{};                // search mode; "": the cube's default
  bool activate = false;             // store the block's state for next time
  bool no_reuse = false;             // decode the block even if a state is stored
  std::uint32_t max_tokens = 128;    // generated, at most
  float temperature = 0;             // 0: greedy
  std::uint32_t top_k = 0;           // 0: off
  float top_p = 0;                   // 0 or 1: off
  std::uint32_t seed = 0;
};

struct ChatReply {
  std::string text{};
  std::vector<std::uint64_t> memories{};  // the block's memories, in block order
  std::uint32_t prompt_tokens = 0;        // block and prompt
  std::uint32_t block_tokens = 0;
  std::uint32_t reused_tokens = 0;  // taken from a stored state
  std::uint32_t generated_tokens = 0;
  // "none", "restored", "stored", "restored+stored" or "rejected: why".
  std::string activation_status{};
  std::uint64_t activation = 0;  // the item restored or stored; 0: none
  double restore_ms = 0, prefill_ms = 0, first_token_ms = 0, total_ms = 0;
  std::string finish{};   // "length", "eog" or "prompt"
  bool resident = false;  // the state was already in the executor's memory
  std::string format{};   // the prompt's layout: "chat template" or "plain"
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
};

struct ClientOptions {
  // Replies larger than this are refused (protocol_error).
  std::size_t max_message_bytes = 16u << 20;
};

// Ids as text: 13 characters of Crockford base32, sortable like the ids.
std::string format_id(std::uint64_t id);
// Case-insensitive; also accepts O for 0 and I/L for 1. Empty if invalid.
std::optional<std::uint64_t> parse_id(std::string_view text);

// The socket memctl and the SDK use when none is given: $MEMOS_SOCKET, else
// the daemon's default (memosd(8)).
std::string default_socket();

class Client {
 public:
  // Connects to `socket_path` (default_socket() when empty).
  // Errors: connect_failed.
  static Result<std::unique_ptr<Client>> connect(const std::string& socket_path = "",
                                                 ClientOptions options = {});
  // Closes the connection; futures still pending complete with connection_lost.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::future<Result<Status>> status_async();
  // `retriever`: the cube's default retriever; empty for "dense", the only
  // one so far. Errors: already_exists, bad_request (name or retriever).
  // retriever: "dense", "lexical" or "hybrid" ("" = the daemon's default);
  // language: stemming of lexical search ("" = english).
  std::future<Result<Cube>> cube_create_async(std::string name, std::string retriever = "",
                                              std::string language = "");
  std::future<Result<std::vector<Cube>>> cube_list_async();
  std::future<Result<Cube>> cube_show_async(std::string name);
  std::future<Result<Done>> cube_remove_async(std::string name, bool force = false);
  std::future<Result<Item>> add_async(std::string cube, NewItem item);
  // version 0: the head version.
  std::future<Result<Item>> get_async(std::string cube, std::uint64_t id,
                                      std::uint32_t version = 0);
  std::future<Result<Item>> update_async(std::string cube, std::uint64_t id, ItemChange change);
  // Returns the tombstone version. `idempotency_key` as in NewItem.
  std::future<Result<Item>> remove_async(std::string cube, std::uint64_t id,
                                         std::string idempotency_key = "");
  // Oldest version first.
  std::future<Result<std::vector<Item>>> history_async(std::string cube, std::uint64_t id);
  // Moves an item to active, archived or frozen; returns the new version.
  // Errors: conflict (already there, or state deleted), not_found.
  std::future<Result<Item>> set_state_async(std::string cube, std::uint64_t id, State state);
  // A new version equal in content to `version`; revives a deleted item.
  // Errors: not_found, conflict (frozen, or `version` is a tombstone).
  std::future<Result<Item>> rollback_async(std::string cube, std::uint64_t id,
                                           std::uint32_t version);
  // What changed from version `from` to version `to` (0: the latest).
  std::future<Result<ItemDiff>> diff_async(std::string cube, std::uint64_t id, std::uint32_t from,
                                           std::uint32_t to = 0);
  // Names the cube's current state `tag` (rules of cube names).
  // Errors: already_exists, bad_request, not_found.
  std::future<Result<Snapshot>> snapshot_create_async(std::string cube, std::string tag);
  // Oldest first.
  std::future<Result<std::vector<Snapshot>>> snapshot_list_async(std::string cube);
  // Items that differ from snapshot `from_tag` to `to_tag` (empty: now).
  // Errors: not_found (cube or snapshot).
  std::future<Result<std::vector<SnapshotChange>>> snapshot_diff_async(std::string cube,
                                                                       std::string from_tag,
                                                                       std::string to_tag = "");
  // Best first.
  std::future<Result<std::vector<Hit>>> search_async(std::string cube, std::string query,
                                                     SearchOptions options = {});

  Result<Status> status() { return status_async().get(); }
  Result<Cube> cube_create(std::string name, std::string retriever = "",
                           std::string language = "") {
    return cube_create_async(std::move(name), std::move(retriever), std::move(language)).get();
  }
  Result<std::vector<Cube>> cube_list() { return cube_list_async().get(); }
  Result<Cube> cube_show(std::string name) { return cube_show_async(std::move(name)).get(); }
  Result<Done> cube_remove(std::string name, bool force = false) {
    return cube_remove_async(std::move(name), force).get();
  }
  Result<Item> add(std::string cube, NewItem item) {
    return add_async(std::move(cube), std::move(item)).get();
  }
  Result<Item> get(std::string cube, std::uint64_t id, std::uint32_t version = 0) {
    return get_async(std::move(cube), id, version).get();
  }
  Result<Item> update(std::string cube, std::uint64_t id, ItemChange change) {
    return update_async(std::move(cube), id, std::move(change)).get();
  }
  Result<Item> remove(std::string cube, std::uint64_t id, std::string idempotency_key = "") {
    return remove_async(std::move(cube), id, std::move(idempotency_key)).get();
  }
  Result<std::vector<Item>> history(std::string cube, std::uint64_t id) {
    return history_async(std::move(cube), id).get();
  }
  Result<Item> set_state(std::string cube, std::uint64_t id, State state) {
    return set_state_async(std::move(cube), id, state).get();
  }
  Result<Item> rollback(std::string cube, std::uint64_t id, std::uint32_t version) {
    return rollback_async(std::move(cube), id, version).get();
  }
  Result<ItemDiff> diff(std::string cube, std::uint64_t id, std::uint32_t from,
                        std::uint32_t to = 0) {
    return diff_async(std::move(cube), id, from, to).get();
  }
  Result<Snapshot> snapshot_create(std::string cube, std::string tag) {
    return snapshot_create_async(std::move(cube), std::move(tag)).get();
  }
  Result<std::vector<Snapshot>> snapshot_list(std::string cube) {
    return snapshot_list_async(std::move(cube)).get();
  }
  Result<std::vector<SnapshotChange>> snapshot_diff(std::string cube, std::string from_tag,
                                                    std::string to_tag = "") {
    return snapshot_diff_async(std::move(cube), std::move(from_tag), std::move(to_tag)).get();
  }
  Result<std::vector<Hit>> search(std::string cube, std::string query, SearchOptions options = {}) {
    return search_async(std::move(cube), std::move(query), std::move(options)).get();
  }

  // Streams the archive of `cube` (memos(7), ARCHIVES) to `write`, a chunk
  // (about 1 MiB) at a time, as of the cube's state when the export began.
  // Returns the bytes written. `write` returning false stops the export.
  // Errors: not_found, conflict (the cube was replaced meanwhile),
  // connection errors; bad_request "stopped" if `write` stopped it.
  Result<std::uint64_t> export_cube(const std::string& cube,
                                    const std::function<bool(std::string_view)>& write);
  // Imports an archive read through `read` (which fills up to n bytes and
  // returns how many, 0 at the end) as a new cube named `name`, or the name
  // the archive carries when `name` is empty. Nothing is left behind when it
  // fails. Errors: bad_request (a truncated, corrupt or hostile archive, or a
  // bad name), already_exists, storage_full, connection errors.
  Result<Cube> import_cube(const std::function<std::size_t(char*, std::size_t)>& read,
                           const std::string& name = "");

  // The plugins memosd found, by name.
  Result<std::vector<PluginInfo>> plugin_list();
  // Errors: not_found.
  Result<PluginInfo> plugin_info(const std::string& name);
  // Re-reads the plugin folders; the embedder is loaded afresh and swapped
  // in. Errors: not_found; conflict if the new one fails to load or its
  // model differs (the running one stays).
  Result<PluginInfo> plugin_reload(const std::string& name);

  // Answers `prompt` with the model executor, the cube's memories ahead of
  // it; restores a stored state of that memory block instead of decoding it
  // when one exists. Errors: not_found (cube, named memory), too_large (the
  // block and prompt pass the model's context), bad_request, unavailable
  // (no executor configured, or it died mid-call: retryable).
  std::future<Result<ChatReply>> chat_async(std::string cube, std::string prompt,
                                            ChatOptions options = {});
  Result<ChatReply> chat(std::string cube, std::string prompt, ChatOptions options = {}) {
    return chat_async(std::move(cube), std::move(prompt), std::move(options)).get();
  }
  // Prefills the block of the named memories, or of the `top` most read
  // ones, and stores its state (the existing item if there is one). Errors:
  // as chat; conflict (a block shorter than one chunk, or a state over the
  // limits).
  Result<Activation> kv_prefill(std::string cube, std::vector<std::uint64_t> ids,
                                std::uint32_t top = 0);
  // The cube's activation items. Errors: not_found.
  Result<std::vector<Activation>> kv_list(std::string cube);
  // Removes one. Errors: not_found.
  Result<Activation> kv_remove(std::string cube, std::uint64_t id);
  Result<KvStats> kv_stats();

  // Requests sent whose replies have not arrived yet.
  std::size_t in_flight() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace memos
