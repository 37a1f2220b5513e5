// sdk/wire_text.h — the strings of requests and replies: std::string to and
// from Cap'n Proto Text, and the lists of them (tags, metadata) a request
// fills. Every call's request builder and reply decoder goes through these,
// so a string crosses the wire one way only (with its size, not to its first
// NUL). Internal to the SDK.
#pragma once

#include <capnp/blob.h>

#include <string>
#include <vector>

#include "memos/types.h"

namespace memos::sdk {

inline capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

inline std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

template <class List>
void set_texts(List list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, text(values[i]));
}

template <class List>
void set_meta(List list, const std::vector<MetaEntry>& values) {
  for (unsigned i = 0; i < values.size(); ++i) {
    list[i].setKey(text(values[i].key));
    list[i].setValue(text(values[i].value));
  }
}

// A request's route text: every module of its fixed route named, then its
// answer tier when it names one ("answer=high" alone beside budget auto).
inline std::string route_text(const Routing& routing) {
  std::string out = routing.route ? to_string(*routing.route) : std::string();
  if (routing.answer) {
    if (!out.empty()) out += ',';
    out += std::string("answer=") + to_string(*routing.answer);
  }
  return out;
}

}  // namespace memos::sdk
