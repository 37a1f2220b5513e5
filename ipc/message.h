// message.h — reading and writing whole Cap'n Proto frames with limits.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstddef>

namespace memos::ipc {

// Reader options for one received frame of `frame_words` words. The traversal
// limit is proportional to the frame (twice its size, so a message cannot
// amplify reads through shared pointers) and nesting is bounded, so a hostile
// message costs at most a small multiple of its own size to read.
capnp::ReaderOptions frame_reader_options(std::size_t frame_words, int nesting_limit);

// The frame bytes of `message` (segment table plus segments).
kj::Array<capnp::word> encode_frame(capnp::MessageBuilder& message);

}  // namespace memos::ipc
