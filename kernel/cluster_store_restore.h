// cluster_store_restore.h — a cluster node's start, before anything reads
// its store: whether the store can follow the log from where it stands, and
// if not, the cluster's newest store snapshot in its place
// (docs/scale-out.md, "Log compaction"; cluster_store_snapshots.h).
//
// A store can follow the log when it holds, on every shard, at least the
// log's floor: the records below it may have been removed. One that does
// not (a new node joining a compacted cluster, a node down longer than the
// log's retention) takes the newest snapshot, which covers every floor, and
// applies the log's tail from the snapshot's positions as a node restarting
// applies it from its own. Its own store is replaced whole: every row of it
// is a view of the log, which the snapshot holds as far as the store did.
//
// The replacement survives a crash at any point: the snapshot is fetched to
// <store>.incoming and opened there as a store (its schema, its shard count,
// its positions against the floor), then <store> is renamed
// <store>.replaced, <store>.incoming renamed <store>, the parent folder
// synced and <store>.replaced removed. tidy_store_swap(), at every start
// before the store opens, finishes or undoes what a crash interrupted.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cluster/etcd_client.h"
#include "cluster/nats_connection.h"
#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel {

// Removes a <store_dir>.incoming a crash left; puts <store_dir>.replaced
// back where <store_dir> is missing (the crash came between the renames),
// else removes it. Errors: internal (a rename or removal failed).
Status tidy_store_swap(const std::string& store_dir);

// Reads the log's floor from `etcd` (waiting up to `timeout` for it to
// answer) and, if `*store` holds less than it on some shard, replaces it by
// the newest store snapshot, fetched through `nats` and opened again with
// `options`; `*restored` says whether it did. `staging_dir` holds the fetch
// on its way. A store at or past the floor everywhere is left as it is, and
// NATS is not asked.
// Errors: unavailable (an engine did not answer in time), internal (etcd's
// keys are not what a node writes, or the newest snapshot is behind the
// floor), corrupt (the fetched file failed its digest), and the store's
// errors opening the snapshot (a newer schema, another shard count): the
// node cannot follow the log, so it must not start.
Status restore_store_if_behind(const ClusterConfig& config, cluster::NatsConnection& nats,
                               cluster::EtcdClient& etcd, const std::string& store_dir,
                               const std::string& staging_dir, const store::StoreOptions& options,
                               std::chrono::milliseconds timeout,
                               std::unique_ptr<store::Store>* store, bool* restored);

}  // namespace memos::kernel
