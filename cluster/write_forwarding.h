// write_forwarding.h — a write reaching a node that does not own its shard
// goes to the owner over NATS (docs/scale-out.md, "Any node answers").
//
// The forwarding node sends the client's request, as it arrived (its
// Cap'n Proto frame), to memos.<cluster>.node.<owner>.forward with the
// peer's uid as the kernel reported it on the forwarding node
// (Memos-Uid) and its own node id (Memos-From); the owner runs it as that
// uid and answers with the reply's frame. What the bytes mean is the
// kernel's business: here they are opaque.
//
// Why NATS and not a listener of each node's own: the bus is the cluster's
// trust boundary already. Whoever can publish on it can append records to
// the log (any tenant's rows), and whoever can subscribe reads them all, so
// trusting the uid a forwarded request names gives a publisher nothing it
// lacked. Securing the bus (TLS with client certificates, which nats-server
// verifies) secures forwarding with it; a second listener would add a port,
// certificates and addresses to keep, and guard nothing the bus leaves open.
//
// Threading: forward() from any thread; each forward waits on one of the
// forwarder's own threads (a forwarded write takes the owner's time, and
// must not hold the daemon's workers meanwhile), and `done` runs there.
// serve()'s handler runs on NATS's reader thread and must only queue the
// work; its `answer` may be called from any thread, once, even after stop()
// (it then sends nothing: the forwarding node's wait times out).
//
// Errors (store::Status), given to forward()'s `done`: unavailable (no
// owner answered within the timeout: the write's outcome is unknown, so a
// client retries with its idempotency key; the owner is not subscribed;
// the forwarder is stopping), conflict (larger than the bus allows). The
// owner answers every request it gets with a reply frame, refusals
// included. serve(): unavailable (made on reconnection: not fatal).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/nats_connection.h"

namespace memos::cluster {

// What a node forwarded and served (memctl metrics).
struct ForwardingCounters {
  std::uint64_t answered = 0;    // forwarded writes the owner answered (its answer may refuse)
  std::uint64_t unanswered = 0;  // forwarded writes no owner answered (outcome unknown)
  std::uint64_t served = 0;      // writes other nodes forwarded here
};

struct ForwardedRequest {
  std::uint32_t uid = 0;  // the peer's, as the forwarding node's kernel reported it
  std::string from;       // the forwarding node's id
  std::string frame;      // the request, as the client sent it
};

class WriteForwarder {
 public:
  // Answers a forwarded request with the reply's frame.
  using Answer = std::function<void(std::string frame)>;
  using Handler = std::function<void(ForwardedRequest request, Answer answer)>;
  using Done = std::function<void(Status status, std::string frame)>;

  // `threads`: forwards waiting at once; `timeout`: for the owner's answer.
  WriteForwarder(std::string cluster, std::string node, NatsConnection& nats, unsigned threads,
                 std::chrono::milliseconds timeout);
  ~WriteForwarder();  // stop()
  WriteForwarder(const WriteForwarder&) = delete;
  WriteForwarder& operator=(const WriteForwarder&) = delete;

  // Answers requests forwarded to this node with `handler`.
  Status serve(Handler handler);
  // Sends `frame` to node `owner`'s subject as `uid`'s request; `done` gets
  // the owner's reply frame, or why there is none. While it waits, it asks
  // `still_owner` every kAskEvery: once the shard has another owner (the
  // one asked was paused or cut off, and lost its lease), it stops waiting —
  // the deposed node can no longer commit the write — rather than wait out
  // the timeout, which is for a slow answer from a node that still owns.
  void forward(const std::string& owner, std::uint32_t uid, std::string frame,
               std::function<bool()> still_owner, Done done);
  static constexpr std::chrono::milliseconds kAskEvery{250};
  // Stops serving; forwards still queued complete with unavailable; joins
  // the threads. Idempotent.
  void stop();

  // The subject node `node` serves forwarded requests on.
  std::string subject(std::string_view node) const;
  ForwardingCounters counters() const;

 private:
  struct Job {
    std::string owner;
    std::uint32_t uid = 0;
    std::string frame;
    std::function<bool()> still_owner;
    Done done;
  };
  void run();
  // Sends the job's request and waits for its answer. Errors: forward()'s.
  Status send_and_wait(const Job& job, NatsMessage* reply);

  // What answers reach the bus through: stop() takes the connection away
  // under its lock, so an answer given late never touches it.
  struct Answering {
    std::mutex mutex;
    NatsConnection* nats = nullptr;
  };

  const std::string cluster_, node_;
  NatsConnection& nats_;
  std::shared_ptr<Answering> answering_ = std::make_shared<Answering>();
  const std::chrono::milliseconds timeout_;
  std::uint64_t sid_ = 0;

  mutable std::mutex mutex_;  // guards what follows
  ForwardingCounters counters_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace memos::cluster
