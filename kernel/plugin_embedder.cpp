#include "kernel/plugin_embedder.h"

#include <capnp/message.h>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_call.h"

namespace memos::kernel {

Status PluginEmbedder::embed(const std::vector<std::string_view>& texts, std::uint32_t dimension,
                             std::vector<float>* out) const {
  out->assign(texts.size() * dimension, 0.0f);
  for (std::size_t from = 0; from < texts.size(); from += max_batch_) {
    std::size_t count = std::min<std::size_t>(max_batch_, texts.size() - from);
    // The reply holds count x dimension floats plus a little framing.
    std::size_t max_reply = count * dimension * sizeof(float) + 4096;
    capnp::MallocMessageBuilder message;
    auto embed = message.initRoot<plugin_wire::PluginRequest>().initEmbed();
    embed.setDimension(dimension);
    auto list = embed.initTexts(static_cast<unsigned>(count));
    for (std::size_t i = 0; i < count; ++i) {
      list.set(static_cast<unsigned>(i),
               capnp::Text::Reader(texts[from + i].data(), texts[from + i].size()));
    }
    Status s =
        call_plugin("embedder " + name_, *channel_, request_bytes(message), timeout_, max_reply,
                    [&](plugin_wire::PluginResponse::Reader response) -> std::string {
                      if (!response.isEmbeddings()) return "the reply is not embeddings";
                      auto e = response.getEmbeddings();
                      auto values = e.getValues();
                      if (e.getDimension() != dimension || values.size() != count * dimension) {
                        return "embeddings of the wrong shape";
                      }
                      for (unsigned i = 0; i < values.size(); ++i)
                        (*out)[from * dimension + i] = values[i];
                      return "";
                    });
    if (!s.ok()) return s;
  }
  return {};
}

}  // namespace memos::kernel
