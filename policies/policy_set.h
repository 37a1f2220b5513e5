// policy_set.h — every policy of one folder, and which applies to a peer.
//
// A folder holds one TOML file per tenant (policy_file.h) and, optionally,
// default.toml for the peers no other file claims; without default.toml
// those peers are admitted with no bounds but the daemon's configuration,
// as with no folder at all (the built-in set). Files whose names do not end
// in .toml, and hidden ones, are skipped (editors' and packagers' leftovers).
//
// A set is immutable: the daemon loads a new one on a reload and swaps it
// whole, so a request sees one set from start to end, and a folder with
// any error is refused whole while the running set stays.
//
// Errors (load() returns null, with every one in `*diagnostics`): a folder
// that cannot be read; a file with an error; two files claiming one uid or
// one tenant name (both files are named); more than 10,000 files. When
// `trusted_uid` is given (memosd), the folder and its files must be owned
// by root or that uid and writable by no one else, since whoever edits a
// policy may make themselves an administrator.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policies/policy.h"
#include "policies/policy_file.h"
#include "policies/user_directory.h"

namespace memos::policies {

class PolicySet {
 public:
  // The built-in set: every peer admitted, each a tenant of its own.
  PolicySet();

  static std::shared_ptr<const PolicySet> load(const std::string& folder,
                                               const UserDirectory& users,
                                               std::optional<std::uint32_t> trusted_uid,
                                               std::vector<Diagnostic>* diagnostics);

  // The policy that applies to the peer `uid`: its tenant's, else the
  // default. Never null.
  const std::shared_ptr<const TenantPolicy>& for_uid(std::uint32_t uid) const;
  // The uid `uid`'s memory is stored under: its tenant's owner, else its own.
  std::uint32_t data_uid(std::uint32_t uid) const;
  // A named tenant's policy, or null.
  std::shared_ptr<const TenantPolicy> tenant(std::string_view name) const;
  const std::vector<std::shared_ptr<const TenantPolicy>>& tenants() const { return tenants_; }
  const std::shared_ptr<const TenantPolicy>& default_policy() const { return default_; }
  // The folder it was read from ("" for the built-in set).
  const std::string& folder() const { return folder_; }
  // What the set enforces, as 64 lowercase hex digits (SHA-256): every
  // policy file's name and bytes, in name order, each with the uids its
  // users and groups resolved to here. Two nodes of a cluster with equal
  // digests apply the same policies to the same peers (memos-cluster(7)
  // compares them). Neither the folder's path nor skipped files count, so
  // an empty folder and the built-in set, which admit the same, agree.
  const std::string& digest() const { return digest_; }

 private:
  std::string folder_;
  std::string digest_;
  std::shared_ptr<const TenantPolicy> default_;
  std::vector<std::shared_ptr<const TenantPolicy>> tenants_;  // by name
  std::map<std::uint32_t, std::shared_ptr<const TenantPolicy>> by_uid_;
};

// What check_policy_path() found.
struct PolicyCheck {
  bool ok = false;
  std::size_t tenants = 0;  // the tenants it names (default.toml is none)
  std::vector<Diagnostic> diagnostics;
};

// Checks `path` as memosd would read it: a folder whole (PolicySet::load,
// with `trusted_uid` as there), or one policy file alone. What
// `memosd --check-policy` and `memctl policy check` both print.
PolicyCheck check_policy_path(const std::string& path, const UserDirectory& users,
                              std::optional<std::uint32_t> trusted_uid);

}  // namespace memos::policies
