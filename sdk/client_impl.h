// sdk/client_impl.h — Client::Impl, the one connection behind a Client and
// the one way every call makes its request: call<T>(build, decode) sends the
// request `build` fills and completes its future with what `decode` makes of
// the reply (or with the error memosd or the connection gave instead). A
// reader thread matches replies to requests by id, so any number pipeline on
// one connection and complete in any order. A request may be answered in
// pieces first (Response.partial: a streamed chat): those go to the call's
// `partial` handler and leave the request pending until its last reply. Internal to the SDK: the
// files that implement Client's calls (client.cpp, archive_stream.cpp, generation.cpp) include it;
// the reader loop is client_impl.cpp.
#pragma once

#include <capnp/message.h>
#include <kj/array.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "memos/client.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

class Client::Impl {
 public:
  // Called with the reply, or with an error when none will come.
  using Handler = std::function<void(const wire::Response::Reader*, const Error*)>;
  // Called with each partial reply of a request, on the reader thread.
  using PartialHandler = std::function<void(const wire::Response::Reader&)>;

  // Takes the connected socket `fd` and starts the reader thread.
  Impl(int fd, ClientOptions options);
  // Shuts the socket down, which ends the reader (it fails the requests
  // still pending), joins it and closes the socket.
  ~Impl();

  std::size_t in_flight() const;

  // Sends one request built by `build`; `decode` turns the reply into T;
  // `partial` takes the partial replies that come before it, if any.
  template <class T, class Build, class Decode>
  std::future<Result<T>> call(Build&& build, Decode&& decode, PartialHandler partial = {}) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    const std::uint64_t id = next_id_++;

    // Most requests are small: a 1 KiB first segment, not capnp's 8 KiB
    // (zeroed for every call); a larger one grows as usual.
    capnp::MallocMessageBuilder message(kFirstSegmentWords);
    auto request = message.initRoot<wire::Request>();
    request.setId(id);
    request.setWaitSearchable(options_.wait_searchable);
    request.setMaxStalenessMs(options_.max_staleness_ms);
    build(request);
    kj::Array<capnp::word> frame = ipc::encode_frame(message);

    Handler handler = [promise, decode = std::forward<Decode>(decode)](
                          const wire::Response::Reader* r, const Error* e) {
      if (e) return promise->set_value(*e);
      if (r->isError()) {
        auto err = r->getError();
        return promise->set_value(Error{sdk::from_wire(err.getCode()), sdk::str(err.getMessage()),
                                        err.getRetryable(), err.getRetryAfterMs()});
      }
      promise->set_value(decode(*r));
    };
    {
      std::lock_guard lock(mutex_);
      if (dead_) {
        Error e = dead_error_;
        handler(nullptr, &e);
        return future;
      }
      pending_.emplace(
          id, Pending{std::move(handler),
                      partial ? std::make_shared<PartialHandler>(std::move(partial)) : nullptr});
    }
    // The reply may arrive before send() returns: the handler is registered first.
    if (!send_all(frame.asBytes())) {
      int err = errno;
      // memosd closed the connection: the reader fails the requests once it
      // has read why (a refusal memosd sent before closing, else the end of
      // the stream).
      if (err == EPIPE || err == ECONNRESET) return future;
      fail_all(Error{ErrorCode::connection_lost, std::string("send: ") + std::strerror(err), true});
    }
    return future;
  }

 private:
  static constexpr capnp::uint kFirstSegmentWords = 128;

  struct Pending {
    Handler done;
    // Shared: the reader calls it outside the lock while fail_all(), from a
    // sending thread, may drop the entry.
    std::shared_ptr<PartialHandler> partial;
  };

  bool send_all(kj::ArrayPtr<const kj::byte> bytes);
  void read_loop();
  bool deliver(kj::Array<capnp::word>& frame);
  void fail_all(const Error& error);

  int fd_;
  ClientOptions options_;
  std::atomic<std::uint64_t> next_id_{1};
  std::mutex send_mutex_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Pending> pending_;
  bool dead_ = false;
  Error dead_error_{ErrorCode::connection_lost, "", true};
  std::optional<Error> refusal_;  // memosd's error about the connection (id 0)
  std::thread reader_;
};

}  // namespace memos
