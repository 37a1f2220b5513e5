// rate_limits.h — a tenant's rates (memos-policy(5), [rates]) as token
// buckets: writes, searches, and chats with prefills, each refilling
// continuously at its rate and holding at most its burst.
//
// A request of a rated kind takes one token when it arrives; with none
// left it is refused with rate_limited, retryable, saying in how many
// milliseconds a token will be there. Buckets are per tenant (the uid its
// memory is stored under), so a tenant's uids share them; a reload that
// changes a rate keeps the tokens a bucket holds, up to the new burst.
//
// Loop thread only: requests are taken in the order they arrive there.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "ipc/schema/memos.capnp.h"
#include "kernel/status.h"
#include "policies/policy.h"

namespace memos::kernel {

class RateLimits {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Kind : std::uint8_t { write, search, chat };

  // Which bucket a request draws on; nullopt: none (reads, listings...).
  static std::optional<Kind> kind_of(wire::Request::Which operation);

  // Takes a token for `tenant`'s request of `operation` under `policy` at
  // `now`. Errors: rate_limited (retryable, with retry_after_ms).
  Status take(std::uint32_t tenant, wire::Request::Which operation,
              const policies::TenantPolicy& policy, Clock::time_point now);

  std::size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
    policies::Rate rate;  // as of the last take
  };
  // Forgets buckets that have refilled to their burst (they are as good as
  // new), so that a stream of distinct uids cannot grow the map for ever.
  void forget_full(Clock::time_point now);

  std::map<std::pair<std::uint32_t, Kind>, Bucket> buckets_;
};

}  // namespace memos::kernel
