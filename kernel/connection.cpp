#include "kernel/connection.h"

#include <capnp/serialize.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include "ipc/message.h"
#include "kernel/request_handler.h"

namespace memos::kernel {
namespace {

// One uv_write of the replies one loop turn gathered for a connection.
struct WriteRequest {
  uv_write_t req;
  std::vector<std::shared_ptr<kj::Array<capnp::word>>> frames;
  std::size_t bytes = 0;
  std::size_t answers = 0;  // frames that end a request (not partial replies)
};

}  // namespace

Connection::Connection(std::uint64_t id, UvHandle<uv_pipe_t> pipe, std::uint32_t uid,
                       const IpcConfig& config, ClientLimits& limits, std::span<char> read_buffer,
                       ConnectionOwner& owner)
    : id_(id),
      pipe_(std::move(pipe)),
      uid_(uid),
      config_(config),
      limits_(limits),
      owner_(owner),
      decoder_({config.max_message_bytes, config.max_segments},
               [this](std::size_t bytes) { return admit_frame(bytes); }),
      read_buffer_(read_buffer) {
  loop_thread_.bind();
  pipe_->data = this;
  slow_timer_.open(pipe_->loop, uv_timer_init);
  slow_timer_->data = this;
  input_timer_.open(pipe_->loop, uv_timer_init);
  input_timer_->data = this;
  flush_check_.open(pipe_->loop, uv_check_init);
  flush_check_->data = this;
  handles_open_ = 4;
}

Connection::~Connection() {
  // The handles are already closed unless the owner destroys an open
  // connection; then they close now (UvHandle) and on_closed() never comes.
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  limits_.release_input(uid_, reserved_input_);
}

void Connection::start() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  update_reading();
}

void Connection::refuse(const Status& why) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  refused_ = true;
  // Logged by the owner, which rate-limits refusals.
  stopped_ = true;
  ++in_flight_;
  send(error_frame(0, why));
}

bool Connection::admit_frame(std::size_t bytes) {
  refusal_ = limits_.reserve_input(uid_, bytes);
  if (!refusal_.ok()) return false;
  reserved_input_ += bytes;
  return true;
}

// The stream is no longer read: frames not yet dispatched, and the one half
// received, are dropped and their bytes given back.
void Connection::discard_input() {
  queued_.clear();
  decoder_.discard();
  limits_.release_input(uid_, reserved_input_);
  reserved_input_ = 0;
}

bool Connection::idle() const {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  return in_flight_ == 0 && queued_.empty() && unwritten_bytes_ == 0;
}

void Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  MEMOS_ASSERT_ON_THREAD(self->loop_thread_);
  *buf = uv_buf_init(self->read_buffer_.data(), static_cast<unsigned>(self->read_buffer_.size()));
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  MEMOS_ASSERT_ON_THREAD(self->loop_thread_);
  if (nread > 0) return self->handle_bytes(buf->base, static_cast<std::size_t>(nread));
  if (nread == UV_EOF) {
    // The client is done sending. Answer what it asked, then close.
    if (self->decoder_.mid_frame()) return self->close("stream ended inside a frame");
    self->stopped_ = true;
    self->update_reading();
    if (self->idle()) self->close("");
    return;
  }
  if (nread < 0) self->close(std::string("read failed: ") + uv_strerror(static_cast<int>(nread)));
}

void Connection::handle_bytes(const char* data, std::size_t size) {
  std::vector<kj::Array<capnp::word>> frames;
  ipc::FrameError error =
      decoder_.feed(std::span(reinterpret_cast<const std::byte*>(data), size), frames);
  // A frame completed: the next one, even if begun in the same read, gets a
  // frame timeout of its own.
  if (!frames.empty() && input_wait_ == InputWait::frame) {
    uv_timer_stop(input_timer_.get());
    input_wait_ = InputWait::none;
  }
  for (auto& f : frames) queued_.push_back(std::move(f));
  dispatch_queued();
  if (error != ipc::FrameError::none && !closing_ && !stopped_) {
    reply_and_close(
        0, error == ipc::FrameError::over_budget
               ? refusal_
               : Status::bad_request(std::string("protocol error: ") + ipc::describe(error)));
  }
}

