// daemon_forwarding.cpp — cluster mode: a write reaching a node that does
// not own its shard goes to the owner (ClusterNode::forward_target), and
// writes other nodes forward here run as their peers'
// (cluster/write_forwarding.h; docs/scale-out.md, "Any node answers"). A
// write's shard is its cube owner's, as the handler commits it: a grantee's
// write to "alice/notes" goes to the owner of alice's shard.
//
// The forwarding node has admitted the request (its tenant's rates and
// requests in flight are counted where the request arrived, once); the
// owner runs it through the same handler as a request of its own, as the
// uid the forwarding node's kernel reported, under the owner's policies.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/message.h"
#include "kernel/cube_access.h"
#include "kernel/daemon.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {

namespace {

// A frame's words, from bytes that came over the bus. Errors: bad_request
// (not whole words, empty, over `max_bytes`).
Status frame_words(const std::string& bytes, std::size_t max_bytes, kj::Array<capnp::word>* out) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::bad_request("a frame of " + std::to_string(bytes.size()) +
                               " bytes is not whole Cap'n Proto words");
  }
  if (bytes.size() > max_bytes) {
    return Status::too_large("a frame of " + std::to_string(bytes.size()) +
                             " bytes is over ipc.max_message_bytes");
  }
  *out = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(out->begin(), bytes.data(), bytes.size());
  return {};
}

std::string frame_bytes(const kj::Array<capnp::word>& words) {
  return std::string(reinterpret_cast<const char*>(words.begin()),
                     words.size() * sizeof(capnp::word));
}

// The cube a write names when it is one another tenant may share
// ("alice/notes"), else empty: the writes a grantee may make
// (CubeUse::write); the others refuse such a name wherever they run. A
// request too malformed to say is the handler's to refuse.
std::string_view shared_cube_written(wire::Request::Reader request) {
  using R = wire::Request;
  std::string_view cube;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    switch (request.which()) {
      case R::ADD:
        cube = exact_view(request.getAdd().getCube());
        break;
      case R::UPDATE:
        cube = exact_view(request.getUpdate().getCube());
        break;
      case R::REMOVE:
        cube = exact_view(request.getRemove().getCube());
        break;
      case R::SET_STATE:
        cube = exact_view(request.getSetState().getCube());
        break;
      case R::ROLLBACK:
        cube = exact_view(request.getRollback().getCube());
        break;
      default:
        break;
    }
  });
  if (failure != nullptr || !names_shared_cube(cube)) return {};
  return cube;
}

}  // namespace

bool Daemon::forward_if_not_owned(const Peer& peer, std::uint64_t id, wire::Request::Reader request,
                                  std::chrono::steady_clock::time_point arrived) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  const wire::Request::Which operation = request.which();
  if (!cluster_ || !writes_store(operation) || !forwardable(operation)) return false;
  // With one shard every cube's is the same: no name need be looked up.
  const std::string_view shared = store_->shards() > 1 ? shared_cube_written(request) : "";
  if (!shared.empty()) {
    route_shared_cube_write(peer, id, request, shared, arrived);
    return true;
  }
  return forward_to_shard_owner(peer, store_->shard_of(peer.tenant), id, request, arrived);
}

void Daemon::route_shared_cube_write(const Peer& peer, std::uint64_t id,
                                     wire::Request::Reader request, std::string_view cube,
                                     std::chrono::steady_clock::time_point arrived) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  // The reader lives only during on_request(): the request waits as a copy.
  auto copy = std::make_shared<capnp::MallocMessageBuilder>();
  copy->setRoot(request);
  std::string owner_name(cube.substr(0, cube.find('/')));
  // Queued as the peer's work, like the handler's (run_on_worker).
  dispatching_ = Dispatching{peer.tenant, peer.policy->weight, id};
  run_on_worker([this, peer, id, copy, owner_name = std::move(owner_name), arrived] {
    // An owner no tenant answers to leaves the write the peer's shard's:
    // whichever node runs it answers that no such cube is shared.
    const std::optional<Peer> owner = tenants_.find_tenant(owner_name);
    const std::uint32_t shard = store_->shard_of(owner ? owner->tenant : peer.tenant);
    mailbox_->post([this, peer, id, copy, shard, arrived] {
      auto waited = copy->getRoot<wire::Request>().asReader();
      if (!forward_to_shard_owner(peer, shard, id, waited, arrived)) {
        dispatch(peer, id, waited, arrived);
      }
    });
  });
  dispatching_.reset();
}

