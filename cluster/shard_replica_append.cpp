// shard_replica_append.cpp — ShardReplica's appending half (shard_replica.h): a commit group
// appended to the log, fenced by the record the owner holds last, before it commits; an append that
// got no answer settled; a new owner's barrier; and which of two records after one fence came first
// (docs/scale-out.md, "Siblings").
#include <spdlog/spdlog.h>

#include <memory>

#include "cluster/record_chain.h"
#include "cluster/record_parts.h"
#include "cluster/shard_replica.h"
#include "cluster/stream_reader.h"
#include "memcube/record_codec.h"

namespace memos::cluster {
namespace {

// A record's message id (Nats-Msg-Id): its digest in hex, and for a record
// sent in parts the part's number. The same record sent again is the same
// message to JetStream's duplicate check.
std::string message_id_of(std::string_view digest, std::size_t part) {
  std::string out = store::to_hex(digest);
  if (part != 0) out += "." + std::to_string(part);
  return out;
}

}  // namespace

Status ShardReplica::begin_group(const store::ChangeSet& changes, PendingGroup* out) {
  std::string previous;
  {
    std::lock_guard lock(mutex_);
    if (!owns_locked()) {
      // Worded as ClusterNode::writable(shard) words it ("the owner, node
      // n1"): a client sent the write to a node owning other shards, and
      // looks for the owner's name. scripts/cluster-test's writer did not
      // find it here and went round the nodes that named the other shards'
      // owners, acknowledging nothing for 36 s.
      return {Errc::unavailable, "this node (" + settings_.node + ") does not own shard " +
                                     std::to_string(settings_.shard) + " now" +
                                     (owner_node_.empty() || owner_node_ == settings_.node
                                          ? std::string(" and no other owner is known yet: retry")
                                          : ": writes go to the owner, node " + owner_node_)};
    }
    out->expected = tail_;
    out->epoch = lease_;
    previous = digest_;
  }
  out->previous = previous;
  const std::string record = store::encode_change_group(
      settings_.shard, out->epoch, store::Store::kSchemaVersion, previous, changes);
  out->digest = digest_of(record);
  std::vector<RecordPart> parts;
  if (Status s = split_record(record, nats_.max_payload(), &parts); !s.ok()) return s;
  if (parts.size() > 1) {
    // Parts are fenced each by the one before, whose sequence only its
    // acknowledgement tells: appended one after another, now.
    return append_record(record, out->expected, &out->sequence, &out->first);
  }
  out->in_flight.emplace();
  out->record = record;
  return js_.begin_append(subject(), out->record, out->expected, message_id_of(out->digest, 0),
                          &*out->in_flight);
}

Status ShardReplica::end_group(PendingGroup& pending, store::LogPosition* position) {
  if (pending.in_flight) {
    std::uint64_t actual = 0;
    Status s = js_.end_append(*pending.in_flight, &pending.sequence, &actual);
    pending.in_flight.reset();
    if (s.code == Errc::conflict) return fenced_out();
    if (!s.ok()) {
      note_in_doubt(
          {std::move(pending.record), pending.expected, message_id_of(pending.digest, 0), {}});
      return s;
    }
    tell_reader_appended(pending.sequence);
    pending.first = pending.sequence;
  }
  // Answered after the lease it was written under: a new owner may have
  // appended its barrier under the same fence meanwhile.
  bool late;
  {
    std::lock_guard lock(mutex_);
    late = !within_lease_locked(pending.epoch);
  }
  if (late) {
    if (Status s = check_first_after(pending.expected, pending.first); !s.ok()) return s;
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("shard {}: appended record {} (after {}, lease {}, hash {})", settings_.shard,
                  pending.sequence, pending.expected, pending.epoch, short_hex(pending.digest));
  }
  *position = position_of(pending.sequence, pending.digest, pending.previous);
  std::lock_guard lock(mutex_);
  position_ = tail_ = pending.sequence;
  digest_ = pending.digest;
  previous_ = position->previous;
  ++appended_;
  changed_.notify_all();
  return {};
}

void ShardReplica::tell_reader_appended(std::uint64_t sequence) {
  StreamReader* reader;
  {
    std::lock_guard lock(mutex_);
    reader = stream_;
  }
  // Outside this replica's lock: the reader takes its own only.
  if (reader) reader->appended(sequence);
}

Status ShardReplica::fenced_out() {
  std::lock_guard lock(mutex_);
  behind_ = true;
  changed_.notify_all();
  return {Errc::unavailable, "the log of shard " + std::to_string(settings_.shard) +
                                 " has records this node has not applied yet; retry"};
}

bool ShardReplica::within_lease_locked(std::int64_t epoch) const {
  return owner_ && lease_ == epoch && Clock::now() < lease_valid_until_;
}

Status ShardReplica::check_first_after(std::uint64_t fence, std::uint64_t first) {
  StoredMessage m;
  // From the stream's leader, which stored this node's record: it holds
  // every message before it.
  Status s = js_.next_message(stream(), fence + 1, subject(), &m);
  if (s.ok() && m.sequence == first) return {};
  {
    std::lock_guard lock(mutex_);
    behind_ = true;  // follow: it applies whichever came first
    changed_.notify_all();
  }
  if (!s.ok()) {
    return {Errc::unavailable, "could not tell whether log record " + std::to_string(first) +
                                   " came first after record " + std::to_string(fence) + " (" +
                                   s.message + "); retry"};
  }
  spdlog::warn(
      "shard {}: log record {} of another node came first after record {}, beside this node's "
      "record {}, which every node passes over",
      settings_.shard, m.sequence, fence, first);
  return {Errc::unavailable, "another node appended to shard " + std::to_string(settings_.shard) +
                                 " at the same time; this write did not count: retry"};
}

Status ShardReplica::append_record(const std::string& record, std::uint64_t expected,
                                   std::uint64_t* sequence, std::uint64_t* first) {
  std::vector<RecordPart> parts;
  if (Status s = split_record(record, nats_.max_payload(), &parts); !s.ok()) return s;
  const std::string digest = digest_of(record);
  *sequence = expected;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::uint64_t actual = 0;
    const std::string id = message_id_of(digest, parts.size() > 1 ? i + 1 : 0);
    const std::uint64_t fence = *sequence;
    Status s =
        js_.append(subject(), parts[i].bytes, fence, id, sequence, &actual, parts[i].headers);
    // Someone appended since this node's last record (a lost acknowledgement
    // of its own, or a node that believed it owned the shard): follow first.
    if (s.ok()) tell_reader_appended(*sequence);
    if (s.ok() && i == 0) *first = *sequence;
    if (s.code == Errc::conflict) return fenced_out();
    if (!s.ok()) {
      // Unanswered: it may be in the log. Parts already appended make an
      // incomplete group, which no node applies; the next append starts
      // after them, once the log answered for this one.
      note_in_doubt({std::string(parts[i].bytes), fence, id, parts[i].headers});
      return s;
    }
  }
  return {};
}