void Connection::dispatch_queued() {
  while (!closing_ && !queued_.empty() && in_flight_ < config_.max_inflight_per_connection) {
    kj::Array<capnp::word> frame = std::move(queued_.front());
    queued_.pop_front();
    if (!dispatch(std::move(frame))) return;
  }
  update_reading();
}

bool Connection::dispatch(kj::Array<capnp::word> frame) {
  std::size_t bytes = frame.size() * sizeof(capnp::word);
  limits_.release_input(uid_, bytes);
  reserved_input_ -= bytes;
  ++in_flight_;
  std::uint64_t request_id = 0;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(
        frame, ipc::frame_reader_options(frame.size(), config_.nesting_limit));
    auto request = reader.getRoot<wire::Request>();
    request_id = request.getId();
    owner_.on_request(*this, request);
  });
  KJ_IF_MAYBE (e, failure) {
    // Not a request we can read: the stream can no longer be trusted.
    --in_flight_;
    reply_and_close(request_id, Status::bad_request(std::string("malformed request: ") +
                                                    e->getDescription().cStr()));
    return false;
  }
  return true;
}

void Connection::reply_and_close(std::uint64_t request_id, const Status& why) {
  spdlog::warn("connection {} (uid {}): {}; closing", id_, uid_, why.message);
  // Tell the client why, then close once that reply (and any in flight) is
  // written: stopped_ makes on_write close the idle connection.
  stopped_ = true;
  discard_input();
  ++in_flight_;
  send(error_frame(request_id, why));
}

void Connection::send(std::shared_ptr<kj::Array<capnp::word>> frame, bool last) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (closing_) return;
  if (last) ++outbox_answers_;
  // Counted now, so backpressure and idle() see the reply at once.
  unwritten_bytes_ += frame->asBytes().size();
  outbox_.push_back(std::move(frame));
  if (outbox_.size() == 1) {
    uv_check_start(flush_check_.get(),
                   [](uv_check_t* h) { static_cast<Connection*>(h->data)->flush(); });
  }
  update_reading();
}

// The check phase of the loop turn that queued the replies: all of them go
// in one uv_write, which libuv tries at once with one writev.
void Connection::flush() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  uv_check_stop(flush_check_.get());
  if (closing_ || outbox_.empty()) return;
  auto* wr = new WriteRequest{{}, std::move(outbox_), 0, outbox_answers_};
  outbox_.clear();
  outbox_answers_ = 0;
  write_bufs_.clear();
  for (const auto& frame : wr->frames) {
    auto bytes = frame->asBytes();
    write_bufs_.push_back(
        uv_buf_init(reinterpret_cast<char*>(bytes.begin()), static_cast<unsigned>(bytes.size())));
    wr->bytes += bytes.size();
  }
  int rc = uv_write(&wr->req, pipe_.stream(), write_bufs_.data(),
                    static_cast<unsigned>(write_bufs_.size()), &Connection::on_write);
  if (rc) {
    unwritten_bytes_ -= wr->bytes;
    in_flight_ -= wr->answers;
    delete wr;
    close(std::string("write failed: ") + uv_strerror(rc));
    return;
  }
  update_reading();
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* wr = reinterpret_cast<WriteRequest*>(req);
  // Through the handle, not a pointer of its own: a connection destroyed
  // while open leaves its pipe without data (UvHandle::reset()), and the
  // writes that its closing cancels land here with nobody to tell.
  auto* self = static_cast<Connection*>(req->handle->data);
  const std::size_t bytes = wr->bytes, answers = wr->answers;
  delete wr;
  if (!self) return;
  MEMOS_ASSERT_ON_THREAD(self->loop_thread_);
  // A request is retired once its reply is handed to the kernel, so the
  // in-flight count and the reply backlog move together.
  self->unwritten_bytes_ -= bytes;
  self->in_flight_ -= answers;
  if (self->closing_) return;  // cancelled by close(); the close callback finishes
  if (status < 0) return self->close(std::string("write failed: ") + uv_strerror(status));
  // The client read something: its slow-reader clock starts again.
  uv_timer_stop(self->slow_timer_.get());
  if (self->stopped_ && self->idle()) return self->close("");
  self->dispatch_queued();
}

