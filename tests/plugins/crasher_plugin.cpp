// An embedder that misbehaves on purpose, for the isolation tests: run in
// memos-plugin-host, each of its failures must cost memosd nothing but the
// call. Texts containing a trigger word make it:
//   "segfault"  die of SIGSEGV        "abort"     abort()
//   "hang"      never answer          "exit"      call exit(3)
//   "terminate" let an exception escape through the C ABI (std::terminate)
// Anything else is embedded as normalised letter counts.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "memos/plugin_sdk.h"

namespace {

class Crasher final : public memos::plugin_sdk::Plugin {
 public:
  explicit Crasher(const memos::plugin_sdk::Config&) {}

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
    for (auto t : texts) misbehave(std::string_view(t.cStr(), t.size()));
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
  static void misbehave(std::string_view text) {
    if (text.find("segfault") != text.npos) ::raise(SIGSEGV);
    if (text.find("abort") != text.npos) std::abort();
    if (text.find("exit") != text.npos) std::exit(3);
    if (text.find("terminate") != text.npos) std::terminate();
    if (text.find("hang") != text.npos) {
      for (;;) ::pause();
    }
  }
};

}  // namespace

MEMOS_PLUGIN(Crasher, "crasher", "1", MEMOS_KIND_EMBEDDER)
