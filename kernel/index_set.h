// index_set.h — the search side of every cube: the embedder that turns text
// into vectors and the retriever plugins (dense, lexical, hybrid) that hold
// one collection per cube.
//
// Collections are derived data (docs/design.md): every committed change is
// sent to each retriever in commit order from the indexer thread
// (IndexFeed), behind the write's answer, tagged with the cube version it
// brings the collection to. Snapshots are written from
// time to time and at shutdown; at start a collection whose snapshot does
// not cover the cube's head version (missing, stale after a crash, torn,
// corrupt) is caught up from the versions the store wrote since (or, with
// no usable snapshot, dropped and rebuilt from LMDB). A retriever whose isolated host
// dies loses what it held in memory: its collections are reopened from
// their snapshots, and rebuilt from LMDB where those fall short, the same
// way, while searches that need it are answered `unavailable`. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/index_feed.h"
#include "kernel/index_sharing.h"
#include "kernel/plugin_embedder.h"
#include "kernel/plugin_retriever.h"
#include "kernel/serial_lane.h"
#include "memcube/store.h"

namespace memos::kernel {

class IndexSet {
 public:
  IndexSet() = default;
  ~IndexSet() { stop(); }  // the indexer thread uses the members below
  IndexSet(const IndexSet&) = delete;
  IndexSet& operator=(const IndexSet&) = delete;

  // The embedder plugin every cube uses (set at start, before use). Safe
  // while searches run: a reload swaps the embedder under them.
  void set_embedder(std::shared_ptr<PluginEmbedder> embedder, std::string model) {
    std::atomic_store(&embedder_, std::move(embedder));
    std::lock_guard lock(mutex_);
    model_ = std::move(model);
  }
  // The embedder's model name, recorded in each new cube's manifest.
  std::string embedder_model() const {
    std::lock_guard lock(mutex_);
    return model_;
  }
  // Embeds texts for a cube of `dimension`. Errors: PluginEmbedder::embed's.
  Status embed(std::string_view text, std::uint32_t dimension, std::vector<float>* out) const {
    return std::atomic_load(&embedder_)->embed(text, dimension, out);
  }
  Status embed(const std::vector<std::string_view>& texts, std::uint32_t dimension,
               std::vector<float>* out) const {
    return std::atomic_load(&embedder_)->embed(texts, dimension, out);
  }

  // The retrievers (set once at start, before use).
  void set_retrievers(std::shared_ptr<PluginRetriever> dense,
                      std::shared_ptr<PluginRetriever> lexical,
                      std::shared_ptr<PluginRetriever> fuser) {
    dense_ = std::move(dense);
    lexical_ = std::move(lexical);
    fuser_ = std::move(fuser);
    for (std::size_t i = 0; i < kStoring; ++i) seen_[i] = storing()[i]->incarnation();
  }
  const PluginRetriever& dense() const { return *dense_; }
  const PluginRetriever& lexical() const { return *lexical_; }
  const PluginRetriever& fuser() const { return *fuser_; }

  // Opens a new cube's collections. Errors: the first retriever's.
  Status open(const store::Cube& cube);
  // Starts the indexer thread (after open_all, before the writer).
  // `max_backlog` writes or `max_backlog_bytes` of their text may wait for
  // it before the writer slows down (IndexFeed).
  void start(std::size_t max_backlog, std::size_t max_backlog_bytes);
  // Drains: indexes everything posted, without backpressure from the
  // retrievers (IndexRequest.noWait), answers every waiter, ends the
  // indexer thread. After the writer has stopped; idempotent.
  void stop();