void Connection::update_reading() {
  if (closing_) return;
  bool backlog = unwritten_bytes_ > config_.reply_buffer_bytes;
  bool want =
      !stopped_ && !backlog && queued_.empty() && in_flight_ < config_.max_inflight_per_connection;
  auto* stream = pipe_.stream();
  if (want && !reading_) {
    uv_read_start(stream, &Connection::on_alloc, &Connection::on_read);
    reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(stream);
    reading_ = false;
  }
  update_slow_timer();
  update_input_timer();
}

// Replies libuv could not hand to the kernel wait for the client to read
// (its socket buffer is full). However small they are, a client that reads
// none of them for slow_client_timeout_ms is dropped: otherwise one that
// pipelines small requests and never reads would sit at
// max_inflight_per_connection, unread, forever. Each reply written restarts
// the clock (on_write).
void Connection::update_slow_timer() {
  bool waiting = pipe_.stream()->write_queue_size > 0;
  bool timing = uv_is_active(slow_timer_.base());
  if (waiting && !timing) {
    uv_timer_start(
        slow_timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Connection*>(t->data);
          self->close("client does not read its replies");
        },
        config_.slow_client_timeout_ms, 0);
  } else if (!waiting && timing) {
    uv_timer_stop(slow_timer_.get());
  }
}

// While reading: a frame begun must be finished within frame_timeout_ms;
// with nothing begun and nothing in flight, the connection may stay idle for
// idle_timeout_ms (when set). Not reading (backpressure, stopping) stops
// both clocks: the wait is then memosd's, or the slow-reader clock's.
void Connection::update_input_timer() {
  InputWait want = InputWait::none;
  if (reading_ && decoder_.mid_frame()) {
    want = InputWait::frame;
  } else if (reading_ && config_.idle_timeout_ms > 0 && idle()) {
    want = InputWait::idle;
  }
  if (want == input_wait_) return;
  uv_timer_stop(input_timer_.get());
  input_wait_ = want;
  if (want == InputWait::none) return;
  uv_timer_start(
      input_timer_.get(),
      [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_input_timeout(); },
      want == InputWait::frame ? config_.frame_timeout_ms : config_.idle_timeout_ms, 0);
}

void Connection::on_input_timeout() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (closing_ || stopped_) return;
  if (input_wait_ == InputWait::frame) {
    reply_and_close(0, Status::bad_request("frame not complete within frame_timeout_ms (" +
                                           std::to_string(config_.frame_timeout_ms) + " ms)"));
  } else {
    reply_and_close(
        0, Status::unavailable("connection idle for idle_timeout_ms (" +
                               std::to_string(config_.idle_timeout_ms) + " ms); connect again"));
  }
}

void Connection::stop_reading() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  stopped_ = true;
  discard_input();
  update_reading();
  if (idle()) close("");
}

void Connection::close(const std::string& why) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (closing_) return;
  closing_ = true;
  if (!why.empty()) spdlog::info("connection {} (uid {}) closed: {}", id_, uid_, why);
  discard_input();
  outbox_.clear();  // never written: the client is gone or being dropped
  outbox_answers_ = 0;
  slow_timer_.close<&Connection::on_handle_closed>();
  input_timer_.close<&Connection::on_handle_closed>();
  flush_check_.close<&Connection::on_handle_closed>();
  pipe_.close<&Connection::on_handle_closed>();
}

void Connection::on_handle_closed(void* data) {
  auto* self = static_cast<Connection*>(data);
  // Requests still running on workers reply to a connection id that no
  // longer resolves; their replies are dropped by the owner.
  if (--self->handles_open_ == 0) self->owner_.on_closed(*self);
}

}  // namespace memos::kernel
