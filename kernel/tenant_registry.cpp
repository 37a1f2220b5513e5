#include "kernel/tenant_registry.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>

#include "kernel/admin.h"

namespace memos::kernel {

TenantRegistry::TenantRegistry(std::string folder, std::string default_folder,
                               std::uint32_t memosd_uid,
                               std::unique_ptr<policies::UserDirectory> users)
    : memosd_uid_(memosd_uid),
      users_(std::move(users)),
      folder_(std::move(folder)),
      default_folder_(std::move(default_folder)),
      current_(std::make_shared<policies::PolicySet>()) {}

void TenantRegistry::set_folder(std::string folder) {
  std::lock_guard lock(mu_);
  folder_ = std::move(folder);
}

Status TenantRegistry::load(std::vector<std::string>* warnings) {
  std::lock_guard load_lock(load_mu_);
  std::string folder, fallback;
  {
    std::lock_guard lock(mu_);
    folder = folder_;
    fallback = default_folder_;
  }
  if (folder.empty()) {
    struct stat st {};
    if (fallback.empty() || (stat(fallback.c_str(), &st) != 0 && errno == ENOENT)) {
      std::lock_guard lock(mu_);
      current_ = std::make_shared<policies::PolicySet>();
      return {};
    }
    folder = fallback;
  }
  std::vector<policies::Diagnostic> diagnostics;
  auto set = policies::PolicySet::load(folder, *users_, memosd_uid_, &diagnostics);
  std::string errors;
  for (const auto& d : diagnostics) {
    if (d.warning) {
      if (warnings) warnings->push_back(d.text());
    } else {
      errors += (errors.empty() ? "" : "\n") + d.text();
    }
  }
  if (!set) return Status::bad_request(errors.empty() ? folder + ": not loaded" : errors);
  std::lock_guard lock(mu_);
  current_ = std::move(set);
  return {};
}

Status TenantRegistry::reload(const std::string& why) {
  std::vector<std::string> warnings;
  Status st = load(&warnings);
  for (const auto& w : warnings) spdlog::warn("{}: {}", why, w);
  if (!st.ok()) {
    spdlog::error("{}: tenant policies not reloaded, the running ones stay:\n{}", why, st.message);
    return st;
  }
  auto set = current();
  spdlog::info("{}: tenant policies re-read from {} ({} tenants)", why,
               set->folder().empty() ? std::string("nowhere (built-in)") : set->folder(),
               set->tenants().size());
  return st;
}

std::shared_ptr<const policies::PolicySet> TenantRegistry::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Peer TenantRegistry::peer(std::uint32_t uid, Status* refusal) const {
  auto set = current();
  Peer p;
  p.uid = uid;
  p.policy = set->for_uid(uid);
  p.tenant = set->data_uid(uid);
  bool operator_uid = is_admin(uid, memosd_uid_);
  p.admin = operator_uid || p.policy->role == policies::Role::admin;
  if (refusal && !p.policy->allow && !operator_uid) {
    *refusal = Status::permission_denied(
        "uid " + std::to_string(uid) + " is not admitted: " +
        (p.policy->is_default ? "no policy names it, and " + p.policy->file + " says allow = false"
                              : p.policy->file + " says allow = false"));
  }
  return p;
}

std::optional<Peer> TenantRegistry::find_tenant(std::string_view name) const {
  if (auto policy = current()->tenant(name)) {
    if (!policy->owner) return std::nullopt;  // it covers no uid
    return peer(*policy->owner, nullptr);
  }
  std::optional<std::uint32_t> uid;
  if (name.starts_with("uid:")) {
    const std::string_view digits = name.substr(4);
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    // uid 4294967295 is (uid_t)-1, "no uid", never a peer.
    if (ec == std::errc() && end == digits.data() + digits.size() && v != 0xFFFFFFFFu) uid = v;
  } else {
    std::string why;
    uid = users_->user(std::string(name), &why);
  }
  if (!uid) return std::nullopt;
  return peer(*uid, nullptr);
}

std::string TenantRegistry::tenant_name(const Peer& peer) const {
  if (!peer.policy->tenant.empty()) return peer.policy->tenant;
  std::string name = users_->user_name(peer.uid);
  return name.empty() ? "uid:" + std::to_string(peer.uid) : name;
}

}  // namespace memos::kernel
