#include "kernel/plugin_call.h"

#include <capnp/serialize.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <vector>

namespace memos::kernel {
namespace {

// Runs `read` on `bytes` read as a message of Root, within limits sized to
// them; returns "" or why the bytes do not decode.
template <class Root, class Read>
std::string read_message(std::string_view bytes, Read&& read) {
  std::string error;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
      error = "empty or misaligned";
      return;
    }
    std::vector<capnp::word> words(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.data(), bytes.data(), bytes.size());
    capnp::ReaderOptions limits;
    limits.traversalLimitInWords = words.size() * 2 + 64;
    limits.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()), limits);
    read(reader.getRoot<Root>());
  });
  KJ_IF_MAYBE (e, failure) {
    error = std::string("does not decode: ") + e->getDescription().cStr();
  }
  return error;
}

}  // namespace

std::string request_bytes(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Status call_plugin(std::string_view who, plugins::PluginChannel& channel,
                   const std::string& request, std::chrono::milliseconds timeout,
                   std::size_t max_reply_bytes,
                   const std::function<std::string(plugin_wire::PluginResponse::Reader)>& use,
                   const PartialUse& on_partial) {
  plugins::PartialSink sink;
  if (on_partial) {
    sink = [&](std::string_view bytes) {
      std::string why = read_message<plugin_wire::PluginPartial>(bytes, on_partial);
      if (!why.empty())
        spdlog::warn("{}a partial result {}; skipped", who.empty() ? "" : std::string(who) + ": ",
                     why);
    };
  }
  plugins::CallResult r = channel.call(request, timeout, max_reply_bytes, sink);
  const bool retryable = r.status == MEMOS_ERR_BUSY;
  if (r.reply.empty() || r.reply.size() % sizeof(capnp::word) != 0) {
    std::string error = r.message.empty() ? "empty or misaligned reply" : r.message;
    return Status::plugin_failure(who.empty() ? error : std::string(who) + ": " + error, retryable);
  }
  std::string error;
  std::string decode_error = read_message<plugin_wire::PluginResponse>(
      r.reply, [&](plugin_wire::PluginResponse::Reader response) {
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
  if (!decode_error.empty()) error = "reply " + decode_error;
  if (error.empty()) return {};
  return Status::plugin_failure(who.empty() ? error : std::string(who) + ": " + error, retryable);
}

}  // namespace memos::kernel
