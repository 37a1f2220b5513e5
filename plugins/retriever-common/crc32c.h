// crc32c.h — CRC-32C (Castagnoli), the checksum of the retrievers' files
// (faiss-retriever's snapshots, xapian-retriever's transfer files).
//
// A local copy of memcube/crc32c (table, and SSE4.2 where the CPU has it):
// a plugin must not link the store. Same polynomial, so the two agree.
// `crc` continues a checksum: crc32c(b, nb, crc32c(a, na)) is the CRC of a
// then b, which lets a file be checksummed as it is streamed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memos::retrieval {

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace memos::retrieval
