#include "cluster/write_forwarding.h"

#include <spdlog/spdlog.h>

#include "cluster/decimal.h"
#include "cluster/names.h"

namespace memos::cluster {

namespace {

constexpr const char* kUidHeader = "Memos-Uid";
constexpr const char* kFromHeader = "Memos-From";

}  // namespace

WriteForwarder::WriteForwarder(std::string cluster, std::string node, NatsConnection& nats,
                               unsigned threads, std::chrono::milliseconds timeout)
    : cluster_(std::move(cluster)), node_(std::move(node)), nats_(nats), timeout_(timeout) {
  answering_->nats = &nats_;
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { run(); });
}

WriteForwarder::~WriteForwarder() {
  stop();
}

std::string WriteForwarder::subject(std::string_view node) const {
  return node_forward_subject(cluster_, node);
}

Status WriteForwarder::serve(Handler handler) {
  Status s = nats_.subscribe(
      subject(node_),
      [this, handler = std::move(handler)](NatsMessage&& m) {
        if (m.reply.empty()) return;  // nobody to answer: not a forwarded request
        ForwardedRequest request;
        std::uint64_t uid = 0;
        if (!parse_decimal(m.header(kUidHeader), &uid) || uid > UINT32_MAX) {
          // Every forwarding node names the uid: this is no memosd's.
          spdlog::warn(
              "cluster: a forwarded request without a valid {} header, from \"{}\": "
              "not answered",
              kUidHeader, m.header(kFromHeader).substr(0, 64));
          return;
        }
        request.uid = static_cast<std::uint32_t>(uid);
        {
          std::lock_guard lock(mutex_);
          ++counters_.served;
        }
        request.from = m.header(kFromHeader);
        request.frame = std::move(m.data);
        handler(std::move(request), [answering = std::weak_ptr<Answering>(answering_),
                                     reply = std::move(m.reply)](std::string frame) {
          auto a = answering.lock();
          if (!a) return;
          std::lock_guard lock(a->mutex);
          if (!a->nats) return;
          if (Status p = a->nats->publish(reply, frame); !p.ok()) {
            spdlog::warn("cluster: answering a forwarded request: {}", p.message);
          }
        });
      },
      &sid_);
  return s;
}

void WriteForwarder::forward(const std::string& owner, std::uint32_t uid, std::string frame,
                             std::function<bool()> still_owner, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      jobs_.push_back({owner, uid, std::move(frame), std::move(still_owner), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done({Errc::unavailable, "memosd is stopping"}, {});
}

void WriteForwarder::stop() {
  if (sid_) nats_.unsubscribe(sid_);
  sid_ = 0;
  {
    std::lock_guard lock(answering_->mutex);
    answering_->nats = nullptr;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

Status WriteForwarder::send_and_wait(const Job& job, NatsMessage* reply) {
  std::uint64_t token = 0;
  if (Status s =
          nats_.send_request(subject(job.owner), job.frame,
                             {{kUidHeader, std::to_string(job.uid)}, {kFromHeader, node_}}, &token);
      !s.ok()) {
    return s;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const std::string unknown =
      ": the write's outcome is unknown (retry it with the same "
      "idempotency key)";
  for (;;) {
    bool timed_out = false;
    Status s = nats_.await_reply(token, kAskEvery, reply, &timed_out);
    if (!timed_out) return s;
    std::string why;
    if (!job.still_owner()) {
      why = "the shard has another owner now";
    } else if (std::chrono::steady_clock::now() >= deadline) {
      why = "no answer within " + std::to_string(timeout_.count()) + " ms";
    } else {
      std::lock_guard lock(mutex_);
      if (stopping_) why = "memosd is stopping";
    }
    if (!why.empty()) {
      nats_.forget(token);
      return {Errc::unavailable, why + unknown};
    }
  }
}

ForwardingCounters WriteForwarder::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void WriteForwarder::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      if (stopping_) {
        lock.unlock();
        job.done({Errc::unavailable, "memosd is stopping"}, {});
        continue;
      }
    }
    NatsMessage reply;
    Status s = send_and_wait(job, &reply);
    {
      std::lock_guard lock(mutex_);
      ++(s.ok() ? counters_.answered : counters_.unanswered);
    }
    if (!s.ok()) {
      job.done({s.code, "forwarding the write to the owner, node " + job.owner + ": " + s.message},
               {});
      continue;
    }
    job.done({}, std::move(reply.data));
  }
}

}  // namespace memos::cluster
