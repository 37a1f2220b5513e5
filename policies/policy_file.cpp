#include "policies/policy_file.h"

#include <sys/stat.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "policies/policy_parser.h"

namespace memos::policies {
namespace {

using namespace file_parse;

// The peers a policy names, before they are resolved.
struct Peers {
  std::vector<std::uint32_t> uids;
  const toml::node* uids_node = nullptr;
  std::vector<std::string> users;
  const toml::node* users_node = nullptr;
  std::vector<std::string> groups;
  const toml::node* groups_node = nullptr;
  const toml::node* owner_node = nullptr;
};

void read_rate(Parser& p, const toml::table& rates, const char* rate_key, const char* burst_key,
               double per, std::optional<Rate>* out) {
  const toml::node* rate_node = rates.get(rate_key);
  const toml::node* burst_node = rates.get(burst_key);
  std::string prefix = "rates.";
  if (!rate_node) {
    if (burst_node) p.error(burst_node->source(), prefix + burst_key + " needs " + rate_key);
    return;
  }
  auto rate = p.number(prefix + rate_key, *rate_node, 0.001, 1e9);
  if (!rate) return;
  Rate r;
  r.per_second = *rate / per;
  // Without a burst, a second's worth (a minute's for chats), at least one.
  r.burst = std::max(1.0, std::ceil(*rate));
  if (burst_node) {
    auto burst = p.integer(prefix + burst_key, *burst_node, 1, kMaxCount);
    if (!burst) return;
    r.burst = static_cast<double>(*burst);
  }
  *out = r;
}

void read_tiers(Parser& p, const toml::node& node, Tiers* out) {
  auto names = p.names("use.tiers", node);
  if (!names) return;
  Tiers t{false, false, false};
  const toml::array& a = *node.as_array();
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::string n = a[i].value_or(std::string());
    if (n == "plaintext") {
      t.plaintext = true;
    } else if (n == "activation") {
      t.activation = true;
    } else if (n == "parametric") {
      t.parametric = true;
    } else {
      p.error(a[i].source(),
              "use.tiers: unknown tier '" + n + "' (plaintext, activation or parametric)");
    }
  }
  *out = t;
}

void read_use(Parser& p, const toml::table& use, TenantPolicy* out) {
  for (auto& [k, v] : use) {
    std::string key(k.str());
    std::string full = "use." + key;
    if (key == "tiers") {
      read_tiers(p, v, &out->tiers);
    } else if (key == "retrievers") {
      out->retrievers = p.names(full, v);
    } else if (key == "embedders") {
      out->embedders = p.names(full, v);
    } else if (key == "executors") {
      out->executors = p.names(full, v);
    } else if (key == "routers") {
      out->routers = p.names(full, v);
    } else if (key == "executor_model") {
      out->executor_model = p.string(full, v, kMaxPathBytes);
    } else if (key == "executor_device") {
      std::optional<std::string> device = p.string(full, v, 8);
      if (device && *device != "cpu" && *device != "gpu") {
        p.error(v.source(), full + ": must be \"cpu\" or \"gpu\"");
      } else {
        out->executor_device = std::move(device);
      }
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

// A table of one bound, `max_mb` ([activation], [parametric]).
void read_mb_table(Parser& p, const std::string& table_name, const toml::table& table,
                   std::optional<std::uint64_t>* out) {
  for (auto& [k, v] : table) {
    std::string full = table_name + "." + std::string(k.str());
    if (k.str() == "max_mb") {
      if (auto n = p.integer(full, v, 0, kMaxCount)) *out = static_cast<std::uint64_t>(*n);
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

// [parametric]: max_mb, the adapters a chat runs with by default, and when
// the scheduler distils a cube's stable memories.
void read_parametric(Parser& p, const toml::table& table, TenantPolicy* out) {
  for (auto& [k, v] : table) {
    std::string full = "parametric." + std::string(k.str());
    if (k.str() == "max_mb") {
      if (auto n = p.integer(full, v, 0, kMaxCount))
        out->parametric_max_mb = static_cast<std::uint64_t>(*n);
    } else if (k.str() == "adapters") {
      auto texts = p.array<std::string>(
          full, v, 8,
          [&p](const std::string& key, const toml::node& n) -> std::optional<std::string> {
            return p.string(key, n, 128);
          });
      if (!texts) continue;
      out->default_adapters.clear();
      for (const auto& t : *texts) {
        std::string why;
        auto choice = parse_adapter_choice(t, &why);
        if (!choice) {
          p.error(v.source(), full + ": " + why);
          break;
        }
        out->default_adapters.push_back(std::move(*choice));
      }
    } else if (k.str() == "distill_after") {
      if (auto n = p.integer(full, v, 1, 10000))
        out->distill_after = static_cast<std::uint64_t>(*n);
    } else if (k.str() == "stable_after_s") {
      if (auto n = p.integer(full, v, 0, kTenYears))
        out->stable_after_s = static_cast<std::uint64_t>(*n);
    } else if (k.str() == "distill_name") {
      auto name = p.string(full, v, 64);
      if (!name) continue;
      std::string why;
      // A name as paramAdd takes it: what a chat's --adapter names.
      if (name->find(':') != std::string::npos || !parse_adapter_choice(*name, &why)) {
        p.error(v.source(), full + ": '" + *name + "' is not an adapter name");
        continue;
      }
      out->distill_name = *name;
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

void read_retention(Parser& p, const toml::table& table, TenantPolicy* out) {
  for (auto& [k, v] : table) {
    std::string full = "retention." + std::string(k.str());
    if (k.str() == "ttl_s") {
      if (auto n = p.integer(full, v, 1, kTenYears)) {
        out->retention_ttl_s = static_cast<std::uint64_t>(*n);
      }
    } else if (k.str() == "purge_delay_s") {
      if (auto n = p.integer(full, v, 0, kTenYears)) {
        out->retention_purge_delay_s = static_cast<std::uint64_t>(*n);
      }
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

void read_router(Parser& p, const toml::table& table, RouterBudget* out) {
  for (auto& [k, v] : table) {
    const std::string_view key = k.str();
    std::string full = "router." + std::string(key);
    if (key == "tokens_per_day") {
      if (auto n = p.integer(full, v, 0, kMaxRouterTokensPerDay))
        out->tokens_per_day = static_cast<std::uint64_t>(*n);
    } else if (key == "ms_per_query") {
      out->ms_per_query = p.number(full, v, 0.001, 3600000);
    } else if (key == "lambda") {
      out->lambda = p.number(full, v, 0, 100);
    } else if (key == "default_tier") {
      if (auto s = p.string(full, v, 8)) {
        if (*s == "low" || *s == "mid" || *s == "high") {
          out->default_tier = *s;
        } else {
          p.error(v.source(), full + ": '" + *s + "' is not low, mid or high");
        }
      }
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

void read_scheduler(Parser& p, const toml::table& table, SchedulerOverrides* out) {
  namespace limits = scheduler_limits;
  for (auto& [k, v] : table) {
    const std::string_view key = k.str();
    std::string full = "scheduler." + std::string(key);
    if (key == "enabled") {
      out->enabled = p.boolean(full, v);
    } else if (key == "working_set_tokens") {
      if (auto n = p.integer(full, v, 0, limits::kMaxWorkingSetTokens)) {
        out->working_set_tokens = static_cast<std::uint32_t>(*n);
      }
    } else if (key == "strength_gain") {
      out->strength_gain = p.number(full, v, 0, limits::kMaxStrengthGain);
    } else if (key == "search_recall_weight") {
      out->search_recall_weight = p.number(full, v, 0, 1);
    } else if (key == "time_unit") {
      if (auto s = p.string(full, v, 16)) {
        out->time_unit_s = parse_time_unit(*s);
        if (!out->time_unit_s) {
          p.error(v.source(), full + ": '" + *s + "' is not seconds, minutes, hours or days");
        }
      }
    } else if (key == "forgetting") {
      if (auto s = p.string(full, v, 16)) {
        out->forgetting = parse_forgetting(*s);
        if (!out->forgetting) p.error(v.source(), full + ": '" + *s + "' is not off or archive");
      }
    } else if (key == "archive_below") {
      // 0 would never archive and 1 would archive everything: both are
      // better said with forgetting = "off".
      out->archive_below = p.number(full, v, 0.0001, 0.9999);
    } else if (key == "archive_after_s") {
      if (auto n = p.integer(full, v, 0, limits::kMaxArchiveAfterS)) {
        out->archive_after_s = static_cast<std::uint64_t>(*n);
      }
    } else {
      p.error(k.source(), "unknown key '" + full + "'");
    }
  }
}

void read_rates(Parser& p, const toml::table& table, TenantPolicy* out) {
  static const char* const known[] = {"writes_per_s",   "writes_burst",  "searches_per_s",
                                      "searches_burst", "chats_per_min", "chats_burst"};
  for (auto& [k, v] : table) {
    if (std::find(std::begin(known), std::end(known), k.str()) == std::end(known)) {
      p.error(k.source(), "unknown key 'rates." + std::string(k.str()) + "'");
    }
  }
  read_rate(p, table, "writes_per_s", "writes_burst", 1, &out->writes);
  read_rate(p, table, "searches_per_s", "searches_burst", 1, &out->searches);
  read_rate(p, table, "chats_per_min", "chats_burst", 60, &out->chats);
}

std::optional<std::uint64_t> bound(Parser& p, const std::string& key, const toml::node& node) {
  auto n = p.integer(key, node, 0, kMaxCount);
  if (!n) return std::nullopt;
  return static_cast<std::uint64_t>(*n);
}

const toml::table* table_or_error(Parser& p, const std::string& key, const toml::node& node) {
  const toml::table* t = node.as_table();
  if (!t) p.error(node.source(), key + ": expected a table ([" + key + "])");
  return t;
}

void read_top_level(Parser& p, const toml::table& root, TenantPolicy* out, Peers* peers) {
  for (auto& [k, v] : root) {
    std::string key(k.str());
    if (key == "tenant") {
      if (auto s = p.string(key, v, 64)) {
        if (!valid_tenant_name(*s)) {
          p.error(v.source(), "tenant: '" + *s +
                                  "' is not a tenant name (1 to 64 of A-Z a-z 0-9 . _ -, "
                                  "not starting with . or -)");
        } else {
          out->tenant = *s;
        }
      }
    } else if (key == "allow") {
      if (auto b = p.boolean(key, v)) out->allow = *b;
    } else if (key == "role") {
      auto s = v.value_exact<std::string>();
      if (s && *s == "member") {
        out->role = Role::member;
      } else if (s && *s == "admin") {
        out->role = Role::admin;
      } else {
        p.error(v.source(), "role: expected \"member\" or \"admin\"");
      }
    } else if (key == "uids") {
      peers->uids_node = &v;
      auto uids = p.array<std::uint32_t>(
          key, v, kMaxUids, [&p](const std::string& k2, const toml::node& n) {
            auto i = p.integer(k2, n, 0, kMaxU32 - 1);  // (uid_t)-1 is "no uid"
            return i ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(*i)) : std::nullopt;
          });
      if (uids) peers->uids = std::move(*uids);
    } else if (key == "users") {
      peers->users_node = &v;
      if (auto n = p.names(key, v)) peers->users = std::move(*n);
    } else if (key == "groups") {
      peers->groups_node = &v;
      if (auto n = p.names(key, v)) peers->groups = std::move(*n);
    } else if (key == "owner") {
      peers->owner_node = &v;
    } else if (key == "weight") {
      if (auto n = p.integer(key, v, 1, 10000)) out->weight = static_cast<std::uint32_t>(*n);
    } else if (key == "max_inflight") {
      if (auto n = p.integer(key, v, 1, 1000000)) {
        out->max_inflight = static_cast<std::uint32_t>(*n);
      }
    } else if (key == "max_cubes") {
      out->max_cubes = bound(p, key, v);
    } else if (key == "max_items") {
      out->max_items = bound(p, key, v);
    } else if (key == "max_item_bytes") {
      out->max_item_bytes = bound(p, key, v);
    } else if (key == "max_plaintext_mb") {
      out->max_plaintext_mb = bound(p, key, v);
    } else if (key == "max_blob_mb") {
      out->max_blob_mb = bound(p, key, v);
    } else if (key == "activation") {
      if (auto* t = table_or_error(p, key, v)) read_mb_table(p, key, *t, &out->activation_max_mb);
    } else if (key == "parametric") {
      if (auto* t = table_or_error(p, key, v)) read_parametric(p, *t, out);
    } else if (key == "rates") {
      if (auto* t = table_or_error(p, key, v)) read_rates(p, *t, out);
    } else if (key == "use") {
      if (auto* t = table_or_error(p, key, v)) read_use(p, *t, out);
    } else if (key == "retention") {
      if (auto* t = table_or_error(p, key, v)) read_retention(p, *t, out);
    } else if (key == "scheduler") {
      if (auto* t = table_or_error(p, key, v)) read_scheduler(p, *t, &out->scheduler);
    } else if (key == "router") {
      if (auto* t = table_or_error(p, key, v)) read_router(p, *t, &out->router);
    } else {
      p.error(k.source(), "unknown key '" + key + "'");
    }
  }
}

// uids, users and groups as one sorted list of uids; and the owner.
void resolve_peers(Parser& p, const Peers& peers, TenantPolicy* out) {
  std::vector<std::uint32_t> uids = peers.uids;
  const toml::array* users = peers.users_node ? peers.users_node->as_array() : nullptr;
  for (std::size_t i = 0; users && i < users->size(); ++i) {
    std::string name = (*users)[i].value_or(std::string());
    std::string why;
    if (auto uid = p.users().user(name, &why)) {
      uids.push_back(*uid);
    } else {
      p.error((*users)[i].source(),
              "users: no user '" + name + "'" + (why.empty() ? "" : " (" + why + ")"));
    }
  }
  const toml::array* groups = peers.groups_node ? peers.groups_node->as_array() : nullptr;
  for (std::size_t i = 0; groups && i < groups->size(); ++i) {
    std::string name = (*groups)[i].value_or(std::string());
    std::string why;
    if (auto members = p.users().group(name, &why)) {
      if (members->empty()) p.warn((*groups)[i].source(), "groups: '" + name + "' has no members");
      uids.insert(uids.end(), members->begin(), members->end());
    } else {
      p.error((*groups)[i].source(),
              "groups: no group '" + name + "'" + (why.empty() ? "" : " (" + why + ")"));
    }
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  out->uids = uids;

  if (const toml::node* owner = peers.owner_node) {
    std::optional<std::uint32_t> uid;
    if (auto i = owner->value_exact<std::int64_t>(); i && *i >= 0 && *i < kMaxU32) {
      uid = static_cast<std::uint32_t>(*i);
    } else if (auto s = owner->value_exact<std::string>()) {
      std::string why;
      uid = p.users().user(*s, &why);
      if (!uid) {
        p.error(owner->source(),
                "owner: no user '" + *s + "'" + (why.empty() ? "" : " (" + why + ")"));
        return;
      }
    } else {
      p.error(owner->source(), "owner: expected a user name or a uid");
      return;
    }
    if (!std::binary_search(uids.begin(), uids.end(), *uid)) {
      p.error(owner->source(),
              "owner: uid " + std::to_string(*uid) + " is not one of the peers this policy covers");
      return;
    }
    out->owner = uid;
  } else if (uids.size() == 1) {
    out->owner = uids.front();
  } else if (uids.size() > 1) {
    // Several uids share one tenant's memory: it is stored under one of
    // them, which the operator names, so that it cannot move when a group
    // gains or loses a member.
    p.error(toml::source_region{},
            "covers " + std::to_string(uids.size()) +
                " uids: name the one whose memory they share with owner = \"USER\" (or a uid)");
  }
}

}  // namespace

bool valid_tenant_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool parse_policy(std::string_view text, const std::string& path, const UserDirectory& users,
                  TenantPolicy* out, std::vector<Diagnostic>* diagnostics) {
  Parser p(path, users, diagnostics);
  *out = TenantPolicy{};
  out->file = path;
  std::string base = std::filesystem::path(path).filename().string();
  out->is_default = base == "default.toml";
  if (text.size() > kMaxPolicyFileBytes) {
    p.error({}, std::to_string(text.size()) + " bytes, larger than a policy file may be (1 MiB)");
    return false;
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    p.error(e.source(), std::string(e.description()));
    return false;
  }
  Peers peers;
  read_top_level(p, root, out, &peers);
  if (out->is_default) {
    for (const char* key : {"tenant", "uids", "users", "groups", "owner"}) {
      if (const toml::node* n = root.get(key)) {
        p.error(n->source(), std::string(key) +
                                 ": default.toml covers the peers no other file claims, each "
                                 "a tenant of its own; name peers in a file of their own");
      }
    }
    if (out->role == Role::admin) {
      p.error(root.get("role")->source(),
              "role: \"admin\" in default.toml would make every user an administrator");
    }
    out->tenant.clear();
  } else {
    if (out->tenant.empty()) {
      std::string stem = std::filesystem::path(path).stem().string();
      if (valid_tenant_name(stem)) {
        out->tenant = stem;
      } else if (!root.get("tenant")) {
        p.error({}, "the file name '" + base +
                        "' is not a tenant name: name the tenant with tenant = \"NAME\"");
      }
    }
    resolve_peers(p, peers, out);
  }
  return !p.failed();
}

bool read_policy_text(const std::string& path, std::string* text,
                      std::vector<Diagnostic>* diagnostics) {
  auto fail = [&](const std::string& message) {
    diagnostics->push_back({path, message, false});
    return false;
  };
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxPolicyFileBytes) {
    return fail(std::to_string(st.st_size) + " bytes, larger than a policy file may be (1 MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::strerror(errno));
  text->resize(kMaxPolicyFileBytes + 1);
  in.read(text->data(), static_cast<std::streamsize>(text->size()));
  text->resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return fail("read error");
  // Grown since stat(): refused as the larger file it now is.
  if (text->size() > kMaxPolicyFileBytes) return fail("larger than a policy file may be (1 MiB)");
  return true;
}

bool read_policy_file(const std::string& path, const UserDirectory& users, TenantPolicy* out,
                      std::vector<Diagnostic>* diagnostics) {
  std::string text;
  return read_policy_text(path, &text, diagnostics) &&
         parse_policy(text, path, users, out, diagnostics);
}

}  // namespace memos::policies
