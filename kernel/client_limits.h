// client_limits.h — how much of memosd one user may hold: connections and
// buffered input (loop thread only, like the connections it counts).
//
// Connections: each uid may hold ipc.max_connections_per_uid, and all
// together ipc.max_connections. Root and memosd's own uid (the admins) may
// go ipc.admin_reserved_connections past both, so a flood from users never
// locks the administrator out.
//
// Input: a frame is buffered whole, from the moment its header announces its
// size until it is dispatched. Frames larger than kSmallFrameBytes are
// admitted only while the bytes buffered stay within
// ipc.max_buffered_input_bytes for the daemon and
// ipc.max_buffered_input_bytes_per_uid for their uid; smaller ones always are
// (they are bounded by the connection count times the read buffer).
//
// Errors: admit() and reserve_input() return the refusal to send the client,
// `busy` and retryable (the same connection or frame may be accepted once
// others close or drain).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "kernel/admin.h"
#include "kernel/config.h"
#include "kernel/status.h"

namespace memos::kernel {

class ClientLimits {
 public:
  static constexpr std::size_t kSmallFrameBytes = 64 * 1024;

  ClientLimits(const IpcConfig& config, std::uint32_t own_uid);

  bool is_admin(std::uint32_t uid) const { return kernel::is_admin(uid, own_uid_); }

  // Whether a new connection from `uid` may open now; opened() counts it.
  Status admit(std::uint32_t uid) const;
  void opened(std::uint32_t uid);
  void closed(std::uint32_t uid);
  std::size_t connections() const { return connections_; }
  std::size_t connections_of(std::uint32_t uid) const;
  // Counts a refused connection of `uid`; returns how many so far (the
  // daemon logs the 1st, 2nd, 4th, 8th... so a flood cannot flood the log).
  std::uint64_t note_refusal(std::uint32_t uid) { return ++refusals_[uid]; }

  // A frame of `bytes` from `uid` is about to be buffered: reserves them, or
  // returns the refusal. release_input() gives them back once the frame is
  // dispatched or dropped.
  Status reserve_input(std::uint32_t uid, std::size_t bytes);
  void release_input(std::uint32_t uid, std::size_t bytes);
  std::size_t buffered_input() const { return buffered_; }

 private:
  const IpcConfig& config_;
  std::uint32_t own_uid_;
  std::size_t connections_ = 0;
  std::size_t buffered_ = 0;
  std::map<std::uint32_t, std::size_t> per_uid_connections_;
  std::map<std::uint32_t, std::size_t> per_uid_buffered_;
  std::map<std::uint32_t, std::uint64_t> refusals_;
};

}  // namespace memos::kernel
