// A plugin written with the SDK that streams: each call sends the partials
// its request asks for (a tokenize request's text says how: "N" pieces of
// text "piece-0".."piece-N-1", or "huge": one partial over the host's
// limit), then answers with the tokens
// [pieces the host accepted, Call::streams()]. The loader's tests drive it
// in process and isolated.
#include <string>

#include "memos/plugin_sdk.h"

namespace {

namespace wire = memos::plugin_wire;

class Streamer final : public memos::plugin_sdk::Plugin {
 public:
  explicit Streamer(const memos::plugin_sdk::Config&) {}

  memos_status handle_call(const memos::plugin_sdk::Request& request,
                           memos::plugin_sdk::Reply reply,
                           const memos::plugin_sdk::Call& call) override {
    if (!request.isTokenize()) return fail(reply, MEMOS_ERR_UNSUPPORTED, "tokenize only");
    const std::string how = request.getTokenize().getText();
    int accepted = 0;
    if (how == "huge") {
      const std::string big(2u << 20, 'x');
      accepted += call.partial([&](wire::PluginPartial::Builder p) { p.setText(big); });
    } else {
      const int n = std::stoi(how);
      for (int i = 0; i < n; ++i) {
        const std::string piece = "piece-" + std::to_string(i);
        accepted += call.partial([&](wire::PluginPartial::Builder p) { p.setText(piece); });
      }
    }
    auto tokens = reply.initTokens(2);
    tokens.set(0, accepted);
    tokens.set(1, call.streams() ? 1 : 0);
    return MEMOS_OK;
  }
};

}  // namespace

MEMOS_PLUGIN(Streamer, "streamer", "1", MEMOS_KIND_EMBEDDER)
