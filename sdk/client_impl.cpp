// sdk/client_impl.cpp — the connection of Client::Impl (client_impl.h):
// sending a request's frame whole, the reader thread that decodes memosd's
// frames and hands each reply to the handler of its request, and failing
// every pending request once the connection is gone, with the reason memosd
// gave when it gave one.
#include "sdk/client_impl.h"

#include <capnp/serialize.h>
#include <kj/exception.h>
#include <sys/socket.h>
#include <unistd.h>

#include <span>
#include <vector>

#include "ipc/frame_decoder.h"

namespace memos {
namespace {

constexpr int kReplyNestingLimit = 64;

}  // namespace

Client::Impl::Impl(int fd, ClientOptions options) : fd_(fd), options_(options) {
  reader_ = std::thread([this] { read_loop(); });
}

Client::Impl::~Impl() {
  shutdown(fd_, SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
  close(fd_);
}

std::size_t Client::Impl::in_flight() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

bool Client::Impl::send_all(kj::ArrayPtr<const kj::byte> bytes) {
  std::lock_guard lock(send_mutex_);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.begin() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

void Client::Impl::read_loop() {
  ipc::FrameDecoder decoder({options_.max_message_bytes, 1u << 16});
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n == 0 ? "memosd closed the connection" : std::strerror(errno);
      std::optional<Error> refusal;
      {
        std::lock_guard lock(mutex_);
        refusal = refusal_;
      }
      return fail_all(refusal ? *refusal : Error{ErrorCode::connection_lost, why, true});
    }
    std::vector<kj::Array<capnp::word>> frames;
    ipc::FrameError err = decoder.feed(
        std::span(reinterpret_cast<const std::byte*>(buf.data()), static_cast<std::size_t>(n)),
        frames);
    for (auto& frame : frames) {
      if (!deliver(frame)) return;
    }
    if (err != ipc::FrameError::none) {
      shutdown(fd_, SHUT_RDWR);
      return fail_all(sdk::protocol_error(std::string("reply: ") + ipc::describe(err)));
    }
  }
}

bool Client::Impl::deliver(kj::Array<capnp::word>& frame) {
  Handler handler;
  std::shared_ptr<PartialHandler> partial;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(
        frame, ipc::frame_reader_options(frame.size(), kReplyNestingLimit));
    auto response = reader.getRoot<wire::Response>();
    {
      std::lock_guard lock(mutex_);
      auto it = pending_.find(response.getId());
      if (it == pending_.end()) {
        // An error about no request of ours (id 0) comes before memosd
        // closes the connection: why it refused the connection (too many,
        // an unseen uid), timed it out, or could not read a frame. The
        // requests still waiting fail with it.
        if (response.getId() == 0 && response.isError()) {
          auto err = response.getError();
          refusal_ =
              Error{sdk::from_wire(err.getCode()), sdk::str(err.getMessage()), err.getRetryable()};
        }
        return;
      }
      if (response.getPartial() && !response.isError()) {
        partial = it->second.partial;  // the request stays pending
      } else {
        handler = std::move(it->second.done);
        pending_.erase(it);
      }
    }
    if (partial) return (*partial)(response);
    if (handler) handler(&response, nullptr);
  });
  KJ_IF_MAYBE (e, failure) {
    Error error =
        sdk::protocol_error(std::string("reply does not decode: ") + e->getDescription().cStr());
    if (handler) handler(nullptr, &error);
    shutdown(fd_, SHUT_RDWR);
    fail_all(error);
    return false;
  }
  return true;
}

void Client::Impl::fail_all(const Error& error) {
  std::map<std::uint64_t, Pending> failed;
  {
    std::lock_guard lock(mutex_);
    if (!dead_) {
      dead_ = true;
      dead_error_ = error;
    }
    failed.swap(pending_);
  }
  for (auto& [id, pending] : failed) pending.done(nullptr, &error);
}

}  // namespace memos
