#include "kernel/plugin_embedder.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "ipc/schema/plugin.capnp.h"

namespace memos::kernel {
namespace {

std::string request_bytes(const std::vector<std::string_view>& texts, std::size_t from,
                          std::size_t count, std::uint32_t dimension) {
  capnp::MallocMessageBuilder message;
  auto embed = message.initRoot<plugin_wire::PluginRequest>().initEmbed();
  embed.setDimension(dimension);
  auto list = embed.initTexts(static_cast<unsigned>(count));
  for (std::size_t i = 0; i < count; ++i) {
    list.set(static_cast<unsigned>(i),
             capnp::Text::Reader(texts[from + i].data(), texts[from + i].size()));
  }
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

}  // namespace

std::string PluginEmbedder::embed(const std::vector<std::string_view>& texts,
                                  std::uint32_t dimension, std::vector<float>* out) const {
  out->assign(texts.size() * dimension, 0.0f);
  const std::string& name = name_;
  for (std::size_t from = 0; from < texts.size(); from += max_batch_) {
    std::size_t count = std::min<std::size_t>(max_batch_, texts.size() - from);
    // The reply holds count x dimension floats plus a little framing.
    std::size_t max_reply = count * dimension * sizeof(float) + 4096;
    plugins::CallResult r =
        channel_->call(request_bytes(texts, from, count, dimension), timeout_, max_reply);
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
        error = response.getError().getMessage();
        return;
      }
      if (r.status != MEMOS_OK || !response.isEmbeddings()) {
        error = "the reply is not embeddings";
        return;
      }
      auto e = response.getEmbeddings();
      auto values = e.getValues();
      if (e.getDimension() != dimension || values.size() != count * dimension) {
        error = "embeddings of the wrong shape";
        return;
      }
      for (unsigned i = 0; i < values.size(); ++i) (*out)[from * dimension + i] = values[i];
    });
    KJ_IF_MAYBE (e, failure) {
      error = std::string("reply does not decode: ") + e->getDescription().cStr();
    }
    if (!error.empty()) return "embedder " + name + ": " + error;
  }
  return "";
}

}  // namespace memos::kernel
