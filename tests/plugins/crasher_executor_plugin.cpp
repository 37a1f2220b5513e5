// An executor that misbehaves on purpose, for the isolation tests. Its
// "model" reads a token per byte of text and answers "fine" to anything:
// enough for memosd's chat path (chatTokens, then generate). A prompt whose
// text holds a trigger word of misbehave.h makes generate die, hang, hog
// memory or answer badly. Its model file is never read.
#include <string>
#include <string_view>

#include "memos/plugin_sdk.h"
#include "misbehave.h"

namespace {

using memos::test_plugins::BadReply;
namespace pw = memos::plugin_wire;

void set_bytes(capnp::List<std::int32_t>::Builder list, std::string_view text) {
  for (unsigned i = 0; i < text.size(); ++i) list.set(i, static_cast<unsigned char>(text[i]));
}

class CrasherExecutor final : public memos::plugin_sdk::Plugin {
 public:
  explicit CrasherExecutor(const memos::plugin_sdk::Config&) {}

  memos_status handle(const memos::plugin_sdk::Request& request,
                      memos::plugin_sdk::Reply reply) override {
    switch (request.which()) {
      case pw::PluginRequest::DESCRIBE: {
        auto caps = reply.initCapabilities();
        caps.setKinds(MEMOS_KIND_EXECUTOR);
        auto e = caps.initExecutor();
        e.setModel("bytes");
        e.setModelHash(std::string(64, 'b'));
        e.setKvType("f16");
        e.setLayout("none");
        e.setStateFormat(1);
        e.setContextTokens(1 << 16);
        e.setBatchTokens(512);
        e.setVocabulary(256);
        return MEMOS_OK;
      }
      case pw::PluginRequest::TOKENIZE: {
        auto text = request.getTokenize().getText();
        set_bytes(reply.initTokens(text.size()), {text.cStr(), text.size()});
        return MEMOS_OK;
      }
      case pw::PluginRequest::CHAT_TOKENS: {
        auto in = request.getChatTokens();
        auto out = reply.initChatTokens();
        set_bytes(out.initBlock(in.getSystem().size()),
                  {in.getSystem().cStr(), in.getSystem().size()});
        set_bytes(out.initQuestion(in.getUser().size()),
                  {in.getUser().cStr(), in.getUser().size()});
        out.setFormat("plain");
        return MEMOS_OK;
      }
      case pw::PluginRequest::PREFILL: {
        auto p = reply.initPrefilled();
        p.setState(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("state"), 5));
        p.setTokens(request.getPrefill().getTokens().size());
        return MEMOS_OK;
      }
      case pw::PluginRequest::GENERATE:
        return generate(request.getGenerate(), reply);
      case pw::PluginRequest::EXECUTOR_STATUS:
        reply.initExecutorStatus();
        return MEMOS_OK;
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "an executor only");
    }
  }

 private:
  static memos_status generate(pw::GenerateRequest::Reader in, memos::plugin_sdk::Reply reply) {
    std::string prompt;
    for (std::int32_t t : in.getTokens()) prompt.push_back(static_cast<char>(t));
    switch (memos::test_plugins::misbehave(prompt)) {
      case BadReply::wrong_kind:
        reply.initTokens(1);
        return MEMOS_OK;
      case BadReply::silent:
        return MEMOS_OK;
      case BadReply::none:
        break;
    }
    auto g = reply.initGenerated();
    g.setText("fine");
    set_bytes(g.initTokens(4), "fine");
    g.setPromptTokens(in.getTokens().size());
    g.setStateStatus("none");
    g.setFinish("length");
    return MEMOS_OK;
  }
};

}  // namespace

MEMOS_MISBEHAVING_PLUGIN(CrasherExecutor, "crasher-executor", "1", MEMOS_KIND_EXECUTOR)