void ShardReplica::note_in_doubt(InDoubt message) {
  spdlog::warn(
      "shard {}: an append got no answer; this node appends nothing more until the log "
      "answers for it",
      settings_.shard);
  std::lock_guard lock(mutex_);
  in_doubt_ = std::move(message);
  behind_ = true;
  changed_.notify_all();
}

Status ShardReplica::resolve_doubt() {
  InDoubt message;
  {
    std::lock_guard lock(mutex_);
    if (!in_doubt_) return {};
    message = *in_doubt_;
  }
  std::uint64_t sequence = 0, actual = 0;
  Status s = js_.append(subject(), message.bytes, message.expected, message.message_id, &sequence,
                        &actual, message.headers);
  // Stored now or before (a duplicate answers with the first one's
  // sequence), or refused because a record follows its fence (this one
  // stored before, or another node's): either way the log has answered,
  // and following it applies what it holds. A duplicate still being
  // replicated answers with sequence 0: not yet.
  if (s.ok() && sequence == 0) s = {Errc::unavailable, "the log has not stored it yet"};
  if (!s.ok() && s.code != Errc::conflict) {
    return {s.code, "the append that got no answer: " + s.message};
  }
  spdlog::info(
      "shard {}: the log answered for the append that got no answer ({}); following it",
      settings_.shard,
      s.ok() ? "record " + std::to_string(sequence) : std::string("another record follows"));
  std::lock_guard lock(mutex_);
  in_doubt_.reset();
  changed_.notify_all();
  return {};
}

Status ShardReplica::append_barrier() {
  std::uint64_t expected;
  std::int64_t epoch;
  std::string previous;
  {
    std::lock_guard lock(mutex_);
    if (!owner_ || !barrier_ || behind_ || !fault_.empty()) return {};
    expected = tail_;
    epoch = lease_;
    previous = digest_;
  }
  auto group = std::make_shared<store::ChangeGroup>();
  group->shard = settings_.shard;
  group->epoch = static_cast<std::uint64_t>(epoch);
  group->schema = store::Store::kSchemaVersion;
  group->previous = previous;
  const std::string record = store::encode_change_group(*group);
  std::uint64_t sequence = 0, first = 0;
  if (Status s = append_record(record, expected, &sequence, &first); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  // The deposed owner's last append may still be on its way through the
  // log's replication, under the same fence (docs/scale-out.md, "Siblings").
  if (Status s = check_first_after(expected, first); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  // Held like any record: its position and digest go into the store.
  const std::string digest = digest_of(record);
  if (Status s = hold_record(group, sequence, digest); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("shard {}: appended record {} (barrier after {}, lease {}, hash {})",
                  settings_.shard, sequence, expected, epoch, short_hex(digest));
  }
  std::lock_guard lock(mutex_);
  tail_ = sequence;
  barrier_ = false;
  ++appended_;
  spdlog::info("shard {}: this node ({}) writes it now, from log sequence {}", settings_.shard,
               settings_.node, sequence);
  changed_.notify_all();
  return {};
}

void sink_groups(std::span<ShardReplica* const> replicas, std::vector<store::SunkGroup>& groups) {
  std::vector<ShardReplica::PendingGroup> pending(groups.size());
  std::vector<bool> begun(groups.size(), false);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    store::SunkGroup& g = groups[i];
    if (!g.outcome.ok()) continue;
    if (g.shard >= replicas.size()) {
      g.outcome = {Errc::conflict, "a write of shard " + std::to_string(g.shard) +
                                       " in a cluster of " + std::to_string(replicas.size())};
      continue;
    }
    g.outcome = replicas[g.shard]->begin_group(*g.changes, &pending[i]);
    begun[i] = g.outcome.ok();
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (begun[i])
      groups[i].outcome = replicas[groups[i].shard]->end_group(pending[i], &groups[i].position);
  }
}

}  // namespace memos::cluster
