// membership.h — which nodes a cluster has and what each is doing, for
// `memctl cluster status` (docs/scale-out.md, "Membership").
//
// Each node keeps a key of its own in etcd, /memos/<cluster>/nodes/<node>,
// under a lease of its own: the key lists the node while it runs, goes at
// once when it stops cleanly and lapses with the lease when it dies. Each
// node also answers requests on memos.<cluster>.status.<node> with its
// report (its role and how much of the log it holds). gather() lists the
// keys and asks every node listed, all at once, so one status shows every
// node as it says it is now, and a listed node that does not answer as such.
//
// The roster says who is there; it decides nothing: ownership is the
// shard's own lease (shard_replica.h).
//
// Threading: start() and stop() on one thread; gather() from any thread
// (it blocks up to its timeout); the reporter runs on the membership's
// answering thread (and in gather()), never on NATS's reader; the lease is
// renewed on a thread of its own.
//
// Errors (store::Status): start(): corrupt. gather(): unavailable (etcd did not answer: no roster),
// corrupt; a node that does not answer is not an error but a report that says why.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/nats_connection.h"

namespace memos::cluster {

// One node, as it reports itself.
struct NodeReport {
  std::string node;
  bool answered = false;  // false: listed in etcd, silent (`note` says why)
  // Silent: why. Answered: what the node says is wrong with it (a replica
  // stopped off the log's chain), "" when nothing is; at most kMaxNote
  // printable characters when it comes from a peer.
  std::string note;
  bool owner = false;          // owns the shard (and may write) now
  std::uint64_t position = 0;  // the last log record this node's store holds
  std::uint64_t appended = 0;  // records it appended as owner, since it started
  std::uint64_t applied = 0;   // records it applied as a follower, since it started
  // The digest of the tenant policies it enforces (PolicySet::digest: 64
  // lowercase hex digits); "" from a node too old to say.
  std::string policies{};
};

// Whether `text` is a policy digest as a report carries it.
bool policy_digest(std::string_view text);

inline constexpr std::size_t kMaxNote = 512;

// The report as JSON, and back. decode: false for anything that is not a
// report (a hostile or broken peer), with `*why`.
std::string encode_report(const NodeReport& report);
bool decode_report(std::string_view json, NodeReport* out, std::string* why);

struct MembershipSettings {
  std::string cluster = "memos";
  std::string node;
  // How long a node that died stays listed (rounded up to whole seconds,
  // at least 2: etcd's shortest lease).
  std::chrono::milliseconds ttl{3000};
  // The most nodes gather() lists: a roster is small; more keys under the
  // prefix are not read into a reply.
  std::size_t max_nodes = 64;
};

class Membership {
 public:
  // `report` says what this node is doing; it is called on the
  // membership's answering thread and by gather(), and must not block.
  Membership(MembershipSettings settings, NatsConnection& nats, EtcdClient& etcd,
             std::function<NodeReport()> report);
  ~Membership();  // stop()
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Puts this node's key (or, etcd silent, leaves that to the thread) and
  // starts answering. Errors: corrupt (NATS refused the subscription).
  Status start();
  // Stops answering and removes the key (a lease etcd does not hear the end
  // of lapses on its own).
  void stop();

  // Every node listed, in node order, each asked within `timeout`. Errors:
  // unavailable (etcd), corrupt.
  Status gather(std::chrono::milliseconds timeout, std::vector<NodeReport>* out);

  std::string key() const;
  std::string status_subject(std::string_view node) const;

 private:
  // Two threads, so that a slow etcd (a renewal waits up to its timeout
  // on each silent endpoint) never makes the node late to answer.
  void answer();  // answers the status questions queued by the subscription
  void renew();   // keeps the roster key's lease alive, puts the key back
  // Grants a lease and puts the key under it (lease_ is set on success).
  Status announce();

  const MembershipSettings settings_;
  NatsConnection& nats_;
  EtcdClient& etcd_;
  const std::function<NodeReport()> report_;

  std::mutex mutex_;                   // guards what follows
  std::condition_variable wake_;       // a question came, or stop
  std::condition_variable renew_;      // stop
  std::deque<std::string> questions_;  // reply subjects waiting for the report
  bool stopping_ = false;
  std::int64_t lease_ = 0;
  std::uint64_t sid_ = 0;
  std::thread answerer_, renewer_;
};

}  // namespace memos::cluster
