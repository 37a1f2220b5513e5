// crc32c.h — CRC-32C (Castagnoli), the checksum of every stored record.
// Chosen over CRC-32 for its better error detection on short records; the
// same polynomial as iSCSI, ext4 metadata and LevelDB.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memos::store {

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace memos::store