  // Writer thread, in a write's `done` (before it is answered): queues the
  // committed change `written` and, when it closed another fact,
  // `superseded`. Returns the write's number for when_indexed(). The
  // changes reach the indexer thread at flush(), which embeds the texts and
  // sends them to the retrievers in commit order, batched: one request per
  // cube and retriever for a run of changes of one kind.
  std::uint64_t apply(const store::Cube& cube, const store::Item& written,
                      const store::Item* superseded);
  // Writer thread: queues the removal of an item that expired (no new cube
  // version).
  void remove(store::CubeId cube, std::uint64_t item);
  // Writer thread, after each commit group: hands the queued changes to the
  // indexer thread, then waits while its backlog is over the bounds
  // (backpressure).
  void flush();
  // The number of the last write queued (any thread): a search that must
  // see every write answered before it waits for this one.
  std::uint64_t accepted() const { return feed_->accepted(); }
  // Calls `fn` once write `number` is searchable: at once (on this thread)
  // if it is, else on the indexer thread.
  void when_indexed(std::uint64_t number, std::function<void()> fn) {
    feed_->when_indexed(number, std::move(fn));
  }
  // How far indexing is behind (`memctl status`).
  IndexLag lag() const { return feed_->lag(); }
  // Writer thread: forgets a removed cube's collections and their
  // snapshots, after the changes queued before it.
  void drop(store::CubeId cube) {
    IndexChange c;
    c.kind = IndexChange::Kind::drop;
    c.cube = cube;
    pending_.push_back(std::move(c));
  }
  // Any thread: runs `work` on the indexer thread after the changes
  // posted so far (retry_unbuilt(), so that no change slips between the
  // store snapshot a rebuild reads and the collections it makes). Dropped
  // after stop().
  void run_in_order(std::function<void()> work) { feed_->post_barrier(std::move(work)); }

  // At start: opens every cube's collections, catches up those whose
  // snapshot is behind the head version and rebuilds those with none
  // usable. A cube whose collections
  // cannot be opened or built (a full disk, a failing retriever) does not
  // stop the start: it is left unbuilt, logged, and searches of it are
  // unavailable until retry_unbuilt() builds it; reads and writes go on.
  // Errors: Status::from() of the store's (the cubes cannot be listed).
  // `progress` (optional) hears what is going on, at least every 10000
  // items rebuilt (memosd tells systemd, extending its start timeout).
  Status open_all(const store::Store& store, std::size_t* items_indexed, std::size_t* cubes_rebuilt,
                  const std::function<void(const std::string&)>& progress = {});
  // Whether `cube` can be searched in `mode`. Errors: unavailable
  // (retryable) for a cube unbuilt in a retriever the mode uses, with why,
  // and for every cube while such a retriever's host has died and its
  // collections are not yet reopened.
  Status searchable(store::CubeId cube, SearchMode mode) const;
  // Whether retry_unbuilt() has work: a retriever's host died since the
  // last look, or an unbuilt cube is due for another attempt. Cheap while
  // nothing is unbuilt: atomic loads.
  bool has_unbuilt() const;
  // Indexer thread (run_in_order), or before start(): marks
  // every cube unbuilt in a retriever whose host died, then reopens each
  // unbuilt cube's collections, catching up or rebuilding from the store
  // those whose snapshot does not cover the head version; what still fails stays
  // unbuilt and is tried again no sooner than 5 s later. Returns the number
  // of cubes made searchable.
  std::size_t retry_unbuilt(const store::Store& store);
  // Builds one cube's collections afresh from a read snapshot (after an
  // import). Same errors.
  Status build(const store::ReadTxn& txn, const store::Cube& cube, std::size_t* items,
               const std::function<void(const std::string&)>& progress = {}) {
    return rebuild(txn, cube, kAllRetrievers, items, progress);
  }
  // What each retriever holds of a cube, for people ("dense: ...; lexical:
  // ..."), or why it could not say.
  std::string describe(const store::Cube& cube) const;
  // Snapshots every collection changed since its last snapshot, the cubes
  // with the most changes first, and starts no cube's once `deadline` has
  // passed (those are caught up from the store at the next start). Returns
  // the number of cubes written; failures are logged and retried next time.
  std::size_t save_changed(std::chrono::steady_clock::time_point deadline =
                               std::chrono::steady_clock::time_point::max());

