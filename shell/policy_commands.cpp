// policy_commands.cpp — `policy check|show|reload` (policy_commands.h).
#include "shell/policy_commands.h"

#include <sys/stat.h>

#include <cstdio>
#include <vector>

#include "policies/policy_file.h"
#include "policies/policy_set.h"
#include "policies/user_directory.h"

namespace memos::shell {
namespace {

// Checks a file, or a folder as memosd would load it (without the
// ownership checks only memosd's uid can make: memosd --check-policy does
// those). Diagnostics go to stderr, one a line, as file:line:column.
int check(const std::string& path, const Output& out) {
  policies::SystemDirectory users;
  std::vector<policies::Diagnostic> diagnostics;
  std::size_t tenants = 0;
  bool ok = false;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    auto set = policies::PolicySet::load(path, users, std::nullopt, &diagnostics);
    ok = set != nullptr;
    if (set) tenants = set->tenants().size();
  } else {
    policies::TenantPolicy policy;
    ok = policies::read_policy_file(path, users, &policy, &diagnostics);
    tenants = ok && !policy.is_default ? 1 : 0;
  }
  for (const auto& d : diagnostics) std::fprintf(stderr, "%s\n", d.text().c_str());
  if (out.json()) {
    Json j;
    j["path"] = path;
    j["ok"] = ok;
    j["tenants"] = tenants;
    j["diagnostics"] = Json::array();
    for (const auto& d : diagnostics) {
      j["diagnostics"].push_back(
          Json{{"where", d.where}, {"message", d.message}, {"warning", d.warning}});
    }
    std::printf("%s\n", json_text(j).c_str());
  } else if (ok) {
    std::printf("%s: ok (%zu tenant%s)\n", path.c_str(), tenants, tenants == 1 ? "" : "s");
  }
  return ok ? 0 : kExitRefused;
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
}

std::optional<int> run_local_policy_commands(CLI::App& app, const PolicyArgs& a,
                                             const Output& out) {
  CLI::App* policy = app.get_subcommand("policy");
  if (!policy->parsed() || !policy->got_subcommand("check")) return std::nullopt;
  return check(a.path, out);
}

std::optional<int> run_policy_commands(CLI::App& app, const PolicyArgs& a, memos::Client& client,
                                       const Output& out) {
  CLI::App* policy = app.get_subcommand("policy");
  if (!policy->parsed()) return std::nullopt;
  auto r = policy->got_subcommand("reload") ? client.policy_reload() : client.policy_show(a.tenant);
  if (!r) {
    return out.refused(r.error(), a.tenant.empty() ? "" : "tenant '" + a.tenant + "'");
  }
  return print_policy(r.value(), out);
}

}  // namespace memos::shell
