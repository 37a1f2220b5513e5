// policy.h — what one tenant policy says: who the tenant is, whom it
// covers, what bounds it and what it may use (memos-policy(5) documents
// every key, its type, default and trade-off).
//
// A policy is a plain value, parsed from one TOML file (policy_file.h) and
// gathered with the others of its folder into a PolicySet (policy_set.h),
// which the daemon swaps whole on a reload. An absent bound is "no bound
// but the daemon's configuration": std::nullopt, never a magic 0 (a
// max_cubes of 0 is a real bound: no cube may be made).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policies/scheduler_settings.h"

namespace memos::policies {

enum class Role { member, admin };

// A token bucket: `rate` tokens a second (chats_per_min is stored per
// second too), holding at most `burst`.
struct Rate {
  double per_second = 0;
  double burst = 0;
};

// The tiers of memory a tenant may use (memos(7)).
struct Tiers {
  bool plaintext = true;
  bool activation = true;
  bool parametric = true;
};

// An adapter a chat runs with: a parametric item of the chat's cube, by
// name, at a scale (0: the item's own). Written "NAME" or "NAME:SCALE" in
// a policy's parametric.adapters and memctl's --adapter.
struct AdapterChoice {
  std::string name;
  float scale = 0;
  bool operator==(const AdapterChoice&) const = default;
};

// Parses "NAME[:SCALE]": NAME 1..64 of [A-Za-z0-9._-] not starting with '.'
// or '-', SCALE a finite number in [-16, 16], not 0. Errors: nullopt, with
// `why` saying what is wrong.
std::optional<AdapterChoice> parse_adapter_choice(std::string_view text, std::string* why);
std::string to_string(const AdapterChoice& choice);

// A policy's [router] keys (memos-policy(5)): what the router of budget
// "auto" may spend for the tenant; absent: no bound, memosd.conf's routing
// settings.
inline constexpr std::int64_t kMaxRouterTokensPerDay = std::int64_t{1} << 40;
struct RouterBudget {
  // Context tokens of the tenant's routed queries a UTC day; spent, budget
  // auto runs every module low, and fixed routes above low are refused.
  std::optional<std::uint64_t> tokens_per_day;
  // Routes slower than this (their measured mean) are not chosen.
  std::optional<double> ms_per_query;
  std::optional<double> lambda;             // over routing.lambda
  std::optional<std::string> default_tier;  // "low", "mid" or "high"; over routing.default_tier

  bool operator==(const RouterBudget&) const = default;
  bool empty() const { return !tokens_per_day && !ms_per_query && !lambda && !default_tier; }
};

struct TenantPolicy {
  // Where it came from: the file, or "" for the built-in default (every
  // peer admitted, no bounds), used when the folder has no default.toml.
  std::string file;
  // The tenant's name: `tenant`, else the file's name without .toml.
  // Empty for the default policy, whose peers are each a tenant of their
  // own, named after their user.
  std::string tenant;
  bool is_default = false;  // default.toml or the built-in default
  bool allow = true;        // false: its peers are refused at connect
  Role role = Role::member;

  // The peers it covers, resolved at load from uids, users and groups
  // (sorted, no duplicates). Empty for the default policy.
  std::vector<std::uint32_t> uids;
  // The uid whose memory the tenant's peers share: every uid of the
  // tenant reads and writes the cubes stored under it. Set when the
  // policy covers exactly one uid, or named by `owner` (one of `uids`).
  std::optional<std::uint32_t> owner;

  std::uint32_t weight = 100;                 // fair scheduling share
  std::optional<std::uint32_t> max_inflight;  // requests in flight, all connections

  std::optional<std::uint64_t> max_cubes;
  std::optional<std::uint64_t> max_items;
  std::optional<std::uint64_t> max_item_bytes;
  std::optional<std::uint64_t> max_plaintext_mb;
  std::optional<std::uint64_t> max_blob_mb;
  std::optional<std::uint64_t> activation_max_mb;
  std::optional<std::uint64_t> parametric_max_mb;
  // parametric.adapters: what a chat that names none runs with, of the
  // adapters its cube holds (a name the cube lacks is passed over).
  std::vector<AdapterChoice> default_adapters;
  // parametric.distill_after: when a cube holds this many stable memories
  // (active plaintext ones unchanged for parametric.stable_after_s) that
  // its adapter parametric.distill_name has not learned, the scheduler
  // distils them all into a new version of it. Unset: never.
  std::optional<std::uint64_t> distill_after;
  std::uint64_t stable_after_s = 3600;
  std::string distill_name = "memories";

  std::optional<Rate> writes;
  std::optional<Rate> searches;
  std::optional<Rate> chats;

  Tiers tiers;
  // Plugins by name; nullopt: any the daemon loads.
  std::optional<std::vector<std::string>> retrievers;
  std::optional<std::vector<std::string>> embedders;
  std::optional<std::vector<std::string>> executors;
  std::optional<std::vector<std::string>> routers;
  std::optional<std::string> executor_model;
  // "cpu" or "gpu": the device the tenant's chats and states may run on;
  // an executor on the other is refused to it. nullopt: either.
  std::optional<std::string> executor_device;

  std::optional<std::uint64_t> retention_ttl_s;
  std::optional<std::uint64_t> retention_purge_delay_s;

  // [scheduler]: overrides of memosd.conf's scheduler settings.
  SchedulerOverrides scheduler;
  // [router]: what budget "auto" may spend.
  RouterBudget router;
};

const char* to_string(Role role);

// The policy as TOML, every key with its effective value; absent bounds are
// listed in a comment ("memctl policy show").
std::string to_toml(const TenantPolicy& policy);

}  // namespace memos::policies
