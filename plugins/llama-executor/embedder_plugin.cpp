// A GGUF model as a memosd embedder plugin (memos-plugin(7)): mean-pooled,
// L2-normalized embeddings of the model's last hidden layer.
#include <stdexcept>

#include "memos/plugin_sdk.h"
#include "plugins/llama-executor/embedder.h"

namespace {

using memos::llama_exec::Embedder;
using memos::plugin_sdk::Config;
using memos::plugin_sdk::Reply;
using memos::plugin_sdk::Request;
namespace wire = memos::plugin_wire;

class LlamaEmbedderPlugin final : public memos::plugin_sdk::Plugin {
 public:
  explicit LlamaEmbedderPlugin(const Config& config)
      : embedder_(memos::llama_exec::read_settings(config)) {}

  memos_status handle(const Request& request, Reply reply) override {
    switch (request.which()) {
      case wire::PluginRequest::DESCRIBE: {
        auto caps = reply.initCapabilities();
        caps.setKinds(MEMOS_KIND_EMBEDDER);
        auto e = caps.initEmbedder();
        e.setModel(embedder_.model_id());
        e.setDimension(embedder_.dimension());
        e.setMaxBatch(embedder_.max_batch());
        e.setNormalized(true);
        return MEMOS_OK;
      }
      case wire::PluginRequest::EMBED:
        return embed(request.getEmbed(), reply);
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "llama-embedder only describes and embeds");
    }
  }

 private:
  memos_status embed(wire::EmbedRequest::Reader request, Reply reply) {
    const std::uint32_t dimension = embedder_.dimension();
    if (request.getDimension() != 0 && request.getDimension() != dimension) {
      return fail(reply, MEMOS_ERR_INVALID,
                  "dimension " + std::to_string(request.getDimension()) + ": this model's is " +
                      std::to_string(dimension));
    }
    auto texts = request.getTexts();
    if (texts.size() > embedder_.max_batch()) {
      return fail(reply, MEMOS_ERR_INVALID, "more texts than max_batch in one call");
    }
    std::vector<float> vectors;
    vectors.reserve(std::size_t{texts.size()} * dimension);
    for (auto text : texts) embedder_.embed(std::string_view(text.cStr(), text.size()), vectors);
    auto out = reply.initEmbeddings();
    out.setDimension(dimension);
    auto values = out.initValues(static_cast<unsigned>(vectors.size()));
    for (unsigned i = 0; i < vectors.size(); ++i) values.set(i, vectors[i]);
    return MEMOS_OK;
  }

  Embedder embedder_;
};

}  // namespace

MEMOS_PLUGIN(LlamaEmbedderPlugin, "llama-embedder", "1.0", MEMOS_KIND_EMBEDDER)
