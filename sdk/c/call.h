// sdk/c/call.h — the one path every C API call takes (memos.h, CALLS):
// send() starts the C++ SDK's asynchronous call and hands its future out
// as a memos_pending; memos_wait() turns the reply into the C result
// (sdk/c/to_c.h) or a memos_error; the blocking forms are send() then
// memos_wait(). guarded() is where exceptions stop: nothing thrown inside
// the library crosses into C.
#pragma once

#include <future>
#include <memory>
#include <new>
#include <type_traits>

#include "memos/client.h"
#include "memos/memos.h"
#include "sdk/c/arena.h"
#include "sdk/c/from_c.h"
#include "sdk/c/to_c.h"

struct memos_client {
  std::unique_ptr<memos::Client> client;
};

namespace memos::c_api {

class PendingReply {
 public:
  virtual ~PendingReply() = default;
  // Waits, and stores the result in `out` (a CType**), or fills `err`.
  virtual int wait(void* out, memos_error* err) = 0;
  virtual bool ready() const = 0;
};

}  // namespace memos::c_api

struct memos_pending {
  memos::c_api::PendingReply* reply;  // owned by the pending's Arena
};

namespace memos::c_api {

// Fills `err` (when not NULL) and returns the code.
int fail(memos_error* err, int code, std::string_view message, bool retryable = false,
         std::uint32_t retry_after_ms = 0);
int fail(memos_error* err, const Error& error);

// Runs `body`, answering what it throws as the matching code.
template <class Body>
int guarded(memos_error* err, Body&& body) noexcept {
  try {
    return body();
  } catch (const BadArgument& e) {
    return fail(err, MEMOS_BAD_REQUEST, e.what());
  } catch (const std::bad_alloc&) {
    return fail(err, MEMOS_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(err, MEMOS_INTERNAL, e.what());
  } catch (...) {
    return fail(err, MEMOS_INTERNAL, "an unknown exception in libmemos");
  }
}

memos::Client& client_of(memos_client* client);

template <class R>
struct ResultValue;
template <class T>
struct ResultValue<Result<T>> {
  using type = T;
};

// CType void: a call with no result (Done).
template <class CType, class T>
class PendingOf final : public PendingReply {
 public:
  explicit PendingOf(std::future<Result<T>> future) : future_(std::move(future)) {}
  int wait(void* out, memos_error* err) override {
    Result<T> result = future_.get();
    if (!result) return fail(err, result.error());
    if constexpr (!std::is_void_v<CType>) {
      if (out != nullptr) *static_cast<CType**>(out) = to_c<CType>(*result);
    }
    return MEMOS_OK;
  }
  bool ready() const override {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

 private:
  std::future<Result<T>> future_;
};

// Starts `start(memos::Client&)` (returning a future) and stores its pending.
template <class CType, class Start>
int send(memos_client* client, memos_pending** pending, memos_error* err, Start&& start) {
  return guarded(err, [&]() -> int {
    if (pending == nullptr) throw BadArgument("pending: NULL");
    auto future = start(client_of(client));
    using T = typename ResultValue<decltype(future.get())>::type;
    Arena* arena = nullptr;
    memos_pending* out = Arena::make_root<memos_pending>(&arena);
    try {
      out->reply = arena->adopt(std::make_unique<PendingOf<CType, T>>(std::move(future)));
    } catch (...) {
      memos_free(out);
      throw;
    }
    *pending = out;
    return MEMOS_OK;
  });
}

// The blocking form: a send's code, else its wait's. `pending` is read
// only once the send has run (an argument read beside the send's call
// could be read before it).
inline int blocking(int sent, memos_pending** pending, void* out, memos_error* err) {
  return sent != MEMOS_OK ? sent : memos_wait(*pending, out, err);
}

}  // namespace memos::c_api