  // Index snapshots shared between nodes (index_sharing.h; cluster mode).
  // From now on, a collection that restore() would rebuild from the store
  // (no usable snapshot of its own) is first looked for in `shared`: one
  // that this node's cube and embedder match, and whose version the store
  // holds, is fetched, imported and caught up from instead. nullptr: no
  // more. Blocks until no call uses the one it replaces, which the caller
  // may then destroy. Any thread.
  void set_sharing(SharedIndexes* shared) {
    std::unique_lock lock(sharing_mutex_);
    sharing_ = shared;
  }
  // Through the sharing set (none: 0), shares the collections of `cubes`
  // (those this node writes) that hold at least `min_items` items and
  // changed by a tenth since they were last shared (by any node): each
  // retriever exports its collection, which is published as node `node`'s.
  // Failures are logged and tried again next time. Returns how many files
  // were published. Any thread but the indexer's (an export waits for the
  // plugin's save).
  std::size_t share(const std::vector<store::Cube>& cubes, std::uint64_t min_items,
                    const std::string& node);
  // While a node replays the log from far behind (one joining a running
  // cluster), from start_deferring() to release_deferred(), a cube new to
  // it is deferred: defer() answers true, and its collections are neither
  // opened nor fed record by record; its searches answer unavailable saying
  // `why`. release_deferred() ends the deferring; retry_unbuilt() then
  // restores those cubes as at a start (from a shared snapshot, or rebuilt
  // from the store in batches). Outside that span defer() answers false,
  // and the caller opens the cube's collections itself. One lock for the
  // three, so a cube deferred while the span ends is released with it.
  void start_deferring();
  bool defer(store::CubeId cube, std::string why);
  void release_deferred();

 private:
  // The retrievers that store collections, as bits: bit i is storing()[i].
  using Retrievers = unsigned;
  static constexpr std::size_t kStoring = 2;
  static constexpr Retrievers kDenseBit = 1, kLexicalBit = 2, kAllRetrievers = 3;
  std::array<const PluginRetriever*, kStoring> storing() const {
    return {dense_.get(), lexical_.get()};
  }
  static Retrievers used_by(SearchMode mode);

