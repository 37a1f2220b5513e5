#include "policies/policy_set.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace memos::policies {
namespace {

// SHA-256 over a sequence of length-prefixed fields, so that no two
// different sequences (a name ending where bytes begin) hash alike.
class FieldDigest {
 public:
  FieldDigest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void add(std::string_view field) {
    const std::uint64_t size = field.size();
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(size >> (8 * i));
    EVP_DigestUpdate(ctx_.get(), prefix, sizeof prefix);
    EVP_DigestUpdate(ctx_.get(), field.data(), field.size());
  }
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    EVP_DigestFinal_ex(ctx_.get(), out, &size);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    for (unsigned i = 0; i < size; ++i) {
      text += kDigits[out[i] >> 4];
      text += kDigits[out[i] & 15];
    }
    return text;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// The uids a policy resolved to, as a digest field: names resolve through
// NSS, which may differ from host to host while the files do not.
std::string resolved_peers(const TenantPolicy& policy) {
  std::string text = policy.owner ? "owner " + std::to_string(*policy.owner) : "no owner";
  for (std::uint32_t uid : policy.uids) text += " " + std::to_string(uid);
  return text;
}

constexpr std::size_t kMaxFiles = 10000;

// Whether `st` may be trusted to say who is an administrator.
std::string untrusted(const struct stat& st, std::uint32_t trusted_uid) {
  if (st.st_uid != 0 && st.st_uid != trusted_uid) {
    return "owned by uid " + std::to_string(st.st_uid) + ", not root or memosd's uid (" +
           std::to_string(trusted_uid) + ")";
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return "writable by its group or others (chmod go-w): whoever may edit a policy may make "
           "themselves an administrator";
  }
  return "";
}

}  // namespace

PolicySet::PolicySet() : digest_(FieldDigest().hex()) {
  auto builtin = std::make_shared<TenantPolicy>();
  builtin->is_default = true;
  default_ = std::move(builtin);
}

std::shared_ptr<const PolicySet> PolicySet::load(const std::string& folder,
                                                 const UserDirectory& users,
                                                 std::optional<std::uint32_t> trusted_uid,
                                                 std::vector<Diagnostic>* diagnostics) {
  auto fail = [&](const std::string& where, const std::string& message) {
    diagnostics->push_back({where, message, false});
  };
  struct stat st {};
  if (stat(folder.c_str(), &st) != 0) {
    fail(folder, std::strerror(errno));
    return nullptr;
  }
  if (!S_ISDIR(st.st_mode)) {
    fail(folder, "not a folder");
    return nullptr;
  }
  if (trusted_uid) {
    if (std::string why = untrusted(st, *trusted_uid); !why.empty()) {
      fail(folder, why);
      return nullptr;
    }
  }
  std::vector<std::string> paths;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (it->path().extension() != ".toml") {
      diagnostics->push_back({it->path().string(), "skipped: not a .toml file", true});
      continue;
    }
    if (paths.size() == kMaxFiles) {
      fail(folder, "more than " + std::to_string(kMaxFiles) + " policy files");
      return nullptr;
    }
    paths.push_back(it->path().string());
  }
  if (ec) {
    fail(folder, ec.message());
    return nullptr;
  }
  std::sort(paths.begin(), paths.end());  // the same diagnostics in the same order

  auto set = std::make_shared<PolicySet>();
  set->folder_ = folder;
  bool ok = true;
  std::map<std::string, std::string> file_of_tenant;
  std::map<std::uint32_t, std::string> file_of_uid;
  FieldDigest digest;
  for (const std::string& path : paths) {
    if (trusted_uid) {
      // lstat's answer for a link is the link's; the file it names is
      // what is read, so that is what must be trusted.
      struct stat fst {};
      if (stat(path.c_str(), &fst) != 0) {
        fail(path, std::strerror(errno));
        ok = false;
        continue;
      }
      if (std::string why = untrusted(fst, *trusted_uid); !why.empty()) {
        fail(path, why);
        ok = false;
        continue;
      }
    }
    auto policy = std::make_shared<TenantPolicy>();
    std::string text;
    if (!read_policy_text(path, &text, diagnostics) ||
        !parse_policy(text, path, users, policy.get(), diagnostics)) {
      ok = false;
      continue;
    }
    digest.add(std::filesystem::path(path).filename().string());
    digest.add(text);
    digest.add(resolved_peers(*policy));
    if (policy->is_default) {
      set->default_ = policy;
      continue;
    }
    if (auto [it, fresh] = file_of_tenant.emplace(policy->tenant, path); !fresh) {
      fail(path, "tenant '" + policy->tenant + "' is also named by " + it->second);
      ok = false;
      continue;
    }
    for (std::uint32_t uid : policy->uids) {
      if (auto [it, fresh] = file_of_uid.emplace(uid, path); !fresh) {
        std::string name = users.user_name(uid);
        fail(path, "uid " + std::to_string(uid) + (name.empty() ? "" : " (" + name + ")") +
                       " is also claimed by " + it->second + ": a peer has one tenant");
        ok = false;
        continue;
      }
      set->by_uid_.emplace(uid, policy);
    }
    set->tenants_.push_back(std::move(policy));
  }
  if (!ok) return nullptr;
  set->digest_ = digest.hex();
  std::sort(set->tenants_.begin(), set->tenants_.end(),
            [](const auto& a, const auto& b) { return a->tenant < b->tenant; });
  return set;
}

const std::shared_ptr<const TenantPolicy>& PolicySet::for_uid(std::uint32_t uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? default_ : it->second;
}

std::uint32_t PolicySet::data_uid(std::uint32_t uid) const {
  const auto& policy = for_uid(uid);
  return policy->owner ? *policy->owner : uid;
}

std::shared_ptr<const TenantPolicy> PolicySet::tenant(std::string_view name) const {
  auto it = std::lower_bound(tenants_.begin(), tenants_.end(), name,
                             [](const auto& p, std::string_view n) { return p->tenant < n; });
  if (it == tenants_.end() || (*it)->tenant != name) return nullptr;
  return *it;
}

PolicyCheck check_policy_path(const std::string& path, const UserDirectory& users,
                              std::optional<std::uint32_t> trusted_uid) {
  PolicyCheck check;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    auto set = PolicySet::load(path, users, trusted_uid, &check.diagnostics);
    check.ok = set != nullptr;
    if (set) check.tenants = set->tenants().size();
  } else {
    TenantPolicy policy;
    check.ok = read_policy_file(path, users, &policy, &check.diagnostics);
    check.tenants = check.ok && !policy.is_default ? 1 : 0;
  }
  return check;
}

}  // namespace memos::policies
