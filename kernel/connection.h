// connection.h — one client connection on the loop thread (every method;
// checked in debug builds against the thread that accepted it).
//
// Reads bytes, splits them into frames (ipc::FrameDecoder, which refuses
// hostile headers before buffering), decodes each request with traversal and
// nesting limits, and hands it to the owner. Many requests may be in flight;
// replies are written in the order they complete. Every frame a read brings
// is decoded and dispatched in that one callback; the replies of one loop
// turn are written together, one uv_write (one writev) per connection, from
// a check handle that runs once the turn's I/O callbacks are done.
//
// Backpressure: requests past max_inflight_per_connection wait in a queue and
// reading stops until replies drain; when unsent reply bytes pass
// reply_buffer_bytes reading stops too. Replies that wait for the client to
// read them (the socket buffer is full), however small, with no reply
// written for slow_client_timeout_ms, get the client dropped.
//
// Input: every frame is admitted against ClientLimits (the daemon's and the
// uid's bound on buffered input) before its body is allocated, and counted
// until it is dispatched; a frame begun must be complete within
// frame_timeout_ms; a connection idle for idle_timeout_ms (when set) is
// closed. Each refusal is a typed error reply (request id 0), then the
// connection closes. Nothing here ever blocks the loop.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/schema/memos.capnp.h"
#include "kernel/client_limits.h"
#include "kernel/config.h"
#include "kernel/status.h"
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
  // `read_buffer` is the loop's one buffer for reads, shared by every
  // connection: libuv reads one stream at a time on the loop thread and the
  // decoder copies out what it keeps, so an idle connection costs no buffer.
  Connection(std::uint64_t id, UvHandle<uv_pipe_t> pipe, std::uint32_t uid, const IpcConfig& config,
             ClientLimits& limits, std::span<char> read_buffer, ConnectionOwner& owner);
  // Normally after on_closed(); a connection destroyed while open closes its
  // handles without telling the owner.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::uint64_t id() const { return id_; }
  // The peer's uid, as the kernel reported it (its tenant is the policies' business).
  std::uint32_t uid() const { return uid_; }
  std::size_t in_flight() const { return in_flight_; }
  bool idle() const;  // nothing in flight, queued or unwritten

  void start();
  // Instead of start(): answers `why` (request id 0) without reading
  // anything, then closes.
  void refuse(const Status& why);
  bool refused() const { return refused_; }
  // Queues one reply frame, written with the others of this loop turn; a
  // frame that ends its request (`last`; not a partial reply) retires one
  // in-flight request once written. A write error closes the connection
  // (logged).
  void send(std::shared_ptr<kj::Array<capnp::word>> frame, bool last = true);
  // Stops reading new requests (shutdown); in-flight ones still complete.
  void stop_reading();
  // Closes now; unwritten replies are dropped. `why` is logged.
  void close(const std::string& why);

 private:
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  void flush();
  static void on_handle_closed(void* self);
  void handle_bytes(const char* data, std::size_t size);
  void dispatch_queued();
  bool dispatch(kj::Array<capnp::word> frame);
  void update_reading();
  void update_slow_timer();
  void update_input_timer();
  void on_input_timeout();
  bool admit_frame(std::size_t bytes);
  void discard_input();
  void reply_and_close(std::uint64_t request_id, const Status& why);

  ThreadAffinity loop_thread_;
  std::uint64_t id_;
  UvHandle<uv_pipe_t> pipe_;
  UvHandle<uv_timer_t> slow_timer_;
  // Active while replies wait in outbox_: flush() at the end of the turn.
  UvHandle<uv_check_t> flush_check_;
  std::vector<std::shared_ptr<kj::Array<capnp::word>>> outbox_;
  std::size_t outbox_answers_ = 0;    // of outbox_, the frames that end a request
  std::vector<uv_buf_t> write_bufs_;  // flush()'s, kept to spare an allocation
  // The frame timeout while a frame is half received, else the idle timeout.
  UvHandle<uv_timer_t> input_timer_;
  enum class InputWait { none, frame, idle };
  InputWait input_wait_ = InputWait::none;
  std::uint32_t uid_;
  const IpcConfig& config_;
  ClientLimits& limits_;
  ConnectionOwner& owner_;
  std::size_t reserved_input_ = 0;  // bytes of frames admitted, not yet dispatched
  Status refusal_;                  // why admit_frame() last said no
  ipc::FrameDecoder decoder_;
  std::deque<kj::Array<capnp::word>> queued_;  // decoded frames waiting for a slot
  std::span<char> read_buffer_;
  std::size_t in_flight_ = 0;
  std::size_t unwritten_bytes_ = 0;
  bool reading_ = false;
  bool stopped_ = false;  // no more requests will be read; close once idle
  bool closing_ = false;
  bool refused_ = false;
  int handles_open_ = 0;  // until close() completes: on_closed() at 0
};

}  // namespace memos::kernel
