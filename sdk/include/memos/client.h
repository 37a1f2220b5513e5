// memos/client.h — the C++ client of memosd.
//
// A Client holds one connection to memosd's Unix socket. Every operation
// that is one request and one reply has an asynchronous form (NAME_async,
// returning a std::future) and a blocking form (NAME, which waits for it).
// Asynchronous calls pipeline: any number may be in flight on one
// connection, and the daemon may answer them in any order; each future is
// completed with its own reply. The two calls that stream a cube archive
// over many requests, export_cube and import_cube, are blocking only.
//
// Threading: a Client may be used from several threads at once. Futures are
// completed on the client's reader thread; get() them from any thread.
//
// The values the calls take and return (Item, Cube, SearchOptions, Result,
// Error, ...) are declared in memos/types.h, which this header includes.
//
// Errors. No function throws; each returns Result<T>, holding a value or an
// Error {code, message, retryable}. The codes, and what memosd sends them for
// today (each call below lists the ones it can return beyond these):
//   Daemon-side (the request reached memosd and was refused):
//     bad_request      malformed or invalid arguments (bad cube name, invalid
//                      UTF-8, duplicate tag, a value out of range). Fix, don't
//                      retry. A request memosd cannot decode at all is
//                      answered so and the connection is closed.
//     not_found        the cube, item, version, snapshot, plugin or activation
//                      item does not exist (an item deleted at its head
//                      version is not_found; its earlier versions remain
//                      readable with an explicit version). Another tenant's
//                      cube is not_found too.
//     already_exists   a cube or snapshot of that name exists.
//     too_large        a field exceeds a configured limit (text, tags, meta, k,
//                      the idempotency key, the model's context), or the reply
//                      would exceed the message limit (ask for less).
//     conflict         the request conflicts with the current state (listed
//                      per call).
//     storage_full     the store's map or disk is full. Retryable.
//     quota_exceeded   a write would take the tenant past a bound of its
//                      policy (memos-policy(5): max_cubes, max_items,
//                      max_item_bytes, max_plaintext_mb); the message names
//                      the bound, its value and the usage. Not retryable
//                      until the tenant holds less or the bound is raised.
//     rate_limited     the tenant is over a rate of its policy ([rates]:
//                      writes, searches, chats and prefills); retryable,
//                      and Error::retry_after_ms says when.
//     unavailable      memosd is shutting down (writes, chat), or a plugin it
//                      needs (embedder, retriever, executor) failed or is
//                      restarting; retryable unless no executor is configured.
//     busy             too many imports open on this connection (import_cube);
//                      too many connections (the uid's or memosd's limit) or
//                      too much input buffered, after which memosd closes
//                      the connection: connect again later. Retryable.
//   The connection itself: when memosd closes it with a reason (a refusal at
//   connect, a frame not finished within frame_timeout_ms, an idle timeout,
//   an undecodable frame), every request waiting fails with that reason's
//   code and message rather than connection_lost; permission_denied there
//   means memosd cannot see the client's uid (a user namespace), for good.
//     permission_denied an operation for administrators only (plugin_reload,
//                      policy_reload); or, for the connection, the client's
//                      uid is not visible to memosd (it runs in a user
//                      namespace that does not map it) or a tenant policy
//                      does not admit it (allow = false). Another tenant's
//                      cube is not_found, not this.
//     internal         a bug or an unexpected storage failure in memosd. Any
//                      call may return it.
//     unknown          a code newer than this client.
//   Client-side, any call:
//     connect_failed   the socket could not be reached (no daemon, wrong
//                      path, permission). Retryable.
//     connection_lost  the connection closed before the reply arrived; the
//                      request may or may not have been applied. Retryable.
//     protocol_error   the daemon's reply could not be decoded (the
//                      connection is then closed), or it does not answer the
//                      request, or it names a tier, state, search mode or
//                      plugin state this client does not know (a newer
//                      memosd's): that call fails, naming the value, and the
//                      connection stays open. Two readings keep older data
//                      and newer executors usable instead: a cube whose
//                      default retriever is empty (made before cubes had
//                      one) reads as SearchMode::dense, as memosd searches
//                      it; a chat's activation status that is none of the
//                      known forms reads as a rejection with that status as
//                      the reason, as memosd treats it (it drops the state).
// Every write (cube_create, cube_remove, add, update, remove, set_state,
// rollback, snapshot_create, import_cube, kv_prefill, kv_remove) is
// acknowledged only once memosd has committed it durably. Any write may also
// fail with storage_full, and with unavailable while memosd shuts down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "memos/cluster.h"     // ClusterStatus, ShardStatus, NodeStatus
#include "memos/routing.h"     // RoutedSearch, ContextPiece
#include "memos/scheduling.h"  // SchedStatus, SchedDecision, Explanation
#include "memos/types.h"       // Result, Error, Item, Cube, ... (and the vocabulary's enums)

