// plugin_call.h — one request to a plugin and the checked decoding of its
// reply, shared by every kind of plugin memosd calls.
#pragma once

#include <capnp/message.h>

#include <chrono>
#include <functional>
#include <string>

#include "ipc/schema/plugin.capnp.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

// The bytes of a built PluginRequest.
std::string request_bytes(capnp::MessageBuilder& message);

// Sends `request` and hands the decoded response to `use`, which returns ""
// or why the reply will not do. Returns "" or why the call failed: the
// channel's error (timeouts and crashed hosts among them), a reply that does
// not decode within limits, the plugin's own PluginError, or `use`'s.
// `retryable` (optional) is set when a later call may succeed.
std::string call_plugin(plugins::PluginChannel& channel, const std::string& request,
                        std::chrono::milliseconds timeout, std::size_t max_reply_bytes,
                        const std::function<std::string(plugin_wire::PluginResponse::Reader)>& use,
                        bool* retryable = nullptr);

}  // namespace memos::kernel
