// jetstream.h — the few JetStream calls the replication log needs, as
// requests over a NatsConnection to JetStream's API subjects ($JS.API.*):
// make sure the stream exists, append with fencing, read a message by
// sequence, and ask for a subject's last message or sequence.
//
// Errors (store::Status): unavailable — NATS or JetStream cannot answer now
// (no quorum, no connection, a timeout; retryable); conflict — the stream
// exists with other settings, or an append's expected last sequence did not
// hold (someone else appended: the caller was deposed); not_found — no such
// message or stream; corrupt — a reply that is not what JetStream sends.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_connection.h"

namespace memos::cluster {

struct StreamSettings {
  std::string name;
  std::vector<std::string> subjects;
  int replicas = 1;
  std::int64_t max_message_bytes = -1;  // -1: the server's limit
  std::int64_t max_age_ms = 0;          // 0: kept until removed
  bool file_storage = true;
  // Whether any replica may answer direct gets (direct_next()). Not for
  // the log: a replica may serve what the log never committed ("Reading
  // the log"); for content checked by its digest (the blob bucket) a wrong
  // answer is caught, and a direct get costs no JSON or base64.
  bool allow_direct = false;
};

struct StoredMessage {
  std::uint64_t sequence = 0;  // in the stream
  // When the stream stored it, in ms since the epoch by the server's clock;
  // 0 when not given (direct gets).
  std::uint64_t time_ms = 0;
  std::string subject;
  std::string data;
  Headers headers;

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

struct StreamUsage {
  std::uint64_t messages = 0, bytes = 0;
  std::uint64_t last_sequence = 0;  // of the whole stream, whatever its subject
  std::uint64_t subjects = 0;       // distinct ones matching the filter asked for
};

// A stream's Raft group as its leader reports it (STREAM.INFO's "cluster").
struct StreamReplica {
  std::string server;           // the nats-server's name
  bool current = false;         // holds what the leader holds
  bool offline = false;         // the leader cannot reach it
  std::uint64_t active_ms = 0;  // since the leader last heard from it
  std::uint64_t lag = 0;        // operations it is behind the leader
};
struct StreamCluster {
  bool clustered = false;               // false: a server without a cluster, alone
  std::string leader;                   // "" while it elects one
  std::vector<StreamReplica> replicas;  // the others
};

class JetStream {
 public:
  // `timeout` bounds each API call.
  JetStream(NatsConnection& nats, std::chrono::milliseconds timeout)
      : nats_(nats), timeout_(timeout) {}

