#include "kernel/plugin_call.h"

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

namespace memos::kernel {

std::string request_bytes(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Status call_plugin(std::string_view who, plugins::PluginChannel& channel,
                   const std::string& request, std::chrono::milliseconds timeout,
                   std::size_t max_reply_bytes,
                   const std::function<std::string(plugin_wire::PluginResponse::Reader)>& use) {
  plugins::CallResult r = channel.call(request, timeout, max_reply_bytes);
  const bool retryable = r.status == MEMOS_ERR_BUSY;
  std::string error;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    if (r.reply.empty() || r.reply.size() % sizeof(capnp::word) != 0) {
      error = r.message.empty() ? "empty or misaligned reply" : r.message;
      return;
    }
    std::vector<capnp::word> words(r.reply.size() / sizeof(capnp::word));
    std::memcpy(words.data(), r.reply.data(), r.reply.size());
    capnp::ReaderOptions limits;
    limits.traversalLimitInWords = words.size() * 2 + 64;
    limits.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()), limits);
    auto response = reader.getRoot<plugin_wire::PluginResponse>();
    if (response.isError()) {
      // An unset union reads as an empty error: a plugin that answered
      // without setting any result must not pass for a success.
      error = response.getError().getMessage();
      if (error.empty()) {
        error = r.status == MEMOS_OK ? "the plugin answered without a result"
                                     : "the plugin failed without saying why";
      }
      return;
    }
    if (r.status != MEMOS_OK) {
      error = r.message.empty() ? "the call failed" : r.message;
      return;
    }
    error = use(response);
  });
  KJ_IF_MAYBE (e, failure) {
    error = std::string("reply does not decode: ") + e->getDescription().cStr();
  }
  if (error.empty()) return {};
  return Status::plugin_failure(who.empty() ? error : std::string(who) + ": " + error, retryable);
}

}  // namespace memos::kernel
