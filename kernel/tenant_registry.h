// tenant_registry.h — the tenant policies memosd enforces (memos-policy(5))
// and who a peer is under them.
//
// The registry holds the current PolicySet, read from the policy folder at
// start and again on SIGHUP or `memctl policy reload`. A folder with any
// error is refused whole: at start memosd does not start; on a reload the
// running set stays. A folder memosd looked for by default (tenants.d
// beside its configuration) may be absent, and then the built-in set
// applies: every peer admitted, each a tenant of its own, bounded by the
// configuration only. A folder named by policies_dir or --policies must
// exist.
//
// Root and memosd's own uid are always admitted and always administrators,
// whatever the policies say, so that no policy can lock the operator out.
//
// Thread-safe: current() and peer() from any thread, load() serialized.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/status.h"
#include "policies/policy_set.h"
#include "policies/user_directory.h"

namespace memos::kernel {

// Who a peer is, under one policy set: what a request carries.
struct Peer {
  std::uint32_t uid = 0;     // as the kernel reported it
  std::uint32_t tenant = 0;  // the uid its tenant's memory is stored under
  bool admin = false;
  std::shared_ptr<const policies::TenantPolicy> policy;  // never null
};

class TenantRegistry {
 public:
  // `folder`: policies_dir (empty: `default_folder`, used if it exists).
  TenantRegistry(std::string folder, std::string default_folder, std::uint32_t memosd_uid,
                 std::unique_ptr<policies::UserDirectory> users);

  // Reads the folder into a new set and swaps it in; on error returns
  // bad_request with every diagnostic, one a line, and keeps the current
  // set. Warnings go to `*warnings`. Reads files and asks NSS: not on the
  // loop thread.
  Status load(std::vector<std::string>* warnings);
  // load() on a running daemon, logged as `why` ("SIGHUP", "policy reload
  // (uid N)"): warnings, the refusal (the running set stays) or the new
  // set. Returns load()'s status.
  Status reload(const std::string& why);
  // Points the registry at another folder for the next load() (a SIGHUP
  // that changed policies_dir).
  void set_folder(std::string folder);

  std::shared_ptr<const policies::PolicySet> current() const;
  // The folder the current set came from ("" for the built-in set).
  std::string folder() const { return current()->folder(); }

  // Who `uid` is now; `refusal` (if not null) is set when the policies
  // refuse it, with the reason to send it.
  Peer peer(std::uint32_t uid, Status* refusal) const;
  // A tenant's name: its policy's, else the user's name, else "uid:N".
  // Asks NSS: not on the loop thread.
  std::string tenant_name(const Peer& peer) const;

  // The tenant named `name` (a policy's tenant name, else a user name, else
  // uid:N), as the peer of the uid its memory is stored under; nullopt if
  // none is. Asks NSS: not on the loop thread.
  std::optional<Peer> find_tenant(std::string_view name) const;

  const policies::UserDirectory& users() const { return *users_; }

 private:
  std::uint32_t memosd_uid_;
  std::unique_ptr<policies::UserDirectory> users_;
  mutable std::mutex mu_;
  std::string folder_;                                  // guarded by mu_
  std::string default_folder_;                          // guarded by mu_
  std::shared_ptr<const policies::PolicySet> current_;  // guarded by mu_
  std::mutex load_mu_;                                  // one load at a time
};

}  // namespace memos::kernel
