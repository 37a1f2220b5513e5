// The hash-v1 embedder as a memosd plugin (memos-plugin(7)): the built-in,
// model-free embedder of hash_embedder.h behind the plugin ABI.
#include "memos/plugin_sdk.h"
#include "plugins/hash-embedder/hash_embedder.h"

namespace {

using memos::plugin_sdk::Config;
using memos::plugin_sdk::Reply;
using memos::plugin_sdk::Request;

class HashEmbedderPlugin final : public memos::plugin_sdk::Plugin {
 public:
  explicit HashEmbedderPlugin(const Config& config)
      : default_dimension_(static_cast<std::uint32_t>(config.get_int("dimension", 256, 16, 4096))),
        max_batch_(static_cast<std::uint32_t>(config.get_int("max_batch", 4096, 1, 1 << 20))) {}

  memos_status handle(const Request& request, Reply reply) override {
    switch (request.which()) {
      case memos::plugin_wire::PluginRequest::DESCRIBE: {
        auto caps = reply.initCapabilities();
        caps.setKinds(MEMOS_KIND_EMBEDDER);
        auto e = caps.initEmbedder();
        e.setModel(std::string(memos::embed::HashEmbedder::kName));
        e.setDimension(default_dimension_);
        e.setMaxBatch(max_batch_);
        e.setNormalized(true);
        return MEMOS_OK;
      }
      case memos::plugin_wire::PluginRequest::EMBED:
        return embed(request.getEmbed(), reply);
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "hash-embedder only describes and embeds");
    }
  }

 private:
  memos_status embed(memos::plugin_wire::EmbedRequest::Reader request, Reply reply) {
    auto texts = request.getTexts();
    std::uint32_t dimension = request.getDimension() ? request.getDimension() : default_dimension_;
    if (dimension < 16 || dimension > 4096) {
      return fail(reply, MEMOS_ERR_INVALID, "dimension must be between 16 and 4096");
    }
    if (texts.size() > max_batch_) {
      return fail(reply, MEMOS_ERR_INVALID, "more texts than max_batch in one call");
    }
    memos::embed::HashEmbedder embedder(dimension);
    auto out = reply.initEmbeddings();
    out.setDimension(dimension);
    auto values = out.initValues(texts.size() * dimension);
    std::vector<float> vector(dimension);
    for (unsigned i = 0; i < texts.size(); ++i) {
      embedder.embed(std::string_view(texts[i].cStr(), texts[i].size()), vector);
      for (unsigned d = 0; d < dimension; ++d) values.set(i * dimension + d, vector[d]);
    }
    return MEMOS_OK;
  }

  std::uint32_t default_dimension_;
  std::uint32_t max_batch_;
};

}  // namespace

MEMOS_PLUGIN(HashEmbedderPlugin, "hash-embedder", "1.0.0", MEMOS_KIND_EMBEDDER)
