// plugin_call.h — one request to a plugin and the checked decoding of its
// reply, shared by every kind of plugin memosd calls.
#pragma once

#include <capnp/message.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/status.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

// The bytes of a built PluginRequest.
std::string request_bytes(capnp::MessageBuilder& message);

// Sends `request` and hands the decoded response to `use`, which returns ""
// or why the reply will not do (a reply of the wrong shape). Errors:
// unavailable (retryable) when the channel says a later call may succeed (a
// timeout, a crashed host that restarts); internal for the channel's other
// errors, a reply that does not decode within limits, the plugin's own
// PluginError, or `use`'s reason. Messages start with `who` ("retriever
// faiss-retriever: ..."), when given. The partials the plugin reports on
// the way are decoded within limits and handed to `on_partial` (on the
// thread that reports them); one that does not decode is logged and
// skipped, never the call's failure.
using PartialUse = std::function<void(plugin_wire::PluginPartial::Reader)>;
Status call_plugin(std::string_view who, plugins::PluginChannel& channel,
                   const std::string& request, std::chrono::milliseconds timeout,
                   std::size_t max_reply_bytes,
                   const std::function<std::string(plugin_wire::PluginResponse::Reader)>& use,
                   const PartialUse& on_partial = {});

}  // namespace memos::kernel
