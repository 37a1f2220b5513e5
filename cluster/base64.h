// base64.h — Base64 (RFC 4648, padded): how etcd's JSON gateway carries keys
// and values, and how JetStream's API carries a stored message's bytes and
// headers.
#pragma once

#include <string>
#include <string_view>

namespace memos::cluster {

std::string base64_encode(std::string_view bytes);
// False (and `*out` left partial) if `text` is not padded base64.
bool base64_decode(std::string_view text, std::string* out);

}  // namespace memos::cluster
