// A plugin written with the SDK whose handle() throws: the SDK must turn it
// into an error reply, never let it cross into the host.
#include <stdexcept>

#include "memos/plugin_sdk.h"

namespace {

class Thrower final : public memos::plugin_sdk::Plugin {
 public:
  explicit Thrower(const memos::plugin_sdk::Config& config) {
    if (config.get("fail_create") == "yes") throw std::invalid_argument("fail_create is set");
  }
  memos_status handle(const memos::plugin_sdk::Request&, memos::plugin_sdk::Reply) override {
    throw std::runtime_error("thrown inside the plugin");
  }
};

}  // namespace

MEMOS_PLUGIN(Thrower, "thrower", "1", MEMOS_KIND_EMBEDDER)
