// tcp_dial.h — a TCP connection to "host:port" (optionally "nats://",
// "tls://", "http://" or "https://" before it, "/" after), within a deadline: the engines' clients
// (nats_connection.h, etcd_client.h) connect through it, so that a
// partitioned server costs the deadline, not TCP's minutes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace memos::cluster {

// Splits "host:port" (a bracketed IPv6 host loses its brackets). False if
// either part is missing.
bool split_host_port(std::string_view server, std::string* host, std::string* port);
// The connected, blocking, close-on-exec descriptor, or -1 with `why` set
// (the resolver's or the system's words, or "timed out").
int tcp_dial(const std::string& server, std::chrono::milliseconds timeout, std::string* why);

}  // namespace memos::cluster
