#include "kernel/tenant_registry.h"

#include <sys/stat.h>

#include <cerrno>

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

std::string TenantRegistry::tenant_name(const Peer& peer) const {
  if (!peer.policy->tenant.empty()) return peer.policy->tenant;
  std::string name = users_->user_name(peer.uid);
  return name.empty() ? "uid:" + std::to_string(peer.uid) : name;
}

}  // namespace memos::kernel
