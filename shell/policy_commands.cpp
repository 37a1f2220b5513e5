// policy_commands.cpp — `policy check|show|reload`, `tenant usage`
// (policy_commands.h).
#include "shell/policy_commands.h"

#include <cstdio>
#include <vector>

#include "policies/policy_set.h"
#include "policies/user_directory.h"

namespace memos::shell {
namespace {

// Checks a file, or a folder as memosd would load it (without the
// ownership checks only memosd's uid can make: memosd --check-policy does
// those). Diagnostics go to stderr, one a line, as file:line:column.
int check(const std::string& path, const Output& out) {
  policies::SystemDirectory users;
  const auto result = policies::check_policy_path(path, users, std::nullopt);
  for (const auto& d : result.diagnostics) std::fprintf(stderr, "%s\n", d.text().c_str());
  if (out.json()) {
    Json j;
    j["path"] = path;
    j["ok"] = result.ok;
    j["tenants"] = result.tenants;
    j["diagnostics"] = Json::array();
    for (const auto& d : result.diagnostics) {
      j["diagnostics"].push_back(
          Json{{"where", d.where}, {"message", d.message}, {"warning", d.warning}});
    }
    std::printf("%s\n", json_text(j).c_str());
  } else if (result.ok) {
    std::printf("%s: ok (%zu tenant%s)\n", path.c_str(), result.tenants,
                result.tenants == 1 ? "" : "s");
  }
  return result.ok ? 0 : kExitRefused;
}

int print_policy(const memos::PolicyInfo& p, const Output& out) {
  if (out.json()) {
    Json j;
    j["tenant"] = p.tenant;
    j["file"] = p.file;
    j["folder"] = p.folder;
    j["tenants"] = p.tenants;
    j["admin"] = p.admin;
    j["stored_under"] = p.stored_under;
    j["policy"] = p.text;
    return out.emit(j);
  }
  std::printf("# tenant %s, memory stored under uid %u%s\n", p.tenant.c_str(), p.stored_under,
              p.admin ? ", an administrator" : "");
  std::printf("# policies: %s\n",
              p.folder.empty()
                  ? "none (the built-in default)"
                  : (p.folder + " (" + std::to_string(p.tenants) + " tenants)").c_str());
  std::fputs(p.text.c_str(), stdout);
  return 0;
}

std::string bytes_text(std::uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return buf;
}

int print_usage(const memos::TenantUsage& u, const Output& out) {
  if (out.json()) {
    Json j;
    j["tenant"] = u.tenant;
    j["stored_under"] = u.stored_under;
    j["cubes"] = u.cubes;
    j["items"] = u.items;
    j["text_bytes"] = u.text_bytes;
    j["activation_items"] = u.activation_items;
    j["activation_bytes"] = u.activation_bytes;
    j["param_bytes"] = u.param_bytes;
    j["router_tokens"] = u.router_tokens;
    j["bounds"] = Json::array();
    for (const auto& b : u.bounds) {
      j["bounds"].push_back(Json{{"name", b.name}, {"limit", b.limit}, {"used", b.used}});
    }
    return out.emit(j);
  }
  std::printf("tenant       %s (memory stored under uid %u)\n", u.tenant.c_str(), u.stored_under);
  std::printf("cubes        %llu\n", static_cast<unsigned long long>(u.cubes));
  std::printf("items        %llu, texts %s\n", static_cast<unsigned long long>(u.items),
              bytes_text(u.text_bytes).c_str());
  std::printf("activation   %llu states, %s\n", static_cast<unsigned long long>(u.activation_items),
              bytes_text(u.activation_bytes).c_str());
  std::printf("routing      %llu context tokens today (UTC)\n",
              static_cast<unsigned long long>(u.router_tokens));
  if (u.bounds.empty()) std::printf("bounds       none but memosd's configuration\n");
  for (const auto& b : u.bounds) {
    double pct = b.limit ? 100.0 * static_cast<double>(b.used) / static_cast<double>(b.limit) : 100;
    std::printf("bound        %s = %llu: %llu used (%.0f%%)\n", b.name.c_str(),
                static_cast<unsigned long long>(b.limit), static_cast<unsigned long long>(b.used),
                pct);
  }
  return 0;
}

}  // namespace

void add_policy_commands(CLI::App& app, PolicyArgs& a) {
  auto* policy = app.add_subcommand("policy", "tenant policies, memos-policy(5)");
  policy->require_subcommand(1);
  policy->add_subcommand("check", "check a policy file or folder here (no daemon needed)")
      ->add_option("PATH", a.path, "a policy file, or a folder of them")
      ->required();
  policy->add_subcommand("show", "a tenant's policy as memosd enforces it")
      ->add_option("TENANT", a.tenant, "another tenant (administrators; default: your own)");
  policy->add_subcommand("reload", "re-read memosd's policy folder (administrators)");
  auto* tenant = app.add_subcommand("tenant", "tenants: what they hold");
  tenant->require_subcommand(1);
  tenant->add_subcommand("usage", "what a tenant holds, against its policy's bounds")
      ->add_option("TENANT", a.tenant,
                   "another tenant, user or uid:N (administrators; default: your own)");
}

std::optional<int> run_local_policy_commands(CLI::App& app, const PolicyArgs& a,
                                             const Output& out) {
  CLI::App* policy = app.get_subcommand("policy");
  if (!policy->parsed() || !policy->got_subcommand("check")) return std::nullopt;
  return check(a.path, out);
}

std::optional<int> run_policy_commands(CLI::App& app, const PolicyArgs& a, memos::Client& client,
                                       const Output& out) {
  if (app.get_subcommand("tenant")->parsed()) {
    auto r = client.tenant_usage(a.tenant);
    if (!r) return out.refused(r.error(), a.tenant.empty() ? "" : "tenant '" + a.tenant + "'");
    return print_usage(r.value(), out);
  }
  CLI::App* policy = app.get_subcommand("policy");
  if (!policy->parsed()) return std::nullopt;
  auto r = policy->got_subcommand("reload") ? client.policy_reload() : client.policy_show(a.tenant);
  if (!r) {
    return out.refused(r.error(), a.tenant.empty() ? "" : "tenant '" + a.tenant + "'");
  }
  return print_policy(r.value(), out);
}

}  // namespace memos::shell