namespace memos {

struct ClientOptions {
  // Replies larger than this are refused (protocol_error).
  std::size_t max_message_bytes = 16u << 20;
  // Every item write (add, update, remove, set_state, rollback) is answered
  // only once it is searchable, not as soon as it is durable (memos(7),
  // "Writes and searches"). NewItem and ItemChange can ask for it per write.
  bool wait_searchable = false;
  // Cluster mode (memos-cluster(7)): every read of the store (get, search,
  // list, history...) sees each write acknowledged before it was sent,
  // whichever node answers; a node that cannot be sure it is current asks
  // the log first (a round trip) or refuses with unavailable. With this
  // set, a node known to be current at most this many ms ago answers at
  // once. 0: no staleness. A single memosd ignores it.
  std::uint32_t max_staleness_ms = 0;
};

// The socket memctl and the SDK use when none is given: $MEMOS_SOCKET, else
// the daemon's default (memosd(8)).
std::string default_socket();

class Client {
 public:
  // Connects to `socket_path` (default_socket() when empty).
  // Errors: connect_failed (also for a path longer than a socket address holds).
  static Result<std::unique_ptr<Client>> connect(const std::string& socket_path = "",
                                                 ClientOptions options = {});
  // Closes the connection; futures still pending complete with connection_lost.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- the daemon ----------------------------------------------------------

  // Version, uptime, the tenant memosd sees for this connection, its cubes,
  // and every plugin. Errors: only those every call can return.
  std::future<Result<Status>> status_async();
  Result<Status> status() { return status_async().get(); }

  // memosd's metrics in the Prometheus text exposition format (memctl(1)
  // "metrics"): requests by operation and code, their latency, queues,
  // each tenant's memory, plugins. Errors: permission_denied (not root,
  // memosd's uid or an admin tenant), internal (the store could not be
  // read).
  std::future<Result<std::string>> metrics_async();
  Result<std::string> metrics() { return metrics_async().get(); }

  // The cluster (memos-cluster(7), memctl(1) "cluster status"): each
  // shard's owner and last log record, and each node on the roster with its
  // role and how far behind the log it is. A single memosd answers
  // enabled = false. Errors: permission_denied (not root, memosd's uid or
  // an admin tenant), unavailable (the node has not joined its cluster).
  std::future<Result<ClusterStatus>> cluster_status_async();
  Result<ClusterStatus> cluster_status() { return cluster_status_async().get(); }
  // Asks the log's leader to give its role to another replica (admins; a
  // leader on a slow host or link slows every write) and waits for the
  // election: the answer's `log` names the new leader and the one that
  // stepped down; nothing else is set. Errors: permission_denied, conflict
  // (one node, or a log of one replica), unavailable (no leader now, the
  // engine refused, or no other leader within 10 s).
  std::future<Result<ClusterStatus>> cluster_step_down_async();
  Result<ClusterStatus> cluster_step_down() { return cluster_step_down_async().get(); }

  // ---- cubes -----------------------------------------------------------------

