// connection.h — one client connection on the loop thread (every method;
// checked in debug builds against the thread that accepted it).
//
// Reads bytes, splits them into frames (ipc::FrameDecoder, which refuses
// hostile headers before buffering), decodes each request with traversal and
// nesting limits, and hands it to the owner. Many requests may be in flight;
// replies are written in the order they complete.
//
// Backpressure: requests past max_inflight_per_connection wait in a queue and
// reading stops until replies drain; when unsent reply bytes pass
// reply_buffer_bytes reading stops too, and a client that stays that way for
// slow_client_timeout_ms is dropped. Nothing here ever blocks the loop.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/schema/memos.capnp.h"
#include "kernel/config.h"
#include "kernel/uv_handle.h"
#include "memcube/thread_affinity.h"

namespace memos::kernel {

class Connection;

class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // A decoded request; the reply must come back through Connection::send
  // (looked up by id, since the connection may be gone by then).
  virtual void on_request(Connection& conn, wire::Request::Reader request) = 0;
  // The connection's handle is closed; the owner destroys it now.
  virtual void on_closed(Connection& conn) = 0;
};

class Connection {
 public:
  // Takes an accepted, initialised pipe. Constructed on the loop thread,
  // which it binds to.
  Connection(std::uint64_t id, UvHandle<uv_pipe_t> pipe, std::uint32_t tenant,
             const IpcConfig& config, ConnectionOwner& owner);
  // Normally after on_closed(); a connection destroyed while open closes its
  // handles without telling the owner.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::uint64_t id() const { return id_; }
  std::uint32_t tenant() const { return tenant_; }
  std::size_t in_flight() const { return in_flight_; }
  bool idle() const;  // nothing in flight, queued or unwritten

  void start();
  // Writes one reply frame and retires one in-flight request.
  void send(std::shared_ptr<kj::Array<capnp::word>> frame);
  // Stops reading new requests (shutdown); in-flight ones still complete.
  void stop_reading();
  // Closes now; unwritten replies are dropped. `why` is logged.
  void close(const std::string& why);

 private:
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_handle_closed(void* self);
  void handle_bytes(const char* data, std::size_t size);
  void dispatch_queued();
  bool dispatch(kj::Array<capnp::word> frame);
  void update_reading();
  void reply_and_close(std::uint64_t request_id, const std::string& why);

  ThreadAffinity loop_thread_;
  std::uint64_t id_;
  UvHandle<uv_pipe_t> pipe_;
  UvHandle<uv_timer_t> slow_timer_;
  std::uint32_t tenant_;
  const IpcConfig& config_;
  ConnectionOwner& owner_;
  ipc::FrameDecoder decoder_;
  std::deque<kj::Array<capnp::word>> queued_;  // decoded frames waiting for a slot
  std::vector<char> read_buffer_;
  std::size_t in_flight_ = 0;
  std::size_t unwritten_bytes_ = 0;
  bool reading_ = false;
  bool stopped_ = false;  // no more requests will be read; close once idle
  bool closing_ = false;
  int handles_open_ = 0;  // until close() completes: on_closed() at 0
};

}  // namespace memos::kernel
