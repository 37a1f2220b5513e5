// admin.h — who administers memosd until tenant roles exist: root and
// memosd's own uid. One rule for the connections held back for them
// (ClientLimits) and for the requests only they may make
// (RequestContext::admin: plugin reload, the host's paths and counts).
#pragma once

#include <cstdint>

namespace memos::kernel {

// Whether the peer `uid` is an administrator of the memosd running as
// `memosd_uid` (its effective uid).
inline bool is_admin(std::uint32_t uid, std::uint32_t memosd_uid) {
  return uid == 0 || uid == memosd_uid;
}

}  // namespace memos::kernel