  // Creates an empty cube. `retriever`: how its search ranks unless told
  // otherwise (empty: the daemon's search.default_mode); `language`: the
  // stemming of lexical search ("" = english).
  // Errors: bad_request (the name, or an unknown language), already_exists.
  std::future<Result<Cube>> cube_create_async(std::string name,
                                              std::optional<SearchMode> retriever = std::nullopt,
                                              std::string language = "");
  Result<Cube> cube_create(std::string name, std::optional<SearchMode> retriever = std::nullopt,
                           std::string language = "") {
    return cube_create_async(std::move(name), retriever, std::move(language)).get();
  }
  // The tenant's cubes, by name, then the cubes other tenants share with
  // it, named "owner/cube" (Cube::shared_by). Errors: only those every call
  // can return.
  std::future<Result<std::vector<Cube>>> cube_list_async();
  Result<std::vector<Cube>> cube_list() { return cube_list_async().get(); }
  // One cube, with what each retriever holds (Cube::indexes) and, for the
  // tenant's own, whom it is shared with (Cube::shares). Errors: not_found.
  std::future<Result<Cube>> cube_show_async(std::string name);
  Result<Cube> cube_show(std::string name) { return cube_show_async(std::move(name)).get(); }
  // Removes a cube with its items, snapshots and activation items.
  // Errors: not_found; conflict (it holds live items and `force` is false).
  std::future<Result<Done>> cube_remove_async(std::string name, bool force = false);
  Result<Done> cube_remove(std::string name, bool force = false) {
    return cube_remove_async(std::move(name), force).get();
  }
  // Shares the tenant's own cube `name` with another tenant (a tenant's
  // name from memos-policy(5), a user name or "uid:N"), read only or with
  // `write`; sharing again changes the access. That tenant then names it
  // "owner/cube" (the owner's tenant name) in reads (get, history, diff,
  // search, snapshot list and diff, export, kv list, chat) and, with
  // `write`, in item writes, which count against the owner's quotas. The
  // cube itself (removal, snapshots, sharing, activation states) stays the
  // owner's. Returns the cube with its grants. Errors: not_found (the
  // cube, or no such tenant), bad_request (the owner's own tenant),
  // permission_denied (`name` is another tenant's cube).
  std::future<Result<Cube>> cube_share_async(std::string name, std::string tenant, bool write);
  Result<Cube> cube_share(std::string name, std::string tenant, bool write = false) {
    return cube_share_async(std::move(name), std::move(tenant), write).get();
  }
  // Takes a grant back: the tenant's next request no longer finds the cube.
  // Errors: not_found (the cube, the tenant, or no grant to it),
  // permission_denied (another tenant's cube).
  std::future<Result<Cube>> cube_unshare_async(std::string name, std::string tenant);
  Result<Cube> cube_unshare(std::string name, std::string tenant) {
    return cube_unshare_async(std::move(name), std::move(tenant)).get();
  }

  // ---- memory items ------------------------------------------------------------
  // The item writes (add, update, remove, set_state, rollback) are answered
  // once durable; embedding and indexing follow within a bounded lag
  // (Status::freshness_p99_ms), so a search right after may not see them
  // yet: search with SearchOptions::fresh, or write with wait_searchable
  // (NewItem, ItemChange, ClientOptions). With an idempotency key, a retry
  // returns what the first write wrote; a key longer than 128 bytes is
  // too_large, and a key reused for another write is conflict.

