// An embedder that misbehaves on purpose, for the isolation tests: run in
// memos-plugin-host, each of its failures must cost memosd nothing but the
// call. A text holding a trigger word of misbehave.h makes it die, hang, hog
// memory or answer badly; anything else is embedded as normalised letter
// counts. With the setting dawdle_ms (its manifest's [settings]), a text
// holding "dawdle" is embedded that late: one node's embedder made slower
// than another's (test_cluster).
#include <unistd.h>

#include <cmath>
#include <string_view>
#include <vector>

#include "memos/plugin_sdk.h"
#include "misbehave.h"

namespace {

using memos::test_plugins::BadReply;

class Crasher final : public memos::plugin_sdk::Plugin {
 public:
  explicit Crasher(const memos::plugin_sdk::Config& config)
      : dawdle_ms_(config.get_int("dawdle_ms", 0, 0, 60000)) {}

  memos_status handle(const memos::plugin_sdk::Request& request,
                      memos::plugin_sdk::Reply reply) override {
    if (request.isDescribe()) {
      auto e = reply.initCapabilities().initEmbedder();
      e.setModel("letter-counts");
      e.setDimension(26);
      e.setMaxBatch(64);
      return MEMOS_OK;
    }
    if (!request.isEmbed()) return fail(reply, MEMOS_ERR_UNSUPPORTED, "embed only");
    auto texts = request.getEmbed().getTexts();
    std::uint32_t dim = request.getEmbed().getDimension() ? request.getEmbed().getDimension() : 26;
    BadReply bad = BadReply::none;
    for (auto t : texts) {
      BadReply b = memos::test_plugins::misbehave(std::string_view(t.cStr(), t.size()));
      if (b != BadReply::none) bad = b;
    }
    if (dawdle_ms_ > 0) {
      for (auto t : texts) {
        if (std::string_view(t.cStr(), t.size()).find("dawdle") == std::string_view::npos) continue;
        ::usleep(static_cast<useconds_t>(dawdle_ms_) * 1000);
        break;
      }
    }
    switch (bad) {
      case BadReply::wrong_kind:
        reply.initHits(1);
        return MEMOS_OK;
      case BadReply::silent:
        return MEMOS_OK;
      case BadReply::none:
        break;
    }
    auto out = reply.initEmbeddings();
    out.setDimension(dim);
    auto values = out.initValues(texts.size() * dim);
    for (unsigned i = 0; i < texts.size(); ++i) {
      std::vector<float> v(dim, 0.0f);
      for (char c : std::string_view(texts[i].cStr(), texts[i].size())) {
        if (c >= 'a' && c <= 'z') v[static_cast<unsigned>(c - 'a') % dim] += 1;
      }
      float norm = 0;
      for (float x : v) norm += x * x;
      for (unsigned d = 0; d < dim; ++d)
        values.set(i * dim + d, norm > 0 ? v[d] / std::sqrt(norm) : 0);
    }
    return MEMOS_OK;
  }

 private:
  long long dawdle_ms_;
};

}  // namespace

MEMOS_MISBEHAVING_PLUGIN(Crasher, "crasher", "1", MEMOS_KIND_EMBEDDER)
