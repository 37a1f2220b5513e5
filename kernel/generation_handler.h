// generation_handler.h — the requests of memory-augmented generation and the
// activation tier: chat, kvPrefill, kvList, kvRemove and kvStats.
//
// Chat and prefill call the model executor, which may take seconds to
// minutes on a CPU: they run in order on one lane of their own (the
// executor runs one call at a time anyway), never on the worker pool.
// Listing, removing and statistics run on the worker pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ipc/schema/memos.capnp.h"
#include "kernel/activation_tier.h"
#include "kernel/plugin_executor.h"
#include "kernel/request_handler.h"
#include "kernel/serial_lane.h"

namespace memos::kernel {

class GenerationHandler {
 public:
  // `executor` may be null (no executor.model configured): chat and kv
  // prefill are then refused with a clear error; kv ls, rm and stats work.
  GenerationHandler(Services services, std::shared_ptr<PluginExecutor> executor,
                    ActivationTier& tier);

  // Loop thread; each replies exactly once, from any thread.
  void chat(std::uint32_t tenant, std::uint64_t id, wire::Chat::Reader args, Reply reply);
  void prefill(std::uint32_t tenant, std::uint64_t id, wire::KvPrefill::Reader args, Reply reply);
  void list(std::uint32_t tenant, std::uint64_t id, std::string cube, Reply reply);
  void remove(std::uint32_t tenant, std::uint64_t id, std::string cube, std::uint64_t item,
              Reply reply);
  void stats(std::uint32_t tenant, std::uint64_t id, Reply reply);

 private:
  struct ChatArgs;
  struct Block;
  // Lane: the memories (named or found), their block and the tokens of
  // block and question. Replies with the error and returns false on failure.
  bool make_block(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args, Block* out,
                  const Reply& reply);
  void run_chat(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args, const Reply& reply);
  void run_prefill(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args,
                   const Reply& reply);
  // Queues `run` on the lane; queued when memosd stops, it answers
  // `unavailable` (retryable) instead.
  using RunOnLane = void (GenerationHandler::*)(std::uint32_t, std::uint64_t, const ChatArgs&,
                                                const Reply&);
  void on_lane(std::uint32_t tenant, std::uint64_t id, ChatArgs args, Reply reply, RunOnLane run);
  // An error reply for an executor failure (retryable when the executor died).
  static Frame executor_error(std::uint64_t id, const std::string& what, const std::string& err,
                              bool retryable);

  Services s_;
  std::shared_ptr<PluginExecutor> executor_;
  ActivationTier& tier_;
};

}  // namespace memos::kernel