  // Writes version 1 of a new item and returns it.
  // Errors: not_found (the cube, or the item it supersedes); already_exists
  // (a live item of the cube holds exactly this text, and not
  // NewItem::allow_duplicate: the message names it, in base32; adds of one
  // text pipelined together store the first); bad_request (text empty or
  // only whitespace, empty or duplicate tag or metadata key, invalid UTF-8, importance
  // outside 0..1, a negative ttl or valid time); too_large (text, tags,
  // metadata, session id or sources over the limits); conflict (valid_to not
  // after valid_from; the superseded item is frozen, stopped holding before
  // this one starts, or does not start before it).
  std::future<Result<Item>> add_async(std::string cube, NewItem item);
  Result<Item> add(std::string cube, NewItem item) {
    return add_async(std::move(cube), std::move(item)).get();
  }
  // version 0: the head version. Counts as a read (Item::hits).
  // Errors: not_found (the cube, the item, that version, or a head version
  // that is a tombstone).
  std::future<Result<Item>> get_async(std::string cube, std::uint64_t id,
                                      std::uint32_t version = 0);
  Result<Item> get(std::string cube, std::uint64_t id, std::uint32_t version = 0) {
    return get_async(std::move(cube), id, version).get();
  }
  // Writes a new version with `change`'s text (and tags and metadata when set).
  // Errors: not_found (the cube, or the item, or it is deleted); bad_request
  // and too_large (as add); conflict (the item is frozen). An update is not
  // checked for duplicates.
  std::future<Result<Item>> update_async(std::string cube, std::uint64_t id, ItemChange change);
  Result<Item> update(std::string cube, std::uint64_t id, ItemChange change) {
    return update_async(std::move(cube), id, std::move(change)).get();
  }
  // Deletes an item (a tombstone version, purged after retention) and
  // returns the tombstone. `idempotency_key` as in NewItem.
  // Errors: not_found (the cube, or the item, or it is already deleted);
  // conflict (the item is frozen).
  std::future<Result<Item>> remove_async(std::string cube, std::uint64_t id,
                                         std::string idempotency_key = "");
  Result<Item> remove(std::string cube, std::uint64_t id, std::string idempotency_key = "") {
    return remove_async(std::move(cube), id, std::move(idempotency_key)).get();
  }
  // Every version, oldest first, tombstones included, read in as many
  // requests as the history needs (each reply is bounded by the message
  // limit). Errors: not_found (the cube or the item).
  std::future<Result<std::vector<Item>>> history_async(std::string cube, std::uint64_t id);
  Result<std::vector<Item>> history(std::string cube, std::uint64_t id) {
    return history_async(std::move(cube), id).get();
  }
  // Moves an item to active, archived or frozen; returns the new version.
  // Errors: bad_request (State::deleted: use remove); not_found (the cube,
  // or the item, or it is deleted); conflict (it is already in that state).
  std::future<Result<Item>> set_state_async(std::string cube, std::uint64_t id, State state);
  Result<Item> set_state(std::string cube, std::uint64_t id, State state) {
    return set_state_async(std::move(cube), id, state).get();
  }
  // A new version equal in content to `version`; revives a deleted item.
  // Errors: bad_request (version 0); not_found (the cube, the item, or that
  // version); conflict (the item is frozen, or `version` is a tombstone).
  std::future<Result<Item>> rollback_async(std::string cube, std::uint64_t id,
                                           std::uint32_t version);
  Result<Item> rollback(std::string cube, std::uint64_t id, std::uint32_t version) {
    return rollback_async(std::move(cube), id, version).get();
  }
  // What changed from version `from` to version `to` (0: the latest).
  // Errors: bad_request (from is 0); not_found (the cube, the item, or a
  // version past its last).
  std::future<Result<ItemDiff>> diff_async(std::string cube, std::uint64_t id, std::uint32_t from,
                                           std::uint32_t to = 0);
  Result<ItemDiff> diff(std::string cube, std::uint64_t id, std::uint32_t from,
                        std::uint32_t to = 0) {
    return diff_async(std::move(cube), id, from, to).get();
  }

  // ---- snapshots -----------------------------------------------------------------

