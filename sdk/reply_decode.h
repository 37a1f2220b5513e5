// sdk/reply_decode.h — turning memosd's replies into the SDK's values: the
// wire's error codes into ErrorCode, each reply struct into its value (Item,
// Cube, PluginInfo, Snapshot, Activation), and the decoders several calls
// share. Names and enum values are read through ReplyReader, which fails the
// call on one this client does not know (client.h, Errors). Internal to the
// SDK: every call of Client passes one of these, or a lambda built on them,
// to Impl::call as its decode step.
#pragma once

#include <string>
#include <utility>

#include "ipc/schema/memos.capnp.h"
#include "memos/types.h"

namespace memos::sdk {

ErrorCode from_wire(wire::ErrorCode code);

Error protocol_error(const std::string& what);

// The reply is of another kind than the request asks for.
template <class T>
Result<T> wrong_reply() {
  return protocol_error("reply does not match the request");
}

// Reads the named values of one reply. The first value this client does not
// know (a newer memosd's) is remembered and fails the call in finish(): a
// stand-in value would misreport it (a frozen item read as active).
class ReplyReader {
 public:
  Tier tier(wire::Tier wire);
  State state(wire::State wire);
  SearchMode search_mode(capnp::Text::Reader name);
  // A cube made before cubes had a default retriever has none: memosd
  // searches it densely, so it reads as dense.
  SearchMode default_retriever(capnp::Text::Reader name);
  PluginState plugin_state(capnp::Text::Reader name);
  Module module(capnp::Text::Reader name);
  CostTier cost_tier(capnp::Text::Reader name);
  Route route(capnp::Text::Reader text);  // "retrieve=mid,temporal=low,..."
  // memosd's status text: one of the outcome's forms, then "; not stored:
  // why" when storing the block's state failed (to_string's form). A form
  // this client does not know comes from an executor that did not restore
  // the state it was given, which memosd treats as a rejection (it drops the
  // state), so it reads as one, the text being the reason.
  void activation_status(capnp::Text::Reader text, ChatReply* out);

  template <class T>
  Result<T> finish(T value) {
    if (!unknown_.empty()) {
      return protocol_error("the reply holds " + unknown_ +
                            ", which this client does not know (is memosd newer?)");
    }
    return value;
  }

 private:
  void unknown(std::string what);
  std::string unknown_;
};

Item to_item(ReplyReader& in, wire::Item::Reader r);
// A routed search's or chat's modules (memos(7), "Routing").
std::vector<ModuleRun> to_module_runs(ReplyReader& in, capnp::List<wire::ModuleRun>::Reader list);
// How their tiers were chosen; a route that does not parse is the
// reply's error (an unknown module or tier).
RouterChoice to_router_choice(ReplyReader& in, wire::RouterChoice::Reader r);
Cube to_cube(ReplyReader& in, wire::Cube::Reader r);
PluginInfo to_plugin(ReplyReader& in, wire::PluginInfo::Reader r);
Snapshot to_snapshot(wire::Snapshot::Reader r);
Activation to_activation(wire::Activation::Reader a);

// The replies several calls share.
Result<Item> decode_item(const wire::Response::Reader& r);
Result<Cube> decode_cube(const wire::Response::Reader& r);
Result<PluginInfo> decode_plugin(const wire::Response::Reader& r);
Result<PolicyInfo> decode_policy(const wire::Response::Reader& r);
Result<Activation> decode_activation(const wire::Response::Reader& r);

}  // namespace memos::sdk
