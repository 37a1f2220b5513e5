#include "kernel/request_handler.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <string>

#include "kernel/cluster_node.h"
#include "kernel/handlers/archives.h"
#include "kernel/handlers/areas.h"
#include "kernel/handlers/distill.h"
#include "kernel/handlers/params.h"
#include "kernel/request_metrics.h"

namespace memos::kernel {
namespace {

constexpr std::size_t kMaxIdempotencyKeyBytes = 128;

}  // namespace

RequestHandler::RequestHandler(Services services)
    : s_(std::move(services)),
      archives_(std::make_unique<CubeArchives>(s_)),
      params_(std::make_unique<ParamUploads>(s_)) {
  add_cube_handlers(table_, s_);
  add_item_handlers(table_, s_);
  add_search_handlers(table_, s_);
  add_snapshot_handlers(table_, s_);
  archives_->add_handlers(table_);
  params_->add_handlers(table_);
  add_plugin_handlers(table_, s_);
  add_generation_handlers(table_, s_);
  add_kv_handlers(table_, s_);
  add_distill_handlers(table_, s_);
  add_tenant_handlers(table_, s_);
  add_scheduler_handlers(table_, s_);
  add_metrics_handlers(table_, s_);
  add_cluster_handlers(table_, s_);
  // A request the schema has and no area serves would be refused as an
  // unknown operation: a bug, caught by the tests (debug builds) and logged.
  for (const std::string& name : table_.unserved()) {
    spdlog::critical("no handler serves the request '{}'", name);
  }
  assert(table_.unserved().empty() && "a request of the schema has no handler");
}

RequestHandler::~RequestHandler() = default;

void RequestHandler::connection_closed(std::uint64_t connection) {
  MEMOS_ASSERT_ON_THREAD(s_.loop_thread);
  archives_->connection_closed(connection);
  params_->connection_closed(connection);
}

void RequestHandler::handle(const Peer& peer, std::uint64_t connection,
                            wire::Request::Reader request, Reply reply,
                            std::chrono::steady_clock::time_point arrived) {
  // Every handler's entry runs here, on the loop (archive sessions and the
  // table itself rely on it); their work then moves off it.
  MEMOS_ASSERT_ON_THREAD(s_.loop_thread);
  RequestContext ctx;
  ctx.uid = peer.uid;
  ctx.tenant = peer.tenant;
  ctx.admin = peer.admin;
  ctx.policy = peer.policy;
  ctx.id = request.getId();
  ctx.connection = connection;
  ctx.idempotency_key = exact(request.getIdempotencyKey());
  ctx.operation = request.which();
  ctx.wait_searchable = request.getWaitSearchable();
  ctx.max_reply_bytes = s_.config.ipc.max_message_bytes;
  ctx.reply = std::move(reply);
  if (s_.request_metrics) {
    // Counted when answered, by the code of the answer, whichever thread
    // answers.
    ctx.reply = [metrics = s_.request_metrics, operation = ctx.operation, arrived,
                 inner = std::move(ctx.reply)](Frame frame, bool last) {
      if (last) metrics->record(operation, *frame, arrived);
      inner(std::move(frame), last);
    };
  }
  if (ctx.idempotency_key.size() > kMaxIdempotencyKeyBytes) {
    return ctx.fail(Status::too_large("idempotency key is longer than " +
                                      std::to_string(kMaxIdempotencyKeyBytes) + " bytes"));
  }
  const Handler* handler = table_.find(ctx.operation);
  if (!handler) {
    return ctx.fail(
        Status::bad_request("unknown operation (is the client newer than this memosd?)"));
  }
  // A follower answers reads; a write is refused before any work, naming
  // the owner. (The writer's change sink refuses too, should the node lose
  // the store between this check and the commit.)
  if (writes_store(ctx.operation)) {
    if (Status w = s_.writable(); !w.ok()) return ctx.fail(std::move(w));
  }
  (*handler)(ctx, request);
}

}  // namespace memos::kernel
