// dispatch_table.h — which handler serves which operation.
//
// Each area of requests (handlers/*.cpp) adds its handlers to the table
// once, at start; RequestHandler::handle() looks the operation up and calls
// it. A new request is a new handler in its area's file and one row there,
// never a new case in a central switch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/handlers/request_context.h"

namespace memos::kernel {

// Called on the loop thread; `request` is valid only during the call, so a
// handler copies what it needs before moving work off the loop. It must
// answer exactly once, through `ctx`.
using Handler = std::function<void(const RequestContext& ctx, wire::Request::Reader request)>;

class DispatchTable {
 public:
  // Serves `operation` with `handler`. Each operation has one handler:
  // adding a second is a bug (asserted in debug builds; the first stays).
  void add(wire::Request::Which operation, Handler handler);
  // Null when no handler serves `operation` (a client newer than memosd).
  const Handler* find(wire::Request::Which operation) const;
  // The schema's names of the requests (memos.capnp, Request's union) that
  // no handler serves: empty once every area has added its handlers.
  std::vector<std::string> unserved() const;

 private:
  std::vector<Handler> handlers_;  // indexed by the operation's ordinal
};

}  // namespace memos::kernel
