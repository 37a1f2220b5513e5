// le_bytes.h — fixed-width little-endian integers in byte strings, as the
// store's rows (access_store.cpp) and the cube archive (archive.cpp, the
// daemon's export) lay them out: lowest byte first whatever the host's
// order, so files and rows read the same on every machine. The caller
// checks that `bytes` (1 to 8) bytes are there; nothing here can fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace memos::store {

inline void put_le(std::string* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline std::uint64_t get_le(std::string_view s, std::size_t at, int bytes) {
  return get_le(s.data() + at, bytes);
}

}  // namespace memos::store
