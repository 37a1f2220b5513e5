// daemon_commands.cpp — `status`, `metrics`, `cluster status`, `cluster step-down` and the
// plugin commands (daemon_commands.h): their options, and how the daemon, its
// cluster and a plugin print.
#include "shell/daemon_commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

#include "shell/text_format.h"
#include "shell/time_args.h"

namespace memos::shell {
namespace {

Json plugin_json(const memos::PluginInfo& p) {
  auto pairs = [](const auto& list) {
    Json o = Json::object();
    for (const auto& e : list) o[e.key] = e.value;
    return o;
  };
  Json j;
  j["name"] = p.name;
  j["kinds"] = p.kinds;
  j["state"] = memos::to_string(p.state);
  j["detail"] = p.detail;
  j["health"] = p.health;
  j["isolated"] = p.isolated;
  j["library"] = p.library;
  j["manifest"] = p.manifest;
  j["capabilities"] = pairs(p.capabilities);
  j["settings"] = pairs(p.settings);
  return j;
}

int status(memos::Client& client, const Output& out) {
  auto r = client.status();
  if (!r) return out.refused(r.error());
  const auto& s = r.value();
  if (out.json()) {
    Json j;
    j["version"] = s.version;
    j["pid"] = s.pid;
    j["uptime_ms"] = s.uptime_ms;
    j["tenant_uid"] = s.tenant_uid;
    j["cubes"] = s.cubes;
    j["connections"] = s.connections;
    j["requests_served"] = s.requests_served;
    j["data_dir"] = s.data_dir;
    j["socket"] = s.socket;
    j["admin"] = s.admin;
    if (s.admin) {
      j["index_backlog"] = s.index_backlog;
      j["index_oldest_ms"] = json_number(s.index_oldest_ms);
      j["freshness_p50_ms"] = json_number(s.freshness_p50_ms);
      j["freshness_p99_ms"] = json_number(s.freshness_p99_ms);
    }
    j["scheduler_passes"] = s.scheduler_passes;
    j["scheduler_last_pass_ms"] = s.scheduler_last_pass_ms;
    j["scheduler_working_sets"] = s.scheduler_working_sets;
    j["scheduler_prefills_pending"] = s.scheduler_prefills_pending;
    j["executor_device"] = s.executor_device;
    j["executor_device_description"] = s.executor_device_description;
    j["executor_device_note"] = s.executor_device_note;
    j["executor_gpu_layers"] = s.executor_gpu_layers;
    j["executor_layers"] = s.executor_layers;
    j["executor_device_memory_bytes"] = s.executor_device_memory_bytes;
    j["plugins"] = Json::array();
    for (const auto& plugin : s.plugins) j["plugins"].push_back(plugin_json(plugin));
    return out.emit(j);
  }
  std::printf("memosd %s, pid %u, up %.1f s\n", s.version.c_str(), s.pid, s.uptime_ms / 1000.0);
  std::printf("tenant uid   %u (%u cubes)\n", s.tenant_uid, s.cubes);
  if (s.admin) {
    std::printf("connections  %u\n", s.connections);
    std::printf("requests     %llu\n", static_cast<unsigned long long>(s.requests_served));
    std::printf("data         %s\n", s.data_dir.c_str());
    std::string behind = std::to_string(s.index_backlog) + " write(s) behind";
    if (s.index_backlog != 0)
      behind += ", the oldest for " + std::to_string(std::llround(s.index_oldest_ms)) + " ms";
    std::printf("indexing     %s; commit to searchable p50 %.2f ms, p99 %.2f ms\n", behind.c_str(),
                s.freshness_p50_ms, s.freshness_p99_ms);
  } else {
    std::printf("(global counts and paths: root or memosd's uid only)\n");
  }
  std::printf("scheduler    %llu passes, the last %s; %u working sets, %u prefills pending\n",
              static_cast<unsigned long long>(s.scheduler_passes),
              s.scheduler_last_pass_ms ? format_time(s.scheduler_last_pass_ms).c_str() : "never",
              s.scheduler_working_sets, s.scheduler_prefills_pending);
  if (s.executor_device.empty()) {
    std::printf("executor     none\n");
  } else if (s.executor_device == "CPU") {
    std::printf("executor     on the CPU%s%s%s\n", s.executor_device_note.empty() ? "" : " (",
                s.executor_device_note.c_str(), s.executor_device_note.empty() ? "" : ")");
  } else {
    std::printf("executor     on %s (%s), %u of %u layers, %.0f MiB of device memory\n",
                s.executor_device.c_str(), s.executor_device_description.c_str(),
                s.executor_gpu_layers, s.executor_layers,
                s.executor_device_memory_bytes / 1048576.0);
  }
  std::printf("socket       %s\n", s.socket.c_str());
  for (const auto& plugin : s.plugins) {
    std::printf("plugin       %s: %s%s%s%s%s\n", plugin.name.c_str(),
                memos::to_string(plugin.state), plugin.detail.empty() ? "" : ", ",
                plugin.detail.c_str(), plugin.health.empty() ? "" : ", ", plugin.health.c_str());
  }
  return 0;
}

Json log_json(const memos::LogStatus& log) {
  Json j = {{"stream", log.stream},
            {"leader", log.leader},
            {"replicas", Json::array()},
            {"note", log.note}};
  for (const auto& r : log.replicas) {
    j["replicas"].push_back({{"server", r.server},
                             {"current", r.current},
                             {"offline", r.offline},
                             {"active_ms", r.active_ms},
                             {"lag", r.lag}});
  }
  if (!log.previous_leader.empty()) j["previous_leader"] = log.previous_leader;
  return j;
}

// One line: who leads the log (every append goes through it) and how each
// other replica keeps up, as the leader says.
void print_log(const memos::LogStatus& log) {
  if (!log.note.empty()) {
    std::printf("log %s: %s\n", log.stream.c_str(), log.note.c_str());
    return;
  }
  std::printf("log %s: leader %s", log.stream.c_str(),
              log.leader.empty() ? "(none: an election)" : log.leader.c_str());
  for (const auto& r : log.replicas) {
    std::printf("; %s %s, seen %.1f s ago", r.server.c_str(),
                r.offline   ? "OFFLINE"
                : r.current ? "current"
                            : ("BEHIND by " + std::to_string(r.lag)).c_str(),
                static_cast<double>(r.active_ms) / 1000);
  }
  std::printf("\n");
}

int cluster_step_down(memos::Client& client, const Output& out) {
  auto r = client.cluster_step_down();
  if (!r) return out.refused(r.error());
  const memos::LogStatus& log = r->log;
  if (out.json()) return out.emit(log_json(log));
  std::printf("the log's leader %s stepped down; %s leads it now\n", log.previous_leader.c_str(),
              log.leader.c_str());
  print_log(log);
  return 0;
}

int cluster_status(memos::Client& client, const Output& out) {
  auto r = client.cluster_status();
  if (!r) return out.refused(r.error());
  const memos::ClusterStatus& c = r.value();
  if (out.json()) {
    Json j;
    j["enabled"] = c.enabled;
    if (c.enabled) {
      j["name"] = c.name;
      j["node"] = c.node;
      j["replicas"] = c.replicas;
      j["lease_ms"] = c.lease_ms;
      j["shards"] = Json::array();
      for (const auto& s : c.shards) {
        j["shards"].push_back({{"shard", s.shard},
                               {"owner", s.owner},
                               {"last_sequence", s.last_sequence},
                               {"note", s.note}});
      }
      j["nodes"] = Json::array();
      for (const auto& n : c.nodes) {
        j["nodes"].push_back({{"node", n.node},
                              {"answered", n.answered},
                              {"note", n.note},
                              {"owner", n.owner},
                              {"position", n.position},
                              {"behind", n.behind},
                              {"appended", n.appended},
                              {"applied", n.applied},
                              {"policies", n.policies}});
      }
      j["bucket"] = {{"name", c.bucket.name},
                     {"blobs", c.bucket.blobs},
                     {"bytes", c.bucket.bytes},
                     {"note", c.bucket.note}};
      j["compaction"] = {{"snapshot_node", c.compaction.snapshot_node},
                         {"snapshot_time_ms", c.compaction.snapshot_time_ms},
                         {"snapshot_bytes", c.compaction.snapshot_bytes},
                         {"floor", c.compaction.floor},
                         {"note", c.compaction.note}};
      j["policies_differ"] = c.policies_differ;
      j["log"] = log_json(c.log);
    }
    return out.emit(j);
  }
  if (!c.enabled) {
    std::printf("memosd runs as a single node (no [cluster] in its memosd.conf)\n");
    return 0;
  }
  std::printf("cluster %s, as node %s sees it (log replicas: %u, lease: %u ms)\n", c.name.c_str(),
              c.node.c_str(), c.replicas, c.lease_ms);
  // FLOOR: the log keeps no record of the shard at or below it (compacted).
  std::printf("%-6s %-20s %12s %12s\n", "SHARD", "OWNER", "LAST RECORD", "FLOOR");
  for (const auto& s : c.shards) {
    const std::uint64_t floor =
        s.shard < c.compaction.floor.size() ? c.compaction.floor[s.shard] : 0;
    std::printf("%-6u %-20s %12llu %12llu%s%s\n", s.shard,
                s.owner.empty() ? "(none)" : s.owner.c_str(),
                static_cast<unsigned long long>(s.last_sequence),
                static_cast<unsigned long long>(floor), s.note.empty() ? "" : "  ", s.note.c_str());
  }
  // POLICIES: the first digits of the digest of the tenant policies each
  // node enforces; "?" from a node too old to say.
  std::printf("%-20s %-9s %12s %8s %10s %10s  %s\n", "NODE", "ROLE", "POSITION", "BEHIND",
              "APPENDED", "APPLIED", "POLICIES");
  for (const auto& n : c.nodes) {
    if (!n.answered) {
      std::printf("%-20s %-9s (not answering: %s)\n", n.node.c_str(), "?", n.note.c_str());
      continue;
    }
    std::printf("%-20s %-9s %12llu %8llu %10llu %10llu  %s\n", n.node.c_str(),
                n.owner ? "owner" : "follower", static_cast<unsigned long long>(n.position),
                static_cast<unsigned long long>(n.behind),
                static_cast<unsigned long long>(n.appended),
                static_cast<unsigned long long>(n.applied),
                n.policies.empty() ? "?" : n.policies.substr(0, 12).c_str());
    if (!n.note.empty()) std::printf("%-20s %s\n", "", n.note.c_str());
  }
  if (!c.bucket.note.empty()) {
    std::printf("bucket %s (KV states and adapters): %s\n", c.bucket.name.c_str(),
                c.bucket.note.c_str());
  } else {
    std::printf("bucket %s (KV states and adapters): %llu blob(s), %.1f MiB on each replica\n",
                c.bucket.name.c_str(), static_cast<unsigned long long>(c.bucket.blobs),
                static_cast<double>(c.bucket.bytes) / (1 << 20));
  }
  if (c.compaction.snapshot_node.empty()) {
    std::printf("store snapshot: none published yet\n");
  } else {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const double age_s =
        std::max<double>(
            0, static_cast<double>(now_ms) - static_cast<double>(c.compaction.snapshot_time_ms)) /
        1000;
    std::printf("store snapshot: by node %s, %.1f MiB, %.0f s old\n",
                c.compaction.snapshot_node.c_str(),
                static_cast<double>(c.compaction.snapshot_bytes) / (1 << 20), age_s);
  }
  if (!c.compaction.note.empty()) std::printf("compaction: %s\n", c.compaction.note.c_str());
  print_log(c.log);
  if (c.policies_differ) {
    std::printf(
        "policies: DIFFER between nodes; a request is bounded by those of the node that runs it: "
        "make every node's policy folder the same and reload it (memctl policy reload)\n");
  } else {
    std::printf("policies: the same on every node that answered\n");
  }
  return 0;
}

}  // namespace

void add_status_command(CLI::App& app) {
  app.add_subcommand("status", "show the daemon's status");
  app.add_subcommand("metrics",
                     "print memosd's metrics in the Prometheus text format (root or an admin)");
  auto* cluster = app.add_subcommand("cluster", "the cluster this memosd belongs to");
  cluster->require_subcommand(1);
  cluster->add_subcommand(
      "status",
      "each shard's owner and each node's role and lag behind the log (root or an admin)");
  cluster->add_subcommand("step-down",
                          "make the log's leader give its role to another replica, as when it "
                          "runs on a slow host or link (root or an admin)");
}

void add_plugin_commands(CLI::App& app, DaemonArgs& a) {
  auto* plugin = app.add_subcommand("plugin", "the daemon's plugins");
  plugin->require_subcommand(1);
  plugin->add_subcommand("ls", "list the plugins memosd found");
  plugin->add_subcommand("info", "one plugin's manifest and state")
      ->add_option("NAME", a.name, "the plugin (memctl plugin ls)")
      ->required();
  plugin->add_subcommand("reload", "re-read the plugin folders and reload a plugin")
      ->add_option("NAME", a.name, "the plugin (memctl plugin ls)")
      ->required();
}

std::optional<int> run_daemon_commands(CLI::App& app, const DaemonArgs& a, memos::Client& client,
                                       const Output& out) {
  if (app.got_subcommand("status")) return status(client, out);
  if (CLI::App* cluster = app.get_subcommand("cluster"); cluster->parsed()) {
    if (cluster->got_subcommand("step-down")) return cluster_step_down(client, out);
    return cluster_status(client, out);
  }
  if (app.got_subcommand("metrics")) {
    // The text exposition format is itself the machine-readable form:
    // --json does not change it.
    auto r = client.metrics();
    if (!r) return out.refused(r.error());
    std::fwrite(r->data(), 1, r->size(), stdout);
    return 0;
  }
  if (CLI::App* plugin_cmd = app.get_subcommand("plugin"); plugin_cmd->parsed()) {
    if (plugin_cmd->got_subcommand("ls")) {
      auto r = client.plugin_list();
      if (!r) return out.refused(r.error());
      if (out.json()) {
        Json j = Json::array();
        for (const auto& plugin : r.value()) j.push_back(plugin_json(plugin));
        return out.emit(j);
      }
      if (r->empty()) std::printf("no plugins\n");
      for (const auto& plugin : r.value()) {
        std::printf("%-24s %-10s %-22s %s\n", plugin.name.c_str(), memos::to_string(plugin.state),
                    join(plugin.kinds, ",").c_str(), plugin.isolated ? "isolated" : "in-process");
      }
      return 0;
    }
    auto r = plugin_cmd->got_subcommand("reload") ? client.plugin_reload(a.name)
                                                  : client.plugin_info(a.name);
    if (!r) return out.refused(r.error());
    if (out.json()) return out.emit(plugin_json(r.value()));
    const auto& p = r.value();
    std::printf("name       %s\n", p.name.c_str());
    std::printf("kinds      %s\n", join(p.kinds, ", ").c_str());
    std::printf("state      %s%s%s\n", memos::to_string(p.state), p.detail.empty() ? "" : ": ",
                p.detail.c_str());
    std::printf("isolation  %s\n", p.isolated ? "isolated" : "in-process");
    if (!p.health.empty()) std::printf("health     %s\n", p.health.c_str());
    std::printf("library    %s\n", p.library.c_str());
    std::printf("manifest   %s\n", p.manifest.c_str());
    for (const auto& c : p.capabilities)
      std::printf("capability %s = %s\n", c.key.c_str(), c.value.c_str());
    for (const auto& c : p.settings)
      std::printf("setting    %s = %s\n", c.key.c_str(), c.value.c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace memos::shell
