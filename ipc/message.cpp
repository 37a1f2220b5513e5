#include "ipc/message.h"

namespace memos::ipc {

capnp::ReaderOptions frame_reader_options(std::size_t frame_words, int nesting_limit) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = frame_words * 2 + 16;
  options.nestingLimit = nesting_limit;
  return options;
}

kj::Array<capnp::word> encode_frame(capnp::MessageBuilder& message) {
  return capnp::messageToFlatArray(message);
}

}  // namespace memos::ipc
