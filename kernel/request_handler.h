// request_handler.h — executes one client request.
//
// Called on the loop thread with a decoded request: reads the fields every
// request carries into a RequestContext, checks them, and hands the request
// to the handler its operation is served by (handlers/areas.h), which
// copies what it needs and moves the work off the loop: reads and searches
// to the worker pool, writes through the worker pool (validation,
// embedding) to the commit queue, model calls to the executor lane. Every
// request gets exactly one reply, delivered through `Reply` from whichever
// thread finishes it. A write's reply is sent only after its commit is
// durable and the cube's index reflects it, so a client reads its own
// writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "ipc/schema/memos.capnp.h"
#include "kernel/handlers/dispatch_table.h"
#include "kernel/services.h"
#include "kernel/tenant_registry.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {

class CubeArchives;
class ParamUploads;

class RequestHandler {
 public:
  explicit RequestHandler(Services services);
  // What the handlers share (the daemon's periodic work uses it too).
  const Services& services() const { return s_; }
  ~RequestHandler();
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // Loop thread. `request` is valid only during the call; `connection`
  // identifies the client's connection (import sessions belong to one).
  // `peer`: who sent it, under the policies of the moment (tenant_registry.h).
  // `arrived`: when it came, which its latency is counted from (a cluster
  // read may have waited before it is handled).
  void handle(const Peer& peer, std::uint64_t connection, wire::Request::Reader request,
              Reply reply, std::chrono::steady_clock::time_point arrived);
  // Loop thread: the connection is gone; abandon what it had open.
  void connection_closed(std::uint64_t connection);

 private:
  Services s_;
  std::unique_ptr<CubeArchives> archives_;  // import sessions outlive one request
  std::unique_ptr<ParamUploads> params_;    // adapter uploads likewise
  DispatchTable table_;                     // last: its handlers refer to the above
};

}  // namespace memos::kernel