  // Creates the stream, or finds it already there with the same subjects
  // and replicas. Errors: conflict (there with other settings), unavailable,
  // corrupt.
  Status ensure_stream(const StreamSettings& settings);
  // Appends `data` to `subject` once every replica quorum has it. With
  // `expected_last` set, only if the subject's last message is at that
  // stream sequence (0: the subject has none) — the fencing of a deposed
  // writer. `message_id` (may be empty) makes a retried append within the
  // stream's duplicate window a no-op that answers the first one's
  // sequence. Errors: conflict (the expectation failed: `*actual_last`, when
  // given, gets the subject's last sequence if the server names it),
  // unavailable, corrupt.
  // `extra` headers are stored with the message.
  Status append(std::string_view subject, std::string_view data,
                std::optional<std::uint64_t> expected_last, std::string_view message_id,
                std::uint64_t* sequence, std::uint64_t* actual_last = nullptr,
                const Headers& extra = {});
  // append() in two halves, so that several appends are in flight at once
  // (a blob's chunks; a commit turn's records of several shards, each fenced
  // on its own subject): JetStream stores one connection's messages in the
  // order it sent them. Every begun append must be ended or forgotten.
  // Errors: as append().
  struct PendingAppend {
    std::uint64_t token = 0;
  };
  Status begin_append(std::string_view subject, std::string_view data,
                      std::optional<std::uint64_t> expected_last, std::string_view message_id,
                      PendingAppend* out, const Headers& extra = {});
  Status end_append(const PendingAppend& pending, std::uint64_t* sequence,
                    std::uint64_t* actual_last = nullptr);
  void forget(const PendingAppend& pending);
  // The first message at or after `sequence` on a subject matching `filter`
  // (wildcards allowed), read from the stream's leader: a replica may answer
  // with a message the log never committed — scripts/cluster-test found
  // nats-server 2.9's replicas serving, after partitions and failovers,
  // records that were not the log's (docs/scale-out.md, "Reading the log").
  // Errors: not_found (none yet), unavailable, corrupt.
  Status next_message(std::string_view stream, std::uint64_t sequence, std::string_view filter,
                      StoredMessage* out);
  // As next_message(), answered by any replica of a stream made with
  // allow_direct, the data as it was stored (no JSON, no base64). A replica
  // that lags may answer not_found for a message the leader holds, and one
  // may serve what the log never committed: check what it returns, and ask
  // next_message() when in doubt. Errors: not_found, unavailable, corrupt.
  Status direct_next(std::string_view stream, std::uint64_t sequence, std::string_view filter,
                     StoredMessage* out);
  // `subject`'s last message, read from the stream's leader. Errors:
  // not_found (the subject has none, or no such stream), unavailable,
  // corrupt.
  Status last_message(std::string_view stream, std::string_view subject, StoredMessage* out);
  // The stream sequence of `subject`'s last message, 0 if it has none, as
  // the stream's leader knows it (so it covers every acknowledged append).
  // Errors: not_found (no such stream), unavailable, corrupt.
  Status last_sequence(std::string_view stream, std::string_view subject, std::uint64_t* out);
  // What `stream` stores (each replica holds all of it) and how many
  // distinct subjects match `subjects_filter` ("": not counted). Errors:
  // not_found (no such stream), unavailable, corrupt.
  Status stream_usage(std::string_view stream, std::string_view subjects_filter, StreamUsage* out);
  // The stream's last sequence, whatever its subject, from the stream's
  // state (about 1 KB, whatever the records: a subject's last message
  // carries its record, and an owner's periodic writes make records of
  // hundreds of KiB — parsed once a read barrier's round, they made a
  // follower's reads 4-7 ms each in scripts/cluster-test). Errors:
  // stream_usage()'s.
  Status stream_end(std::string_view stream, std::uint64_t* out);
  // Who leads `stream`'s replicas and how the others keep up (a server
  // that runs without a cluster names none: `clustered` false).
  // Errors: not_found (no such stream), unavailable, corrupt.
  Status stream_cluster(std::string_view stream, StreamCluster* out);
  // Asks `stream`'s leader to give up its role: its replicas elect another
  // (a leader on a slow host or link slows every append). The stream is
  // unavailable for the election's length. Errors: not_found (no such
  // stream), unavailable (no leader now; the server refused), corrupt.
  Status step_down(std::string_view stream);
  // Removes every message of `stream` on `subject` (wildcards allowed);
  // `*purged`, when given, gets how many. Errors: not_found (no such
  // stream), unavailable, corrupt.
  Status purge(std::string_view stream, std::string_view subject, std::uint64_t* purged = nullptr);
  // Removes the messages of `stream` on `subject` whose sequence is below
  // `below` (log compaction). The server then counts a fenced append's
  // expected last sequence from what is left: keep the subject's last
  // message, or its next fenced append is refused. Errors: as purge().
  Status purge_below(std::string_view stream, std::string_view subject, std::uint64_t below,
                     std::uint64_t* purged = nullptr);

 private:
  // A JSON API call; its reply's "error" becomes a Status, and its code
  // (JetStream's err_code) goes to `err_code` when given.
  Status call(const std::string& subject, const std::string& body, std::string* reply,
              int* err_code = nullptr);
  // A STREAM.PURGE request with `body` (JSON). Errors: as purge().
  Status purge_request(std::string_view stream, const std::string& body, std::uint64_t* purged);
  // An append's acknowledgement. Errors: as append().
  static Status read_ack(const NatsMessage& m, std::uint64_t* sequence, std::uint64_t* actual_last);

  NatsConnection& nats_;
  std::chrono::milliseconds timeout_;
};

}  // namespace memos::cluster