  // Names the cube's current state `tag` (rules of cube names).
  // Errors: bad_request (the tag); not_found (the cube); already_exists
  // (the tag).
  std::future<Result<Snapshot>> snapshot_create_async(std::string cube, std::string tag);
  Result<Snapshot> snapshot_create(std::string cube, std::string tag) {
    return snapshot_create_async(std::move(cube), std::move(tag)).get();
  }
  // Oldest first. Errors: not_found (the cube).
  std::future<Result<std::vector<Snapshot>>> snapshot_list_async(std::string cube);
  Result<std::vector<Snapshot>> snapshot_list(std::string cube) {
    return snapshot_list_async(std::move(cube)).get();
  }
  // Items that differ from snapshot `from_tag` to `to_tag` (empty: now), in
  // item id order. Errors: bad_request (from_tag is empty); not_found (the
  // cube or a snapshot).
  std::future<Result<std::vector<SnapshotChange>>> snapshot_diff_async(std::string cube,
                                                                       std::string from_tag,
                                                                       std::string to_tag = "");
  Result<std::vector<SnapshotChange>> snapshot_diff(std::string cube, std::string from_tag,
                                                    std::string to_tag = "") {
    return snapshot_diff_async(std::move(cube), std::move(from_tag), std::move(to_tag)).get();
  }

  // ---- search ------------------------------------------------------------------

  // Best first; counts as a read of each hit.
  // Errors: bad_request (a cube name, more than 64 cubes, State::deleted in
  // states, a negative time, an empty time range, a weight outside 0..100, a
  // negative mmr_lambda, a min_score that is NaN or infinite, invalid
  // UTF-8); too_large (k over the daemon's
  // max_k, the query, tags or metadata over the limits; or the k best hits
  // hold more than one reply carries: the message says which k fits);
  // not_found (a cube);
  // unavailable (the embedder or a retriever failed; retryable).
  std::future<Result<std::vector<Hit>>> search_async(std::string cube, std::string query,
                                                     SearchOptions options = {});
  Result<std::vector<Hit>> search(std::string cube, std::string query, SearchOptions options = {}) {
    return search_async(std::move(cube), std::move(query), std::move(options)).get();
  }
  // A routed search (memos(7), "Routing"): the query-time memory modules at
  // options.route's tiers (none set: every module at mid), answering the
  // hits, the context built from them and what each module did and cost.
  // Errors: as search; bad_request with mode or min_score; unavailable for
  // a tier this memosd cannot run (temporal, expand or compress at high).
  std::future<Result<RoutedSearch>> search_routed_async(std::string cube, std::string query,
                                                        SearchOptions options = {});
  Result<RoutedSearch> search_routed(std::string cube, std::string query,
                                     SearchOptions options = {}) {
    return search_routed_async(std::move(cube), std::move(query), std::move(options)).get();
  }

  // ---- archives (streamed: blocking only) ----------------------------------------

  // Streams the archive of `cube` (memos(7), ARCHIVES) to `write`, a chunk
  // (about 1 MiB) at a time, as of the cube's state when the export began.
  // Returns the bytes written. `write` returning false stops the export.
  // Errors: not_found; conflict (the cube was replaced meanwhile);
  // bad_request "stopped by the writer" if `write` stopped it.
  Result<std::uint64_t> export_cube(const std::string& cube,
                                    const std::function<bool(std::string_view)>& write);
  // Imports an archive read through `read` (which fills up to n bytes and
  // returns how many, 0 at the end) as a new cube named `name`, or the name
  // the archive carries when `name` is empty. Nothing is left behind when it
  // fails. Errors: bad_request (a truncated, corrupt or hostile archive, or a
  // bad name), already_exists, storage_full, busy (too many imports open on
  // this connection; retryable).
  Result<Cube> import_cube(const std::function<std::size_t(char*, std::size_t)>& read,
                           const std::string& name = "");

  // ---- the parametric tier (memos(7), "Tiers") -----------------------------------