  struct CubeState {
    std::uint64_t unsaved = 0;  // changes since the last snapshot
    // The version each storing retriever's collection was last shared at
    // (share()), by this node or, as far as it looked, another.
    std::array<std::uint64_t, kStoring> shared{};
    // Retrievers that could not index a change: they are never snapshot, so
    // the next start (or a host restart) rebuilds them from the store.
    Retrievers poisoned = 0;
  };
  // A cube that cannot be searched through some retrievers until rebuilt.
  struct Unbuilt {
    std::string why;
    Retrievers retrievers = 0;
    // A failed attempt waits this long before the next (a full disk, a
    // host still restarting); a fresh mark is tried at once.
    std::chrono::steady_clock::time_point retry_after{};
  };
  static constexpr std::chrono::seconds kRetryAfterFailure{5};
  // Counts `count` changes to `cube`; `failed`: retrievers that did not
  // index one of them.
  void note_changes(store::CubeId cube, std::size_t count, Retrievers failed);
  // Marks every cube unbuilt in each retriever whose host died since the
  // last look. Writer thread.
  void note_restarts();
  // The retrievers each of `cubes` is unbuilt in (flush's skip list).
  std::map<store::CubeId, Retrievers> unbuilt_in(const std::vector<store::CubeId>& cubes) const;
  // Opens a cube's collections in `retrievers`, catches up from `txn`
  // those whose snapshot is behind the head version, and rebuilds those
  // with no usable snapshot (or a count still wrong after catching up):
  // `*rebuilt` says which were rebuilt, `*items` how many items were sent.
  Status restore(const store::ReadTxn& txn, const store::Cube& cube, Retrievers retrievers,
                 std::size_t* items, Retrievers* rebuilt,
                 const std::function<void(const std::string&)>& progress);
  // Brings the collections of `targets`, whose snapshots cover the
  // versions in `covered` (below the head), up to the head from `txn`:
  // sends each what changed after its version (indexes the live items,
  // removes the deleted). `*missed`: those whose document count still
  // disagrees with the store (an item purged since its snapshot), for a
  // rebuild. Errors: unavailable (the embedder or a retriever failed).
  Status catch_up(const store::ReadTxn& txn, const store::Cube& cube, Retrievers targets,
                  const std::array<std::uint64_t, kStoring>& covered, std::size_t* items,
                  Retrievers* missed);
  // Of `*stale` (collections restore() would rebuild), those whose shared
  // snapshot fits `cube` are fetched and imported (index_set_sharing.cpp):
  // each taken moves from `*stale` to `*behind` with its version in
  // `covered`, or leaves both when it covers the head. Failures are logged
  // and leave the collection stale.
  void adopt_shared(const store::Cube& cube, Retrievers* stale, Retrievers* behind,
                    std::array<std::uint64_t, kStoring>* covered);
  // One retriever's part of adopt_shared(): the version its collection now
  // covers, or 0 when it took nothing.
  std::uint64_t adopt_one(SharedIndexes& shared, const store::Cube& cube, std::size_t which);
  // One retriever's part of share(): whether it published.
  bool share_one(SharedIndexes& shared, const store::Cube& cube, std::size_t which,
                 const std::string& node);
  // Drops and rebuilds the collections of `retrievers` from `txn`.
  Status rebuild(const store::ReadTxn& txn, const store::Cube& cube, Retrievers retrievers,
                 std::size_t* items, const std::function<void(const std::string&)>& progress);
  void set_unbuilt_locked(store::CubeId cube, std::string why, Retrievers retrievers);
  void erase_unbuilt_locked(store::CubeId cube);

  // Changes queued by the writer thread for its next flush().
  std::vector<IndexChange> pending_;
  std::unique_ptr<IndexFeed> feed_;
  // Indexer thread: embeds and indexes one batch (IndexFeed's `process`).
  void process(std::vector<IndexChange>& batch);
  // Indexes `batch` (no drops in it): runs of changes to one cube of one
  // kind in one request each, per retriever.
  void index_batch(std::vector<IndexChange>& batch);
  // Embeds the texts of each run's `index` changes into `vectors` (one per
  // change; empty for the others). A run whose embedding fails gets no
  // vectors and its cube is marked unbuilt in the dense retriever, which
  // rebuilds it from the store once the embedder answers again.
  // Runs of cubes unbuilt in the dense retriever (`skip`) are not embedded.
  void embed_runs(const std::vector<IndexChange>& batch,
                  const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                  const std::map<store::CubeId, Retrievers>& skip,
                  std::vector<std::vector<float>>* vectors);
  // Embeds `items`' texts into `vectors` (one per item, row of `dimension`
  // floats). When the embedder fails the batch but is up, embeds them one
  // at a time and leaves out of the dense retriever those it fails alone
  // (their vectors stay empty; logged, and counted by describe()): one text
  // that crashes, hangs or upsets the embedder must not keep the cube's
  // dense search down. Errors: the embedder's, when it fails them all or
  // stops running (its fault, not the texts'); nothing is left out then.
  Status embed_or_leave_out(store::CubeId cube, const std::string& cube_name,
                            std::uint32_t dimension, const std::vector<const store::Item*>& items,
                            std::vector<std::vector<float>>* vectors);
  // Sends runs [first, second) of `batch` to storing()[which], except runs
  // of cubes unbuilt in it (their rebuild reads the store); clears ok[run]
  // for a run it could not index.
  enum class Outcome : char { indexed, skipped, failed, killed_host };
  void send_runs(std::size_t which, const std::vector<IndexChange>& batch,
                 const std::vector<std::vector<float>>& vectors,
                 const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                 const std::map<store::CubeId, Retrievers>& skip,
                 std::vector<Outcome>* outcomes) const;
  // Forgets a removed cube's collections and their snapshots. Indexer thread.
  void drop_now(store::CubeId cube);
  // After a flush: the items of a small run whose indexing killed a
  // retriever's host are left out of that retriever (a rebuild that sent
  // them again would kill it again, until quarantine); an item indexed
  // since is let back in. Writer thread.
  void note_left_out(const std::vector<IndexChange>& batch,
                     const std::vector<std::vector<float>>& vectors,
                     const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                     const std::array<std::vector<Outcome>, kStoring>& outcomes);
  // Items left out of each storing retriever, per left_out_.
  using LeftOut = std::array<std::set<std::uint64_t>, kStoring>;
  LeftOut left_out_of(store::CubeId cube) const;
  // Rebuilds and catch-ups send items in batches this large: enough for the
  // dense retriever's parallel bulk insertion, and one embedder call each.
  static constexpr std::size_t kSendBatch = 2048;
  // Sends live `batch` to the retrievers in `targets` (version 0), embedded
  // for the dense one, except what `left_out` names; what the embedder or
  // a retriever fails on alone is left out too (embed_or_leave_out,
  // index_or_leave_out). Errors: the embedder's or a retriever's.
  Status send_live(const store::Cube& cube, Retrievers targets, std::span<const store::Item> batch,
                   const LeftOut& left_out);
  // Rebuild's index call of `items` (version 0) to storing()[which]; when
  // the plugin refuses the batch without dying, sends the items one at a
  // time and leaves out those it refuses, unless it refuses them all.
  Status index_or_leave_out(std::size_t which, const store::Cube& cube,
                            std::span<const IndexedItem> items);
  // The longest run whose items are suspected when its host dies: a larger
  // one is more likely an outside kill (the OOM killer) than one bad item.
  static constexpr std::size_t kMaxLeftOutRun = 16;

