// request_context.h — everything one request carries through its handler.
//
// A handler gets the request's context and its decoded arguments, and
// nothing about the request lives anywhere else (no member of a handler
// object holds per-request state). The context is a small value: handlers
// copy it into the closures they run on a worker, the writer or the
// executor lane, and whichever finishes the request answers through it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ipc/schema/memos.capnp.h"
#include "kernel/status.h"
#include "kernel/tenant_registry.h"
#include "kernel/wire_replies.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

struct RequestContext {
  std::uint32_t uid = 0;  // the peer's uid, as the kernel reported it
  // Whose memory it acts on: the uid its tenant's memory is stored under
  // (the tenant's owner, memos-policy(5); else the peer's own uid).
  std::uint32_t tenant = 0;
  // Root, memosd's own uid or a tenant with role = "admin": may reload
  // plugins and policies and sees what is the host's business (paths,
  // global counts, other tenants' policies).
  bool admin = false;
  // The peer's policy, as of the request's arrival (never null).
  std::shared_ptr<const policies::TenantPolicy> policy;
  std::uint64_t id = 0;          // the client's request id, echoed in the reply
  std::uint64_t connection = 0;  // the connection it came on (import sessions belong to one)
  std::string idempotency_key;   // empty: none (at most 128 bytes, checked before dispatch)
  wire::Request::Which operation = wire::Request::STATUS;
  // A write answered only once searchable (Request.waitSearchable).
  bool wait_searchable = false;
  // The largest reply the client can read (ipc.max_message_bytes): a
  // larger one is answered with tooLarge instead (handlers that can page or
  // stop early do so before building it: reply_budget()).
  std::size_t max_reply_bytes = SIZE_MAX;
  // Thread-safe. Every request is answered exactly once: through one of
  // the calls below but partial(), from whichever thread finishes it.
  Reply reply;

  void fail(const Status& status) const { reply(error_frame(id, status), true); }
  void respond(const std::function<void(wire::Response::Builder)>& fill) const {
    send_bounded(response(id, fill));
  }
  void respond_item(const store::Item& item) const { send_bounded(item_response(id, item)); }
  // A piece of the answer ahead of it (Response.partial set, e.g. a
  // streamed chat's chatPiece): the request stays in flight until one of
  // the calls above answers it. `fill` sets the piece, which is small.
  void partial(const std::function<void(wire::Response::Builder)>& fill) const {
    reply(response(id,
                   [&](wire::Response::Builder r) {
                     fill(r);
                     r.setPartial(true);
                   }),
          false);
  }

  // Who sent it, as the tenant registry saw it at the request's arrival.
  Peer peer() const { return Peer{uid, tenant, admin, policy}; }

  // How much of a plugin's state this client may see (PluginView).
  PluginView plugin_view() const { return admin ? PluginView::full : PluginView::public_view; }

  // What a handler may gather for one reply (items' stored sizes): room
  // is left for the reply's own framing and fields.
  std::size_t reply_budget() const { return max_reply_bytes - max_reply_bytes / 8; }

 private:
  void send_bounded(Frame frame) const {
    const std::size_t bytes = frame->size() * sizeof(capnp::word);
    if (bytes <= max_reply_bytes) return reply(std::move(frame), true);
    fail(Status::too_large("the reply would be " + std::to_string(bytes) +
                           " bytes, over the message limit (" + std::to_string(max_reply_bytes) +
                           "): ask for less"));
  }
};

}  // namespace memos::kernel