  // Adds a LoRA adapter's GGUF (`gguf`, uploaded about 4 MiB a request) to
  // `cube` as the parametric item `name`, or as the next version of the one
  // of that name; memosd's executor checks it against its model first.
  // `scale` (0: 1) is what chats use unless they name one; `description`
  // the item's text (empty: made from the adapter's facts). Blocking only.
  // Errors: bad_request (a name, a scale outside [-16, 16], an empty file,
  // or a file the executor refuses: the message says which of type,
  // architecture, base model, tensors or values does not fit); not_found
  // (the cube); conflict (the adapter is frozen); too_large (over
  // store.max_adapter_mb); quota_exceeded (over the tenant's
  // parametric.max_mb); permission_denied (use.tiers leaves parametric
  // out); unavailable (no executor).
  Result<Item> param_add(const std::string& cube, const std::string& name, std::string_view gguf,
                         float scale = 0, const std::string& description = "");
  // Derives a control vector from the cube's memories: the per-layer mean
  // hidden state of the active memories tagged `positive` less that of
  // those tagged `negative` (at most 256 each, the newest), stored as the
  // parametric item `name` (kind "cvec"; its sources are those memories).
  // Runs on the executor like a prefill. Errors: bad_request (a name, the
  // same tag twice, a scale), not_found (the cube, or no memory with a
  // tag), permission_denied, unavailable (no executor).
  std::future<Result<Item>> param_cvec_async(std::string cube, std::string name,
                                             std::string positive, std::string negative,
                                             float scale = 0, std::string description = "");
  Result<Item> param_cvec(std::string cube, std::string name, std::string positive,
                          std::string negative, float scale = 0, std::string description = "") {
    return param_cvec_async(std::move(cube), std::move(name), std::move(positive),
                            std::move(negative), scale, std::move(description))
        .get();
  }
  // The cube's adapters (their heads), by name. Errors: not_found.
  std::future<Result<std::vector<Item>>> param_list_async(std::string cube);
  Result<std::vector<Item>> param_list(std::string cube) {
    return param_list_async(std::move(cube)).get();
  }
  // One adapter: its head, or `version` of it. Errors: not_found (no such
  // adapter or version, or it was removed).
  std::future<Result<Item>> param_show_async(std::string cube, std::string name,
                                             std::uint32_t version = 0);
  Result<Item> param_show(std::string cube, std::string name, std::uint32_t version = 0) {
    return param_show_async(std::move(cube), std::move(name), version).get();
  }
  // Writes a tombstone version (rollback brings it back until it is
  // purged). Errors: not_found, conflict (frozen).
  std::future<Result<Item>> param_remove_async(std::string cube, std::string name);
  Result<Item> param_remove(std::string cube, std::string name) {
    return param_remove_async(std::move(cube), std::move(name)).get();
  }
  // The adapter's GGUF (of `version`, 0: the head), streamed to `write` a
  // chunk (1 MiB) at a time; returns its version. Blocking only. Errors:
  // not_found; bad_request "stopped by the writer".
  Result<std::uint32_t> param_export(const std::string& cube, const std::string& name,
                                     std::uint32_t version,
                                     const std::function<bool(std::string_view)>& write);

  // Starts a background job distilling memories of the cube into a LoRA
  // adapter of the executor's model (memos(7), "Tiers") and returns it,
  // queued; job_show follows it. The adapter is written as the item
  // `name` (its sources the memories) when the job is done, never before.
  // Errors: bad_request (a name, a scale, rank over 256, steps over
  // 10000, a tag and ids both), not_found (the cube, a named memory that is
  // not an active plaintext one, or no memory to learn from), too_large
  // (over 10000 memories or 16 MiB of text), busy (4 jobs of yours open),
  // permission_denied, unavailable (no executor). The job itself fails
  // with the executor's refusal (a quantized or F16 model: llama.cpp
  // trains F32 weights only).
  std::future<Result<Job>> param_distill_async(DistillArgs args);
  Result<Job> param_distill(DistillArgs args) { return param_distill_async(std::move(args)).get(); }

  // ---- jobs --------------------------------------------------------------------

