// blob_bucket.h — the cluster's shared blobs (KV states, adapters) in a
// JetStream object store bucket, replicated by the same Raft groups as the
// log: a state stored on one node restores on another (docs/scale-out.md,
// "Blobs shared").
//
// The layout is JetStream's object store, so `nats object ls/get` read it:
// stream OBJ_<bucket> holds each blob's bytes in chunks on
// `$O.<bucket>.C.<nuid>` (a fresh random nuid per upload, so an upload cut
// short never mixes with the next) and then its description on
// `$O.<bucket>.M.<base64url(name)>` — JSON with the nuid, size, chunk count
// and SHA-256. The name is the blob's content key (64 hex digits), so the
// description is written once and never changes; it is appended only after
// every chunk is acknowledged by a quorum, so a blob that has one is whole.
// A fetch checks the size, the chunk count and, through BlobUpload, the
// digest: what the bucket holds is never taken on trust. Chunks are read
// with direct gets, which any replica answers with the raw bytes (a read
// through the stream's leader carries them in JSON as base64, and costs
// several times as much CPU on both sides); if what they gave fails its
// checks, the fetch is done again from the leader alone.
//
// A blob's description is written again each time a node uses a blob it
// has not checked for a while (a touch, fenced on the description it read),
// so its time is its last use. The log's bucket is swept of blobs unused
// past a grace period that no record references (list_stale(),
// remove_if_unchanged(), fenced on the description listed); the index and
// store snapshots' buckets remove a file once a newer one replaces it
// (remove()).
//
// Thread-safety: every method may be called from any thread.
//
// Errors (store::Status): unavailable — JetStream cannot answer now
// (retryable); not_found — the bucket has no such blob; corrupt — what the
// bucket holds is not a blob as this file writes one; io, storage_full —
// the local files.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster/jetstream.h"
#include "memcube/blob_store.h"

namespace memos::cluster {

// What this node moved through the bucket since it started (memctl
// metrics): uploads that the bucket lacked, fetches of blobs this node
// lacked, and the attempts that failed.
struct BucketCounters {
  std::uint64_t uploads = 0, upload_bytes = 0, upload_failures = 0;
  std::uint64_t fetches = 0, fetch_bytes = 0, fetch_failures = 0;
};

// What a bucket holds, as its stream's leader says.
struct BucketUsage {
  std::uint64_t blobs = 0;  // described in it (each uploaded whole)
  std::uint64_t bytes = 0;  // its stream stores, on each replica
};

struct BucketSettings {
  std::string name;  // the bucket: letters, digits, '_' and '-'
  int replicas = 1;
  // Bytes per chunk, at most (and never more than the server takes in one
  // message). Larger than JetStream's own 128 KiB: each chunk of an upload
  // waits for a quorum's acknowledgement (bench/README.md, blob-share).
  std::size_t chunk_bytes = 512u << 10;
  // How long a blob this node uploaded or touched is taken as held without
  // asking (known_published()). A sweep removes only blobs untouched for
  // longer than this (docs/scale-out.md, "Blobs shared").
  std::chrono::milliseconds known_for{600000};
};

// A blob a sweep may remove (BlobBucket::list_stale): its description, as
// read then.
struct StaleBlob {
  store::BlobId id{};
  std::uint64_t sequence = 0;  // of its description in the bucket's stream
  std::string nuid;            // of its chunks
};

class BlobBucket : public store::SharedBlobs {
 public:
  // Makes sure the bucket's stream exists. Errors: conflict (a stream of
  // that name with other settings), unavailable, corrupt.
  static std::unique_ptr<BlobBucket> open(BucketSettings settings, NatsConnection& nats,
                                          std::chrono::milliseconds timeout, Status* status);

  Status publish(const store::BlobId& id, std::uint64_t size,
                 const store::BlobStore& from) override;
  bool known_published(const store::BlobId& id) const override;
  Status fetch(const store::BlobId& id, std::uint64_t size, store::BlobStore& into) override;
  // Removes blob `id` from the bucket: its description first, so that no
  // fetch starts on it, then its chunks (a fetch already reading them
  // fails as corrupt). A blob the bucket lacks is not an error. Only for
  // blobs nothing else may want: an index or store snapshot's, once a newer
  // one replaces it (the log's blobs go by the sweep below). Errors:
  // unavailable, corrupt.
  Status remove(const store::BlobId& id);

