// request_handler.h — executes one client request.
//
// Called on the loop thread with a decoded request; copies what it needs and
// moves the work off the loop: reads and searches to the worker pool, writes
// through the worker pool (validation, embedding) to the commit queue. Every
// request gets exactly one reply, delivered through `Reply` from whichever
// thread finishes it. A write's reply is sent only after its commit is durable
// and the cube's index reflects it, so a client reads its own writes.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ipc/schema/memos.capnp.h"
#include "kernel/config.h"
#include "kernel/index_set.h"
#include "kernel/services.h"
#include "kernel/wire_replies.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::kernel {

class RequestHandler {
 public:
  explicit RequestHandler(Services services);
  ~RequestHandler();

  // Loop thread. `request` is valid only during the call; `connection`
  // identifies the client's connection (import sessions belong to one).
  void handle(std::uint32_t tenant, std::uint64_t connection, wire::Request::Reader request,
              Reply reply);
  // Loop thread: the connection is gone; abandon what it had open.
  void connection_closed(std::uint64_t connection);

  // A reply carrying only an error, for requests that could not be decoded.
  static Frame error_frame(std::uint64_t id, wire::ErrorCode code, const std::string& message,
                           bool retryable);

 private:
  void status(std::uint32_t tenant, std::uint64_t id, Reply reply);
  void cube_create(std::uint32_t tenant, std::uint64_t id, std::string name, std::string retriever,
                   std::string language, Reply reply);
  void cube_list(std::uint32_t tenant, std::uint64_t id, Reply reply);
  void cube_show(std::uint32_t tenant, std::uint64_t id, std::string name, Reply reply);
  void cube_remove(std::uint32_t tenant, std::uint64_t id, std::string name, bool force,
                   Reply reply);
  void add(std::uint32_t tenant, std::uint64_t id, wire::AddItem::Reader args, Reply reply);
  void update(std::uint32_t tenant, std::uint64_t id, wire::UpdateItem::Reader args, Reply reply);
  void remove(std::uint32_t tenant, std::uint64_t id, std::string cube, std::uint64_t item,
              Reply reply);
  void get(std::uint32_t tenant, std::uint64_t id, std::string cube, std::uint64_t item,
           std::uint32_t version, Reply reply);
  void history(std::uint32_t tenant, std::uint64_t id, std::string cube, std::uint64_t item,
               Reply reply);
  void search(std::uint32_t tenant, std::uint64_t id, wire::Search::Reader args, Reply reply);
  void set_state(std::uint32_t tenant, std::uint64_t id, wire::SetState::Reader args, Reply reply);
  void rollback(std::uint32_t tenant, std::uint64_t id, wire::Rollback::Reader args, Reply reply);
  void diff(std::uint32_t tenant, std::uint64_t id, wire::DiffVersions::Reader args, Reply reply);
  void plugin_list(std::uint64_t id, Reply reply);
  void plugin_info(std::uint64_t id, std::string name, Reply reply);
  void plugin_reload(std::uint64_t id, std::string name, Reply reply);
  void snapshot_create(std::uint32_t tenant, std::uint64_t id, std::string cube, std::string tag,
                       Reply reply);
  void snapshot_list(std::uint32_t tenant, std::uint64_t id, std::string cube, Reply reply);
  void snapshot_diff(std::uint32_t tenant, std::uint64_t id, std::string cube, std::string from_tag,
                     std::string to_tag, Reply reply);

  Services s_;
  std::unique_ptr<class CubeArchives> archives_;
  std::unique_ptr<class GenerationHandler> generation_;
  // Of the request being handled (handle() runs on the loop thread only).
  std::string idempotency_key_;
  std::uint16_t operation_ = 0;
};

}  // namespace memos::kernel