  // Your jobs, oldest first (finished ones: the last 32). Errors: only
  // those every call can return.
  std::future<Result<std::vector<Job>>> job_list_async();
  Result<std::vector<Job>> job_list() { return job_list_async().get(); }
  // Errors: not_found (no job of yours with that id).
  std::future<Result<Job>> job_show_async(std::uint64_t id);
  Result<Job> job_show(std::uint64_t id) { return job_show_async(id).get(); }
  // Stops a job: a queued one at once, a running one before its next step
  // (job_show then says cancelled); it writes nothing. Errors: not_found,
  // conflict (it is finished).
  std::future<Result<Job>> job_cancel_async(std::uint64_t id);
  Result<Job> job_cancel(std::uint64_t id) { return job_cancel_async(id).get(); }

  // ---- plugins -----------------------------------------------------------------

  // The plugins memosd found, by name. Errors: only those every call can return.
  std::future<Result<std::vector<PluginInfo>>> plugin_list_async();
  Result<std::vector<PluginInfo>> plugin_list() { return plugin_list_async().get(); }
  // Errors: not_found.
  std::future<Result<PluginInfo>> plugin_info_async(std::string name);
  Result<PluginInfo> plugin_info(std::string name) {
    return plugin_info_async(std::move(name)).get();
  }
  // Re-reads the plugin folders; the embedder is loaded afresh and swapped
  // in (other plugins are re-listed only). Errors: not_found; conflict if
  // the new embedder fails to load or its model differs (the running one
  // stays).
  std::future<Result<PluginInfo>> plugin_reload_async(std::string name);
  Result<PluginInfo> plugin_reload(std::string name) {
    return plugin_reload_async(std::move(name)).get();
  }

  // ---- tenants -------------------------------------------------------------------

  // A tenant's policy: the caller's own when `tenant` is empty. Errors:
  // permission_denied (another tenant's, for a non-administrator),
  // not_found (no such tenant).
  std::future<Result<PolicyInfo>> policy_show_async(std::string tenant = "");
  Result<PolicyInfo> policy_show(std::string tenant = "") {
    return policy_show_async(std::move(tenant)).get();
  }
  // Re-reads the policy folder, as SIGHUP does, and answers with the
  // caller's policy under the new set. Errors: permission_denied (not an
  // administrator), bad_request (a file has an error: every one is in the
  // message, one a line, and the running policies stay).
  std::future<Result<PolicyInfo>> policy_reload_async();
  Result<PolicyInfo> policy_reload() { return policy_reload_async().get(); }
  // What a tenant holds: the caller's when `tenant` is empty; another's (a
  // tenant's name, a user's, or "uid:N") for administrators. Errors:
  // permission_denied, not_found.
  std::future<Result<TenantUsage>> tenant_usage_async(std::string tenant = "");
  Result<TenantUsage> tenant_usage(std::string tenant = "") {
    return tenant_usage_async(std::move(tenant)).get();
  }

  // ---- generation and the activation tier -------------------------------------
  // Each fails with unavailable when memosd has no executor (not retryable:
  // set executor.model), when the executor failed and restarts, or while
  // memosd shuts down (both retryable); an executor failure it does not
  // recover from is internal.

