#include "policies/policy.h"

#include <toml++/toml.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace memos::policies {
namespace {

toml::array strings(const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  return a;
}

void put_bound(toml::table* t, const char* key, const std::optional<std::uint64_t>& v,
               std::vector<std::string>* unbounded, const std::string& shown) {
  if (v) {
    t->insert_or_assign(key, static_cast<std::int64_t>(*v));
  } else {
    unbounded->push_back(shown);
  }
}

void put_rate(toml::table* t, const char* rate_key, const char* burst_key, double per,
              const std::optional<Rate>& r, std::vector<std::string>* unbounded) {
  if (!r) {
    unbounded->push_back(std::string("rates.") + rate_key);
    return;
  }
  t->insert_or_assign(rate_key, r->per_second * per);
  t->insert_or_assign(burst_key, static_cast<std::int64_t>(r->burst));
}

// The keys the policy sets; memosd.conf's apply to the others.
toml::table scheduler_table(const SchedulerOverrides& o) {
  toml::table t;
  if (o.enabled) t.insert_or_assign("enabled", *o.enabled);
  if (o.working_set_tokens) {
    t.insert_or_assign("working_set_tokens", static_cast<std::int64_t>(*o.working_set_tokens));
  }
  if (o.strength_gain) t.insert_or_assign("strength_gain", *o.strength_gain);
  if (o.search_recall_weight) t.insert_or_assign("search_recall_weight", *o.search_recall_weight);
  if (o.time_unit_s) t.insert_or_assign("time_unit", time_unit_name(*o.time_unit_s));
  if (o.forgetting) t.insert_or_assign("forgetting", std::string(to_string(*o.forgetting)));
  if (o.archive_below) t.insert_or_assign("archive_below", *o.archive_below);
  if (o.archive_after_s) {
    t.insert_or_assign("archive_after_s", static_cast<std::int64_t>(*o.archive_after_s));
  }
  return t;
}

toml::table router_table(const RouterBudget& b) {
  toml::table t;
  if (b.tokens_per_day)
    t.insert_or_assign("tokens_per_day", static_cast<std::int64_t>(*b.tokens_per_day));
  if (b.ms_per_query) t.insert_or_assign("ms_per_query", *b.ms_per_query);
  if (b.lambda) t.insert_or_assign("lambda", *b.lambda);
  if (b.default_tier) t.insert_or_assign("default_tier", *b.default_tier);
  return t;
}

}  // namespace

const char* to_string(Role role) {
  return role == Role::admin ? "admin" : "member";
}

