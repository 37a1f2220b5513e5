// user_directory.h — names of users and groups as uids, for the `users`,
// `groups` and `owner` keys of a policy, resolved when the policy folder
// is loaded (never per connection: the kernel reports a peer's uid, and a
// policy is a map from uids).
//
// SystemDirectory asks the C library (NSS: /etc/passwd, /etc/group, or
// whatever nsswitch.conf names); tests give a directory of their own.
//
// Errors: a name nobody has is std::nullopt, and the loader reports it at
// the key's file:line:column. A lookup the C library fails at (an NSS
// backend down) is std::nullopt too, with the reason in `*why`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memos::policies {

class UserDirectory {
 public:
  virtual ~UserDirectory() = default;
  // The uid of the user `name`.
  virtual std::optional<std::uint32_t> user(const std::string& name, std::string* why) const = 0;
  // Every uid in the group `name`: its listed members, and the users whose
  // primary group it is.
  virtual std::optional<std::vector<std::uint32_t>> group(const std::string& name,
                                                          std::string* why) const = 0;
  // The name of `uid` ("" if it has none), for logs and tenant names.
  virtual std::string user_name(std::uint32_t uid) const = 0;
};

class SystemDirectory final : public UserDirectory {
 public:
  std::optional<std::uint32_t> user(const std::string& name, std::string* why) const override;
  std::optional<std::vector<std::uint32_t>> group(const std::string& name,
                                                  std::string* why) const override;
  std::string user_name(std::uint32_t uid) const override;
};

}  // namespace memos::policies