  // The sweep of the log's bucket, in two halves so that the caller can
  // make sure, between them, that no record references a blob it lists
  // (docs/scale-out.md, "Blobs shared"). publish() of a blob the bucket
  // holds appends its description again (a touch), fenced on the one it
  // read, so every use of a blob leaves a recent description; a removal is
  // fenced on the description the listing read, so a blob touched or put
  // since stays.
  //
  // Appends to `*out` the blobs whose descriptions the stream stored before
  // `before_ms` (ms since the epoch, the server's clock), at most `max` of
  // them, in stream order from sequence `*cursor` (0 or 1: the start). The
  // stream stores in time order, so the listing ends at the first
  // description stored at or after `before_ms`. `*cursor` gets where the
  // next listing goes on: past the last one read when `max` cut this one
  // short, else 1 (the start again). So a sweep that lists `max` at a time
  // goes round every old description, however many stay referenced, rather
  // than listing the same first `max` each time. A description that names
  // no blob is skipped. Errors: unavailable, corrupt (`*cursor` unchanged).
  Status list_stale(std::uint64_t before_ms, std::size_t max, std::uint64_t* cursor,
                    std::vector<StaleBlob>* out);
  // Removes `blob` if its description is still the one listed: a deletion
  // mark is appended fenced on it, then the descriptions, the mark and the
  // chunks go. `*removed` says whether it was. Errors: unavailable,
  // corrupt.
  Status remove_if_unchanged(const StaleBlob& blob, bool* removed);
  // For a bucket whose files something else names (an index or store
  // snapshot's key in etcd): removes every blob listed before `before_ms`
  // that `named` does not hold (64 hex digits each), as above; `*removed`
  // counts them. A file left by a publish cut short, or by two nodes
  // publishing at once, goes this way. Errors: as list_stale().
  Status remove_unnamed(std::uint64_t before_ms, const std::unordered_set<std::string>& named,
                        std::uint64_t* removed);

  // This node's transfers since it started (no round trip).
  BucketCounters counters() const;
  // What the bucket holds now, asked within `timeout`. Errors: not_found
  // (its stream is gone), unavailable, corrupt.
  Status usage(std::chrono::milliseconds timeout, BucketUsage* out);

  const std::string& name() const { return settings_.name; }
  // The bucket's stream (OBJ_<name>).
  std::string stream() const { return "OBJ_" + settings_.name; }
  // The subject of blob `id`'s description.
  std::string meta_subject(const store::BlobId& id) const;
  // Every description's subject (a wildcard).
  std::string meta_subjects() const;
  // The subject of upload `nuid`'s chunks.
  std::string chunk_subject(const std::string& nuid) const;

 private:
  BlobBucket(BucketSettings settings, NatsConnection& nats, std::chrono::milliseconds timeout)
      : settings_(std::move(settings)), nats_(nats), js_(nats, timeout) {}

  struct Description {
    std::string nuid;
    std::uint64_t size = 0;
    std::uint64_t chunks = 0;
    bool deleted = false;
    std::uint64_t sequence = 0;  // of the message that holds it
    std::string text;            // as stored
  };
  // Appends `description` as blob `id`'s description (or its deletion mark),
  // fenced on `expected` when given, then drops the older ones of its
  // subject. `*sequence` gets its own. Errors: conflict (the fence failed),
  // unavailable, corrupt.
  Status append_description(const store::BlobId& id, const std::string& description,
                            std::optional<std::uint64_t> expected, std::string_view message_id,
                            std::uint64_t* sequence);
  // The bucket's description of `id`. Errors: not_found, unavailable,
  // corrupt.
  Status describe(const store::BlobId& id, Description* out);
  // Reads the chunks `d` names into `into` (directly from any replica, or
  // from the stream's leader only). Errors: as fetch().
  Status fetch_chunks(const store::BlobId& id, const Description& d, store::BlobStore& into,
                      bool leader_only);
  void remember(const store::BlobId& id);
  // Appends the `size` bytes of blob `id`, read from `from`, to the chunks
  // of upload `nuid`, `chunk` bytes at a time; `*chunks` counts them.
  // Errors: as publish().
  Status send_chunks(const store::BlobId& id, std::uint64_t size, const store::BlobStore& from,
                     const std::string& nuid, std::size_t chunk, std::uint64_t* chunks);

  BucketSettings settings_;
  NatsConnection& nats_;
  JetStream js_;
  mutable std::mutex mutex_;  // guards published_
  // Blobs the bucket is known to hold, with when this node uploaded or
  // touched each (bounded: forgotten wholesale when full, which costs a
  // lookup); remove() forgets the one it removes.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> published_;
  std::atomic<std::uint64_t> uploads_{0}, upload_bytes_{0}, upload_failures_{0};
  std::atomic<std::uint64_t> fetches_{0}, fetch_bytes_{0}, fetch_failures_{0};
};

}  // namespace memos::cluster
