// user_namespace.h — whether the uids memosd sees on its socket are the real
// ones.
//
// A tenant is the peer's uid (SO_PEERCRED). In a user namespace that maps
// only part of the uid range (systemd's PrivateUsers=yes, `unshare --user`),
// the kernel reports every peer uid the namespace does not map as the
// overflow uid (/proc/sys/kernel/overflowuid, usually 65534): all such users
// would share one tenant. memosd refuses them instead, and warns at start.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace memos::kernel {

struct UserNamespace {
  // Each true when the map is the identity over the full 32-bit range (the
  // initial user namespace), or when it could not be read (no /proc).
  bool uids_complete = true;
  bool gids_complete = true;
  std::uint32_t overflow_uid = 65534;
  std::uint32_t overflow_gid = 65534;
  std::string uid_map;  // as read, one line per range ("" when unread)

  // The namespace memosd runs in, from /proc/self/{uid,gid}_map and
  // /proc/sys/kernel/overflow{uid,gid}. Never fails: what cannot be read is
  // taken to be the initial namespace's.
  static UserNamespace current();

  // The refusal for a peer whose uid (or gid) is the overflow id in a
  // namespace that does not map the full range: such a peer cannot be told
  // apart from other unmapped users. Empty when the peer is who it says.
  // The real user `nobody` (65534 on a normal host) is never refused there.
  std::string unmapped_peer(uid_t uid, gid_t gid) const;

  // The warning to log at start when the uid map is not the full identity;
  // empty otherwise.
  std::string start_warning() const;
};

// True when `map` (the text of /proc/PID/uid_map or gid_map) is the single
// range "0 0 4294967295". Unparseable text is not.
bool is_full_identity_map(const std::string& map);

}  // namespace memos::kernel