bool Daemon::forward_to_shard_owner(const Peer& peer, std::uint32_t shard, std::uint64_t id,
                                    wire::Request::Reader request,
                                    std::chrono::steady_clock::time_point arrived) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  std::string owner;
  if (!cluster_->forward_target(shard, &owner)) return false;
  // The request as the client sent it (its id included, which the owner's
  // reply carries back).
  capnp::MallocMessageBuilder copy;
  copy.setRoot(request);
  ForwardedWrite write{.connection = id,
                       .tenant = peer.tenant,
                       .request_id = request.getId(),
                       .operation = request.which(),
                       .wait_searchable = request.getWaitSearchable(),
                       .arrived = arrived};
  cluster_->forward(
      owner, shard, peer.uid, frame_bytes(ipc::encode_frame(copy)),
      [this, write](store::Status s, std::string reply) {
        // On a forwarding thread: the answer is the loop's to give.
        mailbox_->post([this, write, s = std::move(s), reply = std::move(reply)]() mutable {
          finish_forwarded(write, std::move(s), std::move(reply));
        });
      });
  return true;
}

void Daemon::finish_forwarded(const ForwardedWrite& write, store::Status status,
                              std::string reply) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  Status st = Status::from(status);
  Frame frame;
  if (st.ok()) {
    // The owner is trusted as the bus is; its answer is still checked to
    // be a reply to this request before the client gets it.
    auto words = std::make_shared<kj::Array<capnp::word>>();
    st = frame_words(reply, config_.ipc.max_message_bytes, words.get());
    if (st.ok()) {
      kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
        capnp::FlatArrayMessageReader reader(
            *words, ipc::frame_reader_options(words->size(), config_.ipc.nesting_limit));
        if (reader.getRoot<wire::Response>().getId() != write.request_id) {
          st = Status::internal("the owner answered another request");
        }
      });
      KJ_IF_MAYBE (e, failure) {
        st = Status::internal(std::string("the owner's answer is not a reply: ") +
                              e->getDescription().cStr());
      }
    }
    if (st.ok()) frame = std::move(words);
  }
  auto answer = [this, write](Frame f) {
    request_metrics_.record(write.operation, *f, write.arrived);
    deliver(write.connection, f, true);
    request_done(write.tenant);
  };
  if (!st.ok()) return answer(error_frame(write.request_id, st));
  // From any thread: the answer goes out on the loop.
  auto answer_on_loop = [this, frame, answer] {
    if (loop_thread_.on_owner()) return answer(frame);
    mailbox_->post([frame, answer] { answer(frame); });
  };
  // Read your writes on this node too: the client's next read here, even
  // one that accepts staleness, finds what it wrote; a write that asked to
  // wait until searchable waits, as the owner did, until this node's
  // indexes have it too, so its next search here finds it.
  cluster_->before_read(std::chrono::milliseconds(0),
                        [this, write, answer_on_loop](const store::Status& held) {
                          // The write is the owner's and done whatever this
                          // wait gave: its answer goes to the client in any
                          // case (without the index wait when this node
                          // could not tell that it holds the write).
                          if (!write.wait_searchable || !held.ok()) return answer_on_loop();
                          // Applied here: queued to the indexes before the
                          // barrier saw it (ShardReplica::hold_record).
                          indexes_.when_indexed(indexes_.accepted(), answer_on_loop);
                        });
}

void Daemon::serve_forwarded(cluster::ForwardedRequest forwarded,
                             cluster::WriteForwarder::Answer answer) {
  MEMOS_ASSERT_ON_THREAD(loop_thread_);
  const auto arrived = std::chrono::steady_clock::now();
  auto refuse = [&](std::uint64_t request_id, const Status& why) {
    answer(frame_bytes(*error_frame(request_id, why)));
  };
  if (!handler_) return refuse(0, Status::unavailable("memosd is stopping"));
  kj::Array<capnp::word> words;
  if (Status s = frame_words(forwarded.frame, config_.ipc.max_message_bytes, &words); !s.ok()) {
    return refuse(0, s);
  }
  std::uint64_t request_id = 0;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(
        words, ipc::frame_reader_options(words.size(), config_.ipc.nesting_limit));
    wire::Request::Reader request = reader.getRoot<wire::Request>();
    request_id = request.getId();
    if (!forwardable(request.which())) {
      return refuse(request_id,
                    Status::bad_request("node " + forwarded.from.substr(0, 64) +
                                        " forwarded a request that is not forwarded between "
                                        "nodes (only single-reply writes are)"));
    }
    Status refusal;
    Peer peer = tenants_.peer(forwarded.uid, &refusal);
    if (!refusal.ok()) return refuse(request_id, refusal);
    ++inflight_[peer.tenant];
    const std::uint64_t id = kForwardedConnections | ++forwarded_served_;
    dispatch_to(peer, id, request, arrived,
                [this, answer, tenant = peer.tenant](Frame frame, bool last) {
                  // Forwarded writes answer once (forwardable()).
                  if (!last) return;
                  answer(frame_bytes(*frame));
                  if (loop_thread_.on_owner()) return request_done(tenant);
                  mailbox_->post([this, tenant] { request_done(tenant); });
                });
  });
  KJ_IF_MAYBE (e, failure) {
    refuse(request_id,
           Status::bad_request(std::string("malformed request: ") + e->getDescription().cStr()));
  }
}

}  // namespace memos::kernel