  // Answers `prompt` with the model executor, the cube's memories ahead of
  // it; restores a stored state of that memory block instead of decoding it
  // when one exists. Errors: bad_request (a cube name, an empty prompt, k
  // over 100, more than 1000 ids, max_tokens over executor.max_tokens,
  // temperature outside 0..10, top_p outside 0..1); too_large (the prompt
  // over max_text_bytes, or the block and prompt pass the model's context);
  // not_found (the cube or a named memory); unavailable (as above, or the
  // search for the block failed).
  std::future<Result<ChatReply>> chat_async(std::string cube, std::string prompt,
                                            ChatOptions options = {});
  Result<ChatReply> chat(std::string cube, std::string prompt, ChatOptions options = {}) {
    return chat_async(std::move(cube), std::move(prompt), std::move(options)).get();
  }
  // chat(), streamed: `on_piece` gets each ChatPiece as memosd sends it
  // (prefill progress, then the answer piece by piece), in order, before
  // the result is ready; the ChatReply still holds the whole text. It runs
  // on the connection's reader thread: it must return soon and must not
  // wait for another call on this Client (that reply would wait for it).
  // Errors: as chat(); an error can follow pieces already delivered.
  using ChatPieceHandler = std::function<void(const ChatPiece&)>;
  std::future<Result<ChatReply>> chat_async(std::string cube, std::string prompt,
                                            ChatOptions options, ChatPieceHandler on_piece);
  Result<ChatReply> chat(std::string cube, std::string prompt, ChatOptions options,
                         ChatPieceHandler on_piece) {
    return chat_async(std::move(cube), std::move(prompt), std::move(options), std::move(on_piece))
        .get();
  }
  // Prefills the block of the named memories, or of the `top` most read
  // ones, and stores its state (the existing item if there is one: then
  // Activation::prefill_ms is 0). Errors: bad_request (a cube name, both or
  // neither of ids and top, more than 1000 of either); not_found (the cube
  // or a named memory); too_large (the block passes the model's context);
  // conflict (a block shorter than one chunk, or a state over the tenant's
  // activation budget or limits); unavailable (as above).
  std::future<Result<Activation>> kv_prefill_async(std::string cube, std::vector<std::uint64_t> ids,
                                                   std::uint32_t top = 0);
  Result<Activation> kv_prefill(std::string cube, std::vector<std::uint64_t> ids,
                                std::uint32_t top = 0) {
    return kv_prefill_async(std::move(cube), std::move(ids), top).get();
  }
  // The cube's activation items, in id order; needs no executor.
  // Errors: bad_request (the cube name); not_found (the cube).
  std::future<Result<std::vector<Activation>>> kv_list_async(std::string cube);
  Result<std::vector<Activation>> kv_list(std::string cube) {
    return kv_list_async(std::move(cube)).get();
  }
  // Removes one and returns it; needs no executor. Errors: bad_request (the
  // cube name); not_found (the cube or the activation item).
  std::future<Result<Activation>> kv_remove_async(std::string cube, std::uint64_t id);
  Result<Activation> kv_remove(std::string cube, std::uint64_t id) {
    return kv_remove_async(std::move(cube), id).get();
  }
  // The tier's use: the tenant's stored items, the executor's resident
  // states, the model (empty without an executor). Errors: only those every
  // call can return.
  std::future<Result<KvStats>> kv_stats_async();
  Result<KvStats> kv_stats() { return kv_stats_async().get(); }

  // The scheduler (memos(7), "Scheduling"). sched_status: its state and the
  // working sets of the caller's cubes, or of the one named. Errors:
  // bad_request (the cube name); permission_denied (another tenant's cube,
  // even one shared with the caller: its schedule is its owner's);
  // not_found (the cube).
  std::future<Result<SchedStatus>> sched_status_async(std::string cube = "");
  Result<SchedStatus> sched_status(std::string cube = "") {
    return sched_status_async(std::move(cube)).get();
  }
  // Its last `max` decisions (0: 100; at most 10000), oldest first, over the
  // caller's cubes or the one named. Errors: as sched_status(), and
  // bad_request (max over 10000).
  std::future<Result<std::vector<SchedDecision>>> sched_log_async(std::string cube = "",
                                                                  std::uint32_t max = 0);
  Result<std::vector<SchedDecision>> sched_log(std::string cube = "", std::uint32_t max = 0) {
    return sched_log_async(std::move(cube), max).get();
  }
  // Runs a pass now over the caller's cubes (an administrator's: every
  // tenant's) and returns it. Errors: only those every call can return.
  std::future<Result<SchedPass>> sched_run_async();
  Result<SchedPass> sched_run() { return sched_run_async().get(); }
  // A memory's strength, retention and placement. Errors: bad_request (the
  // cube name); not_found (the cube or the memory, or a cube the caller may
  // not read).
  std::future<Result<Explanation>> explain_async(std::string cube, std::uint64_t id);
  Result<Explanation> explain(std::string cube, std::uint64_t id) {
    return explain_async(std::move(cube), id).get();
  }

  // Requests sent whose replies have not arrived yet.
  std::size_t in_flight() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace memos