std::string to_toml(const TenantPolicy& p) {
  toml::table root;
  std::vector<std::string> unbounded;
  if (!p.tenant.empty()) root.insert_or_assign("tenant", p.tenant);
  root.insert_or_assign("allow", p.allow);
  root.insert_or_assign("role", std::string(to_string(p.role)));
  if (!p.is_default) {
    toml::array uids;
    for (auto uid : p.uids) uids.push_back(static_cast<std::int64_t>(uid));
    root.insert_or_assign("uids", std::move(uids));
    if (p.owner) root.insert_or_assign("owner", static_cast<std::int64_t>(*p.owner));
  }
  root.insert_or_assign("weight", static_cast<std::int64_t>(p.weight));
  if (p.max_inflight) {
    root.insert_or_assign("max_inflight", static_cast<std::int64_t>(*p.max_inflight));
  } else {
    unbounded.push_back("max_inflight");
  }
  put_bound(&root, "max_cubes", p.max_cubes, &unbounded, "max_cubes");
  put_bound(&root, "max_items", p.max_items, &unbounded, "max_items");
  put_bound(&root, "max_item_bytes", p.max_item_bytes, &unbounded, "max_item_bytes");
  put_bound(&root, "max_plaintext_mb", p.max_plaintext_mb, &unbounded, "max_plaintext_mb");
  put_bound(&root, "max_blob_mb", p.max_blob_mb, &unbounded, "max_blob_mb");
  toml::table activation, parametric, rates, use, retention;
  put_bound(&activation, "max_mb", p.activation_max_mb, &unbounded, "activation.max_mb");
  put_bound(&parametric, "max_mb", p.parametric_max_mb, &unbounded, "parametric.max_mb");
  {
    std::vector<std::string> adapters;
    for (const auto& a : p.default_adapters) adapters.push_back(to_string(a));
    parametric.insert_or_assign("adapters", strings(adapters));
  }
  if (p.distill_after) {
    parametric.insert_or_assign("distill_after", static_cast<std::int64_t>(*p.distill_after));
  }
  parametric.insert_or_assign("stable_after_s", static_cast<std::int64_t>(p.stable_after_s));
  parametric.insert_or_assign("distill_name", p.distill_name);
  put_rate(&rates, "writes_per_s", "writes_burst", 1, p.writes, &unbounded);
  put_rate(&rates, "searches_per_s", "searches_burst", 1, p.searches, &unbounded);
  put_rate(&rates, "chats_per_min", "chats_burst", 60, p.chats, &unbounded);
  std::vector<std::string> tiers;
  if (p.tiers.plaintext) tiers.push_back("plaintext");
  if (p.tiers.activation) tiers.push_back("activation");
  if (p.tiers.parametric) tiers.push_back("parametric");
  use.insert_or_assign("tiers", strings(tiers));
  std::vector<std::string> any;
  auto put_names = [&](const char* key, const std::optional<std::vector<std::string>>& v) {
    if (v) {
      use.insert_or_assign(key, strings(*v));
    } else {
      any.push_back(std::string("use.") + key);
    }
  };
  put_names("retrievers", p.retrievers);
  put_names("embedders", p.embedders);
  put_names("executors", p.executors);
  put_names("routers", p.routers);
  if (p.executor_model) {
    use.insert_or_assign("executor_model", *p.executor_model);
  } else {
    any.push_back("use.executor_model");
  }
  if (p.executor_device) {
    use.insert_or_assign("executor_device", *p.executor_device);
  } else {
    any.push_back("use.executor_device");
  }
  if (p.retention_ttl_s) {
    retention.insert_or_assign("ttl_s", static_cast<std::int64_t>(*p.retention_ttl_s));
  }
  if (p.retention_purge_delay_s) {
    retention.insert_or_assign("purge_delay_s",
                               static_cast<std::int64_t>(*p.retention_purge_delay_s));
  }
  if (!activation.empty()) root.insert_or_assign("activation", std::move(activation));
  if (!parametric.empty()) root.insert_or_assign("parametric", std::move(parametric));
  if (!rates.empty()) root.insert_or_assign("rates", std::move(rates));
  root.insert_or_assign("use", std::move(use));
  if (!retention.empty()) root.insert_or_assign("retention", std::move(retention));
  if (toml::table scheduler = scheduler_table(p.scheduler); !scheduler.empty())
    root.insert_or_assign("scheduler", std::move(scheduler));
  if (toml::table router = router_table(p.router); !router.empty())
    root.insert_or_assign("router", std::move(router));

  std::ostringstream out;
  out << "# " << (p.file.empty() ? std::string("built-in default policy") : p.file) << "\n";
  if (!unbounded.empty()) {
    out << "# no bound but memosd's configuration:";
    for (const auto& k : unbounded) out << " " << k;
    out << "\n";
  }
  if (!any.empty()) {
    out << "# any the daemon loads:";
    for (const auto& k : any) out << " " << k;
    out << "\n";
  }
  out << toml::toml_formatter{root, toml::format_flags::allow_unicode_strings} << "\n";
  return out.str();
}

std::optional<AdapterChoice> parse_adapter_choice(std::string_view text, std::string* why) {
  AdapterChoice out;
  const std::size_t colon = text.rfind(':');
  std::string_view name = text.substr(0, colon);
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-' ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          std::string_view::npos) {
    *why = "'" + std::string(text.substr(0, 80)) +
           "' is not an adapter name (1..64 of A-Z a-z 0-9 . _ -, not starting with . or -)";
    return std::nullopt;
  }
  out.name = std::string(name);
  if (colon != std::string_view::npos) {
    const std::string scale(text.substr(colon + 1));
    char* end = nullptr;
    const float v = scale.empty() ? 0 : std::strtof(scale.c_str(), &end);
    if (scale.empty() || end != scale.c_str() + scale.size() || !std::isfinite(v) || v == 0 ||
        std::fabs(v) > 16) {
      *why = "'" + scale.substr(0, 32) + "' is not a scale (a number in [-16, 16], not 0)";
      return std::nullopt;
    }
    out.scale = v;
  }
  return out;
}

std::string to_string(const AdapterChoice& choice) {
  if (choice.scale == 0) return choice.name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(choice.scale));
  return choice.name + ":" + buf;
}

}  // namespace memos::policies
