// daemon_dispatch.cpp — a request's way from its frame to its answer: who
// the peer is now, the tenant's rates and requests in flight, in cluster
// mode the wait until the node holds every acknowledged write, the handler,
// and each reply's way back to its connection on the loop.
#include <capnp/message.h>

#include <chrono>
#include <memory>

#include "kernel/daemon.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {

void Daemon::on_request(Connection& conn, wire::Request::Reader request) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  std::uint64_t id = conn.id();
  // Who the peer is is asked again for every request: a reload that
  // refuses it, or moves it to another tenant, applies to the very next.
  Status refusal;
  Peer peer = tenants_.peer(conn.uid(), &refusal);
  if (refusal.ok()) refusal = admit_request(peer, request.which());
  if (!refusal.ok()) return deliver(id, error_frame(request.getId(), refusal), true);
  ++inflight_[peer.tenant];
  const auto arrived = std::chrono::steady_clock::now();
  if (forward_if_not_owned(peer, id, request, arrived)) return;
  // Cluster mode: a read waits until this node holds every write the log
  // acknowledged before it arrived, unless the node is current (an owner,
  // or a follower within the staleness the client accepts).
  if (cluster_ && reads_store(request.which())) {
    const std::chrono::milliseconds bound(request.getMaxStalenessMs());
    if (!cluster_->current_within(bound)) {
      return dispatch_when_current(peer, id, request, bound, arrived);
    }
  }
  dispatch(peer, id, request, arrived);
}

void Daemon::dispatch_when_current(const Peer& peer, std::uint64_t id,
                                   wire::Request::Reader request, std::chrono::milliseconds bound,
                                   std::chrono::steady_clock::time_point arrived) {
  // The reader lives only during on_request(): the request waits as a copy.
  auto copy = std::make_shared<capnp::MallocMessageBuilder>();
  copy->setRoot(request);
  cluster_->before_read(bound, [this, peer, id, copy, arrived](const store::Status& s) {
    // On the barrier's thread (or this one, should the node have become
    // current meanwhile): handlers start on the loop.
    auto go = [this, peer, id, copy, arrived, st = Status::from(s)] {
      auto waited = copy->getRoot<wire::Request>().asReader();
      if (!st.ok()) {
        Frame refusal = error_frame(waited.getId(), st);
        request_metrics_.record(waited.which(), *refusal, arrived);
        deliver(id, refusal, true);
        return request_done(peer.tenant);
      }
      dispatch(peer, id, waited, arrived);
    };
    if (loop_thread_.on_owner()) return go();
    mailbox_->post(std::move(go));
  });
}

void Daemon::dispatch(const Peer& peer, std::uint64_t id, wire::Request::Reader request,
                      std::chrono::steady_clock::time_point arrived) {
  const std::uint32_t tenant = peer.tenant;
  dispatch_to(peer, id, request, arrived, [this, id, tenant](Frame frame, bool last) {
    // A request answered on the loop (a refusal, a cheap read) is delivered
    // now; one answered elsewhere comes back through the mailbox, which
    // keeps a request's partial replies and its answer in order.
    if (loop_thread_.on_owner()) {
      deliver(id, frame, last);
      if (last) request_done(tenant);
      return;
    }
    mailbox_->post([this, id, tenant, frame = std::move(frame), last] {
      deliver(id, frame, last);
      if (last) request_done(tenant);
    });
  });
}

void Daemon::dispatch_to(const Peer& peer, std::uint64_t id, wire::Request::Reader request,
                         std::chrono::steady_clock::time_point arrived, Reply reply) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  // The work the handler queues for a worker is this tenant's (run_on_worker).
  dispatching_ = Dispatching{peer.tenant, peer.policy->weight, id};
  struct Done {
    std::optional<Dispatching>& d;
    ~Done() { d.reset(); }
  } done{dispatching_};
  handler_->handle(peer, id, request, std::move(reply), arrived);
}

// A tenant's rates and its requests in flight (memos-policy(5)), checked as
// each request arrives, before any work is done for it.
Status Daemon::admit_request(const Peer& peer, wire::Request::Which operation) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  const policies::TenantPolicy& policy = *peer.policy;
  if (policy.max_inflight) {
    auto it = inflight_.find(peer.tenant);
    std::uint32_t now = it == inflight_.end() ? 0 : it->second;
    if (now >= *policy.max_inflight) {
      return {Code::busy,
              "max_inflight = " + std::to_string(*policy.max_inflight) +
                  ": the tenant has that many requests in flight" +
                  (policy.file.empty() ? "" : " (" + policy.file + ")"),
              true};
    }
  }
  return rates_.take(peer.tenant, operation, policy, RateLimits::Clock::now());
}

void Daemon::request_done(std::uint32_t tenant) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  auto it = inflight_.find(tenant);
  if (it == inflight_.end()) return;
  if (--it->second == 0) inflight_.erase(it);
}

void Daemon::deliver(std::uint64_t connection_id, const Frame& frame, bool last) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  if (last) ++stats_.requests_served;
  auto it = connections_.find(connection_id);
  if (it == connections_.end()) return;  // the client left; drop the reply
  it->second->send(frame, last);
}

}  // namespace memos::kernel
