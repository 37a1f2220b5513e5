#include "kernel/connection.h"

#include <capnp/serialize.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include "ipc/message.h"
#include "kernel/request_handler.h"

namespace memos::kernel {
namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;

struct WriteRequest {
  uv_write_t req;
  std::shared_ptr<kj::Array<capnp::word>> frame;
};

}  // namespace

Connection::Connection(std::uint64_t id, UvHandle<uv_pipe_t> pipe, std::uint32_t tenant,
                       const IpcConfig& config, ConnectionOwner& owner)
    : id_(id),
      pipe_(std::move(pipe)),
      tenant_(tenant),
      config_(config),
      owner_(owner),
      decoder_({config.max_message_bytes, config.max_segments}),
      read_buffer_(kReadBufferBytes) {
  loop_thread_.bind();
  pipe_->data = this;
  slow_timer_.open(pipe_->loop, uv_timer_init);
  slow_timer_->data = this;
  handles_open_ = 2;
}

Connection::~Connection() {
  // The handles are already closed unless the owner destroys an open
  // connection; then they close now (UvHandle) and on_closed() never comes.
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
}

void Connection::start() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  update_reading();
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
  for (auto& f : frames) queued_.push_back(std::move(f));
  dispatch_queued();
  if (error != ipc::FrameError::none && !closing_ && !stopped_) {
    reply_and_close(0, std::string("protocol error: ") + ipc::describe(error));
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
    reply_and_close(request_id, std::string("malformed request: ") + e->getDescription().cStr());
    return false;
  }
  return true;
}

void Connection::reply_and_close(std::uint64_t request_id, const std::string& why) {
  spdlog::warn("connection {} (uid {}): {}; closing", id_, tenant_, why);
  // Tell the client why, then close once that reply (and any in flight) is
  // written: stopped_ makes on_write close the idle connection.
  stopped_ = true;
  queued_.clear();
  ++in_flight_;
  send(error_frame(request_id, Status::bad_request(why)));
}

void Connection::send(std::shared_ptr<kj::Array<capnp::word>> frame) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (closing_) return;
  auto* wr = new WriteRequest{{}, std::move(frame)};
  auto bytes = wr->frame->asBytes();
  uv_buf_t buf =
      uv_buf_init(reinterpret_cast<char*>(bytes.begin()), static_cast<unsigned>(bytes.size()));
  unwritten_bytes_ += bytes.size();
  int rc = uv_write(&wr->req, pipe_.stream(), &buf, 1, &Connection::on_write);
  if (rc) {
    unwritten_bytes_ -= bytes.size();
    --in_flight_;
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
  std::size_t bytes = wr->frame->asBytes().size();
  delete wr;
  if (!self) return;
  MEMOS_ASSERT_ON_THREAD(self->loop_thread_);
  // A request is retired once its reply is handed to the kernel, so the
  // in-flight count and the reply backlog move together.
  self->unwritten_bytes_ -= bytes;
  --self->in_flight_;
  if (self->closing_) return;  // cancelled by close(); the close callback finishes
  if (status < 0) return self->close(std::string("write failed: ") + uv_strerror(status));
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
  // A client that does not read its replies is given slow_client_timeout_ms
  // to start again, then dropped.
  bool timing = uv_is_active(slow_timer_.base());
  if (backlog && !timing) {
    uv_timer_start(
        slow_timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Connection*>(t->data);
          self->close("client does not read its replies");
        },
        config_.slow_client_timeout_ms, 0);
  } else if (!backlog && timing) {
    uv_timer_stop(slow_timer_.get());
  }
}

void Connection::stop_reading() {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  stopped_ = true;
  queued_.clear();
  update_reading();
  if (idle()) close("");
}

void Connection::close(const std::string& why) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (closing_) return;
  closing_ = true;
  if (!why.empty()) spdlog::info("connection {} (uid {}) closed: {}", id_, tenant_, why);
  queued_.clear();
  slow_timer_.close<&Connection::on_handle_closed>();
  pipe_.close<&Connection::on_handle_closed>();
}

void Connection::on_handle_closed(void* data) {
  auto* self = static_cast<Connection*>(data);
  // Requests still running on workers reply to a connection id that no
  // longer resolves; their replies are dropped by the owner.
  if (--self->handles_open_ == 0) self->owner_.on_closed(*self);
}

}  // namespace memos::kernel
