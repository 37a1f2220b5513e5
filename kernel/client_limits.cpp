#include "kernel/client_limits.h"

#include <string>

namespace memos::kernel {

ClientLimits::ClientLimits(const IpcConfig& config, std::uint32_t own_uid)
    : config_(config), own_uid_(own_uid) {}

std::size_t ClientLimits::connections_of(std::uint32_t uid) const {
  auto it = per_uid_connections_.find(uid);
  return it == per_uid_connections_.end() ? 0 : it->second;
}

Status ClientLimits::admit(std::uint32_t uid) const {
  std::size_t reserve = is_admin(uid) ? config_.admin_reserved_connections : 0;
  std::size_t per_uid = std::size_t{config_.max_connections_per_uid} + reserve;
  if (connections_of(uid) >= per_uid) {
    return {Code::busy,
            "too many connections for uid " + std::to_string(uid) + " (limit " +
                std::to_string(per_uid) + "); close some and retry",
            true};
  }
  std::size_t total = std::size_t{config_.max_connections} + reserve;
  if (connections_ >= total) {
    return {Code::busy,
            "memosd has too many connections (limit " + std::to_string(total) + "); retry later",
            true};
  }
  return Status::success();
}

void ClientLimits::opened(std::uint32_t uid) {
  ++connections_;
  ++per_uid_connections_[uid];
}

void ClientLimits::closed(std::uint32_t uid) {
  --connections_;
  auto it = per_uid_connections_.find(uid);
  if (--it->second == 0) per_uid_connections_.erase(it);
}

Status ClientLimits::reserve_input(std::uint32_t uid, std::size_t bytes) {
  std::size_t& mine = per_uid_buffered_[uid];
  if (bytes > kSmallFrameBytes) {
    if (mine + bytes > config_.max_buffered_input_bytes_per_uid) {
      if (mine == 0) per_uid_buffered_.erase(uid);
      return {Code::busy,
              "uid " + std::to_string(uid) + " already has " + std::to_string(mine) +
                  " bytes of unfinished requests buffered; a frame of " + std::to_string(bytes) +
                  " bytes would pass max_buffered_input_bytes_per_uid (" +
                  std::to_string(config_.max_buffered_input_bytes_per_uid) + "); retry later",
              true};
    }
    if (buffered_ + bytes > config_.max_buffered_input_bytes) {
      if (mine == 0) per_uid_buffered_.erase(uid);
      return {Code::busy,
              "memosd is buffering too much input (" + std::to_string(buffered_) +
                  " bytes across all connections, limit " +
                  std::to_string(config_.max_buffered_input_bytes) + "); retry this request later",
              true};
    }
  }
  mine += bytes;
  buffered_ += bytes;
  return Status::success();
}

void ClientLimits::release_input(std::uint32_t uid, std::size_t bytes) {
  if (bytes == 0) return;
  buffered_ -= bytes;
  auto it = per_uid_buffered_.find(uid);
  if ((it->second -= bytes) == 0) per_uid_buffered_.erase(it);
}

}  // namespace memos::kernel
