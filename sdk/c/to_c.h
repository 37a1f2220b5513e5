// sdk/c/to_c.h — the C++ SDK's results as the C API's structs, written
// into the result's Arena (sdk/c/arena.h).
//
// One fill() per result type; a result handed to the caller is
// to_c<CType>(value): a new Arena whose root is the filled CType. Each
// throws std::bad_alloc only.
#pragma once

#include <string>
#include <vector>

#include "memos/client.h"
#include "memos/memos.h"
#include "sdk/c/arena.h"

namespace memos::c_api {

void fill(Arena& a, memos_item& out, const Item& in);
void fill(Arena& a, memos_items& out, const std::vector<Item>& in);
void fill(Arena& a, memos_item_diff& out, const ItemDiff& in);
void fill(Arena& a, memos_cube& out, const Cube& in);
void fill(Arena& a, memos_cubes& out, const std::vector<Cube>& in);
void fill(Arena& a, memos_snapshot& out, const Snapshot& in);
void fill(Arena& a, memos_snapshots& out, const std::vector<Snapshot>& in);
void fill(Arena& a, memos_snapshot_changes& out, const std::vector<SnapshotChange>& in);
void fill(Arena& a, memos_hits& out, const std::vector<Hit>& in);
void fill(Arena& a, memos_routed_search& out, const RoutedSearch& in);
void fill(Arena& a, memos_status& out, const Status& in);
void fill(Arena& a, memos_cluster_status& out, const ClusterStatus& in);
void fill(Arena& a, memos_str& out, const std::string& in);
void fill(Arena& a, memos_plugin_info& out, const PluginInfo& in);
void fill(Arena& a, memos_plugins& out, const std::vector<PluginInfo>& in);
void fill(Arena& a, memos_policy_info& out, const PolicyInfo& in);
void fill(Arena& a, memos_tenant_usage& out, const TenantUsage& in);
void fill(Arena& a, memos_job& out, const Job& in);
void fill(Arena& a, memos_jobs& out, const std::vector<Job>& in);
void fill(Arena& a, memos_activation& out, const Activation& in);
void fill(Arena& a, memos_activations& out, const std::vector<Activation>& in);
void fill(Arena& a, memos_kv_stats& out, const KvStats& in);
void fill(Arena& a, memos_chat_reply& out, const ChatReply& in);
void fill(Arena& a, memos_sched_pass& out, const SchedPass& in);
void fill(Arena& a, memos_sched_status& out, const SchedStatus& in);
void fill(Arena& a, memos_sched_decisions& out, const std::vector<SchedDecision>& in);
void fill(Arena& a, memos_explanation& out, const Explanation& in);

// A new result: an Arena whose root is `value` as a CType.
template <class CType, class T>
CType* to_c(const T& value) {
  Arena* arena = nullptr;
  CType* root = Arena::make_root<CType>(&arena);
  try {
    fill(*arena, *root, value);
  } catch (...) {
    memos_free(root);
    throw;
  }
  return root;
}

}  // namespace memos::c_api
