// areas.h — the areas of requests, each in a file of its own, each adding
// its handlers to the dispatch table at start (RequestHandler's
// constructor). Stateless areas are functions over the shared Services;
// an area that keeps state across requests (archive import sessions) is an
// object that RequestHandler owns.
//
// Still to come, in an area of its own: router. The parametric tier's
// requests (params.h) keep uploads across requests, like archives.h.
#pragma once

#include "kernel/handlers/dispatch_table.h"
#include "kernel/services.h"

namespace memos::kernel {

// status, cubeCreate, cubeList, cubeShow, cubeRemove, cubeShare, cubeUnshare
// (handlers/cubes.cpp).
void add_cube_handlers(DispatchTable& table, const Services& services);
// add, get, update, remove, history, setState, rollback, diff (handlers/items.cpp).
void add_item_handlers(DispatchTable& table, const Services& services);
// search (handlers/search.cpp).
void add_search_handlers(DispatchTable& table, const Services& services);
// snapshotCreate, snapshotList, snapshotDiff (handlers/snapshots.cpp).
void add_snapshot_handlers(DispatchTable& table, const Services& services);
// pluginList, pluginInfo, pluginReload (handlers/plugins.cpp).
void add_plugin_handlers(DispatchTable& table, const Services& services);
// chat, kvPrefill (handlers/generation.cpp).
void add_generation_handlers(DispatchTable& table, const Services& services);
// kvList, kvRemove, kvStats (handlers/kv.cpp).
void add_kv_handlers(DispatchTable& table, const Services& services);
// policyShow, policyReload, tenantUsage (handlers/tenants.cpp).
void add_tenant_handlers(DispatchTable& table, const Services& services);
// schedStatus, schedLog, schedRun, explain (handlers/scheduler.cpp).
void add_scheduler_handlers(DispatchTable& table, const Services& services);

// metrics (metrics_report.h)
void add_metrics_handlers(DispatchTable& table, const Services& services);
// clusterStatus, clusterStepDown (handlers/cluster.cpp, cluster_node.h)
void add_cluster_handlers(DispatchTable& table, const Services& services);

}  // namespace memos::kernel
