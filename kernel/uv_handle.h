// uv_handle.h — single ownership of one libuv handle.
//
// libuv frees nothing itself: a handle must stay allocated from its
// uv_*_init() until the callback of its uv_close(), which runs on a later
// turn of the loop. UvHandle<T> allocates the handle on the heap and closes
// it with a callback that deletes it, so the handle's memory never depends
// on the lifetime (or the member order) of the object that used it: an owner
// may be destroyed while its handle is still closing.
//
// The rules (libuv's, made explicit):
// - open(), reset(), close<>() and the destructor run on the loop thread,
//   with the loop not yet closed (uv_loop_close()).
// - Every handle is closed before the loop's final turn: the owner resets it
//   when it is done (Daemon closes its handles when shutdown begins or ends,
//   a Connection when it closes). A handle still open when its UvHandle is
//   destroyed is closed then; its memory is freed on the loop's next turn,
//   which Daemon::close_loop() runs before uv_loop_close(). A handle left
//   open past that makes uv_loop_close() fail with UV_EBUSY, which
//   close_loop() reports (and asserts in debug builds).
// - After the close, libuv calls no callback of the handle itself, but
//   requests on it (a write) still complete, with UV_ECANCELED, before the
//   close callback. reset() clears the handle's data first, so a request
//   callback that finds its owner through req->handle->data finds null once
//   the owner has let go (Connection's writes do that); close<>() keeps it,
//   for an owner that lives until its after_close.
#pragma once

#include <uv.h>

#include <utility>

namespace memos::kernel {

template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  ~UvHandle() { reset(); }
  UvHandle(UvHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  // Closes the handle held, if any, then allocates a new one and initialises
  // it with `init(loop, handle, args...)` (uv_timer_init, uv_pipe_init with
  // its ipc flag, uv_async_init with its callback, ...). Returns init's
  // result; on an error nothing is held (a handle whose init failed is not
  // registered with the loop and is deleted at once).
  template <class Init, class... Args>
  int open(uv_loop_t* loop, Init init, Args&&... args) {
    reset();
    T* handle = new T{};
    int rc = init(loop, handle, std::forward<Args>(args)...);
    if (rc != 0) {
      delete handle;
      return rc;
    }
    handle_ = handle;
    return 0;
  }

  T* get() const { return handle_; }
  T* operator->() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  // The same handle as libuv's base type, for uv_close, uv_is_active, ...
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(handle_); }
  // The same handle as a stream (pipes, TCP, TTY), for uv_listen, uv_write, ...
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(handle_); }

  // Closes the handle (no-op when none is held); it is freed by its close
  // callback. Its data is cleared: the owner hears nothing more from it.
  // Nothing is held afterwards.
  void reset() {
    if (!handle_) return;
    handle_->data = nullptr;
    uv_close(base(), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
    handle_ = nullptr;
  }

  // Like reset(), and once the handle is freed calls `after_close` with the
  // data the handle carried (its owner), on the loop thread: for an owner
  // that has to know when all its handles are gone (Connection).
  template <void (*after_close)(void* data)>
  void close() {
    if (!handle_) return;
    uv_close(base(), [](uv_handle_t* h) {
      void* data = h->data;
      delete reinterpret_cast<T*>(h);
      after_close(data);
    });
    handle_ = nullptr;
  }

 private:
  T* handle_ = nullptr;
};

}  // namespace memos::kernel
