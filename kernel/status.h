// status.h — the kernel's one error vocabulary.
//
// Every kernel function that can fail returns a Status: a code the client
// will see (the protocol's ErrorCode, memos.capnp), a one-line message fit
// for the client, and whether the same request may succeed later. Nothing
// replies as a side effect of failing: the request handler that called it
// turns the Status into the one reply (RequestContext::fail).
//
// Store errors (store::Status, memcube/store.h) enter the kernel through
// Status::from(), which decides once how each maps: storage_full and
// unavailable are retryable, corrupt and io are internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "memcube/store.h"

namespace memos::kernel {

enum class Code : std::uint8_t {
  ok,
  bad_request,        // malformed or invalid; do not retry as is
  not_found,          // the cube, item, version, snapshot or plugin does not exist
  already_exists,     // a cube or snapshot with that name exists; an add's text is a live item's
  too_large,          // a field exceeds a configured limit
  busy,               // overloaded; retry later
  unavailable,        // stopping, or a plugin host restarting
  internal,           // a bug or an unexpected storage failure
  conflict,           // not allowed in the current state
  permission_denied,  // the tenant may not do this
  storage_full,       // disk or map full; retry when space returns
  quota_exceeded,     // a bound of the tenant's policy; not retryable as is
  rate_limited,       // over a rate of the tenant's policy; retry after retry_after_ms
};

struct [[nodiscard]] Status {
  Code code = Code::ok;
  std::string message{};
  bool retryable = false;
  std::uint32_t retry_after_ms = 0;  // rate_limited: when to try again

  bool ok() const { return code == Code::ok; }

  static Status success() { return {}; }
  static Status bad_request(std::string message) {
    return {Code::bad_request, std::move(message), false};
  }
  static Status not_found(std::string message) {
    return {Code::not_found, std::move(message), false};
  }
  static Status too_large(std::string message) {
    return {Code::too_large, std::move(message), false};
  }
  static Status permission_denied(std::string message) {
    return {Code::permission_denied, std::move(message), false};
  }
  static Status conflict(std::string message) {
    return {Code::conflict, std::move(message), false};
  }
  // Retryable unless said otherwise: the daemon stopping, a plugin host
  // restarting. A missing part of the configuration is not retryable.
  static Status unavailable(std::string message, bool retryable = true) {
    return {Code::unavailable, std::move(message), retryable};
  }
  static Status internal(std::string message) {
    return {Code::internal, std::move(message), false};
  }
  // A plugin's failure: unavailable when a later call may succeed (its host
  // died or timed out and restarts), else internal.
  static Status plugin_failure(std::string message, bool retryable) {
    return {retryable ? Code::unavailable : Code::internal, std::move(message), retryable};
  }
  // The store's error as the client sees it.
  static Status from(const store::Status& s);

  // Puts `what` and ": " before the message ("search failed: ..."), keeping
  // the code; returns *this for chaining. No-op on success.
  Status& prefixed(std::string_view what);
};

// The protocol's name of a code, e.g. "notFound" (for logs).
const char* to_string(Code code);

}  // namespace memos::kernel
