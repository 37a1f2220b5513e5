// crc32c.h — CRC-32C (Castagnoli), the checksum of a snapshot file.
//
// A local copy of memcube/crc32c: the plugin must not link the store, and
// the routine is a dozen lines. Same polynomial, so the two agree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memos::faiss_retriever {

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace memos::faiss_retriever
