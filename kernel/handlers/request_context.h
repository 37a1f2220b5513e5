// request_context.h — everything one request carries through its handler.
//
// A handler gets the request's context and its decoded arguments, and
// nothing about the request lives anywhere else (no member of a handler
// object holds per-request state). The context is a small value: handlers
// copy it into the closures they run on a worker, the writer or the
// executor lane, and whichever finishes the request answers through it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ipc/schema/memos.capnp.h"
#include "kernel/status.h"
#include "kernel/wire_replies.h"
#include "memcube/store.h"

namespace memos::kernel {

struct RequestContext {
  std::uint32_t tenant = 0;      // the peer's uid, as the kernel reported it
  std::uint64_t id = 0;          // the client's request id, echoed in the reply
  std::uint64_t connection = 0;  // the connection it came on (import sessions belong to one)
  std::string idempotency_key;   // empty: none (at most 128 bytes, checked before dispatch)
  wire::Request::Which operation = wire::Request::STATUS;
  // Thread-safe. Every request is answered exactly once: through one of
  // the calls below, from whichever thread finishes it.
  Reply reply;

  void fail(const Status& status) const { reply(error_frame(id, status)); }
  void respond(const std::function<void(wire::Response::Builder)>& fill) const {
    reply(response(id, fill));
  }
  void respond_item(const store::Item& item) const { reply(item_response(id, item)); }
};

}  // namespace memos::kernel
