// systemd.h — memosd as a systemd service: readiness and status
// notifications, the watchdog, and socket activation. Each is a no-op when
// memosd is not run by systemd (no NOTIFY_SOCKET, no LISTEN_FDS).
#pragma once

#include <cstdint>
#include <string>

namespace memos::kernel::systemd {

// Sends `state` ("READY=1", "STATUS=...", ...) to the service manager.
void notify(const std::string& state);
// The watchdog interval systemd asked for (WatchdogSec=), 0 if none.
std::uint64_t watchdog_usec();
// The listening socket systemd passed (socket activation), or -1 if none.
// Returns -2 and sets `error` if what was passed is not one Unix stream
// socket in listening state.
int listening_socket(std::string* error);

}  // namespace memos::kernel::systemd