  mutable std::mutex mutex_;
  std::mutex save_mutex_;  // one save_changed() at a time (timer vs shutdown)
  std::map<store::CubeId, CubeState> cubes_;
  std::map<store::CubeId, Unbuilt> unbuilt_;
  // unbuilt_.size(), read without the lock: the writer's flush and every
  // search skip the lock while nothing is unbuilt, the usual case.
  std::atomic<std::size_t> unbuilt_count_{0};
  // Each storing retriever's incarnation() when last looked at: a change
  // means its host died and its collections are gone.
  std::array<std::atomic<std::uint64_t>, kStoring> seen_{};
  // Per storing retriever: items left out of a cube's collection because
  // indexing them killed the host (note_left_out) or the plugin refused
  // them alone in a rebuild (index_or_leave_out). Kept until memosd
  // restarts: its start rebuild sends them again, and a plugin that still
  // dies on them is then quarantined, loudly.
  std::array<std::map<store::CubeId, std::set<std::uint64_t>>, kStoring> left_out_;
  std::atomic<std::size_t> left_out_count_{0};
  // Set by stop(): the drain's index requests say noWait.
  std::atomic<bool> stopping_{false};
  // set_sharing() takes it alone; adopt_shared() and share() while they
  // use sharing_.
  mutable std::shared_mutex sharing_mutex_;
  SharedIndexes* sharing_ = nullptr;
  bool deferring_ = false;  // guarded by mutex_
  // A deferred cube's Unbuilt::retry_after: never, until release_deferred().
  static constexpr std::chrono::steady_clock::time_point kDeferred =
      std::chrono::steady_clock::time_point::max();
  std::shared_ptr<PluginEmbedder> embedder_;
  std::string model_;
  std::shared_ptr<PluginRetriever> dense_;
  std::shared_ptr<PluginRetriever> lexical_;
  std::shared_ptr<PluginRetriever> fuser_;
  // The lexical retriever's side of each batch, while the indexer thread
  // embeds and feeds the dense one. Last: its thread goes first.
  SerialLane lexical_lane_;
};

}  // namespace memos::kernel
