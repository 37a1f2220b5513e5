#include "cluster/blob_bucket.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <deque>
#include <random>

#include <nlohmann/json.hpp>

#include "cluster/base64.h"

namespace memos::cluster {

using json = nlohmann::json;
using store::Errc;

namespace {

// The most a description may claim: far above any state or adapter
// (store.max_adapter_mb, activation.max_state_mb), far below what would
// let a hostile bucket make a node fill its disk before the digest fails.
constexpr std::uint64_t kMaxBlobBytes = 64ull << 30;
constexpr std::uint64_t kMaxChunks = 1u << 24;
// Files one remove_unnamed() lists at most: a snapshot bucket holds about
// one per cube and retriever; the rest wait for the next sweep.
constexpr std::size_t kMaxListed = 100000;

// RFC 4648's URL alphabet, padded: how JetStream's object store names a
// description's subject and writes a digest.
std::string base64url(std::string_view bytes) {
  std::string s = base64_encode(bytes);
  std::replace(s.begin(), s.end(), '+', '-');
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

// A fresh upload's name: 22 letters and digits, as JetStream's own nuids.
std::string fresh_nuid() {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, 61);
  std::string nuid(22, '0');
  for (char& c : nuid) c = kAlphabet[pick(random)];
  return nuid;
}

bool valid_nuid(const std::string& nuid) {
  return !nuid.empty() && nuid.size() <= 64 &&
         std::all_of(nuid.begin(), nuid.end(), [](char c) { return std::isalnum(c & 0xff); });
}

std::string now_rfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

std::unique_ptr<BlobBucket> BlobBucket::open(BucketSettings settings, NatsConnection& nats,
                                             std::chrono::milliseconds timeout, Status* status) {
  std::unique_ptr<BlobBucket> bucket(new BlobBucket(std::move(settings), nats, timeout));
  StreamSettings stream;
  stream.name = bucket->stream();
  stream.subjects = {bucket->chunk_subject(">"), bucket->meta_subjects()};
  stream.replicas = bucket->settings_.replicas;
  stream.allow_direct = true;  // chunks are checked by the blob's digest
  if (*status = bucket->js_.ensure_stream(stream); !status->ok()) return nullptr;
  return bucket;
}

std::string BlobBucket::meta_subject(const store::BlobId& id) const {
  return "$O." + settings_.name + ".M." + base64url(store::to_hex(id));
}

std::string BlobBucket::meta_subjects() const {
  return "$O." + settings_.name + ".M.>";
}

std::string BlobBucket::chunk_subject(const std::string& nuid) const {
  return "$O." + settings_.name + ".C." + nuid;
}

bool BlobBucket::known_published(const store::BlobId& id) const {
  std::lock_guard lock(mutex_);
  auto it = published_.find(std::string(id.begin(), id.end()));
  // Past known_for a sweep may have removed it: publish() asks, and touches it.
  return it != published_.end() &&
         std::chrono::steady_clock::now() - it->second < settings_.known_for;
}

void BlobBucket::remember(const store::BlobId& id) {
  std::lock_guard lock(mutex_);
  if (published_.size() >= (1u << 20)) published_.clear();
  published_[std::string(id.begin(), id.end())] = std::chrono::steady_clock::now();
}

Status BlobBucket::append_description(const store::BlobId& id, const std::string& description,
                                      std::optional<std::uint64_t> expected,
                                      std::string_view message_id, std::uint64_t* sequence) {
  if (Status s = js_.append(meta_subject(id), description, expected, message_id, sequence); !s.ok())
    return s;
  // The older ones are of no more use; what the sweep lists stays one per
  // blob. Failing here leaves them for the next append.
  (void)js_.purge_below(stream(), meta_subject(id), *sequence);
  return {};
}

Status BlobBucket::describe(const store::BlobId& id, Description* out) {
  StoredMessage m;
  if (Status s = js_.last_message(stream(), meta_subject(id), &m); !s.ok()) {
    if (s.code == Errc::not_found) {
      return {Errc::not_found, "blob " + store::to_hex(id) + " is not in bucket " + settings_.name};
    }
    return s;
  }
  const std::string what = "bucket " + settings_.name + "'s description of blob " +
                           store::to_hex(id).substr(0, 12) + ": ";
  try {
    const json meta = json::parse(m.data);
    out->sequence = m.sequence;
    out->text = m.data;
    out->deleted = meta.value("deleted", false);
    if (out->deleted) return {};
    if (meta.at("name").get<std::string>() != store::to_hex(id)) {
      return {Errc::corrupt, what + "it names another blob"};
    }
    out->nuid = meta.at("nuid").get<std::string>();
    out->size = meta.at("size").get<std::uint64_t>();
    out->chunks = meta.at("chunks").get<std::uint64_t>();
  } catch (const json::exception& e) {
    return {Errc::corrupt, what + e.what()};
  }
  if (!valid_nuid(out->nuid)) return {Errc::corrupt, what + "its nuid is not a name"};
  if (out->size > kMaxBlobBytes || out->chunks > kMaxChunks) {
    return {Errc::corrupt, what + "it claims " + std::to_string(out->size) + " bytes in " +
                               std::to_string(out->chunks) + " chunks"};
  }
  // Every chunk holds a byte at least, and bytes need a chunk.
  if (out->chunks > out->size || (out->size > 0 && out->chunks == 0)) {
    return {Errc::corrupt, what + std::to_string(out->size) + " bytes cannot be " +
                               std::to_string(out->chunks) + " chunks"};
  }
  return {};
}

Status BlobBucket::send_chunks(const store::BlobId& id, std::uint64_t size,
                               const store::BlobStore& from, const std::string& nuid,
                               std::size_t chunk, std::uint64_t* chunks) {
  // Up to kWindow chunks in flight, so that an upload does not wait out a
  // quorum's round trip for each chunk in turn.
  constexpr std::size_t kWindow = 8;
  std::deque<JetStream::PendingAppend> in_flight;
  // Whatever is still in flight when this returns early is not waited for.
  struct Forget {
    JetStream& js;
    std::deque<JetStream::PendingAppend>& pending;
    ~Forget() {
      for (const auto& p : pending) js.forget(p);
    }
  } forget{js_, in_flight};
  std::uint64_t last_sequence = 0;
  auto settle_oldest = [&]() -> Status {
    std::uint64_t sequence = 0;
    Status settled = js_.end_append(in_flight.front(), &sequence);
    in_flight.pop_front();
    if (!settled.ok()) return settled;
    // One connection's messages are stored in the order sent; were they
    // not, the description would describe other bytes.
    if (sequence <= last_sequence) {
      return {Errc::unavailable, "bucket " + settings_.name + " stored a chunk out of order"};
    }
    last_sequence = sequence;
    return {};
  };
  const std::string chunks_subject = chunk_subject(nuid);
  // One open file for the whole upload: a collection while it runs cannot
  // cut it short.
  std::unique_ptr<store::BlobReader> reader;
  Status s = from.open_reader(id, &reader);
  if (!s.ok()) return s;
  std::uint64_t sent = 0;
  std::string piece;
  while (sent < size) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - sent));
    if (s = reader->read_at(sent, want, &piece); !s.ok()) return s;
    if (piece.size() != want) {
      return {Errc::corrupt, from.path(id) + " is shorter than its blob's size"};
    }
    if (in_flight.size() == kWindow) {
      if (s = settle_oldest(); !s.ok()) return s;
    }
    // The message id makes an append retried within the stream's duplicate
    // window land once.
    JetStream::PendingAppend pending;
    s = js_.begin_append(chunks_subject, piece, std::nullopt, nuid + "." + std::to_string(*chunks),
                         &pending);
    if (!s.ok()) return s;
    in_flight.push_back(pending);
    sent += want;
    ++*chunks;
  }
  while (!in_flight.empty()) {
    if (s = settle_oldest(); !s.ok()) return s;
  }
  return {};
}

Status BlobBucket::publish(const store::BlobId& id, std::uint64_t size,
                           const store::BlobStore& from) {
  Description have;
  Status s = describe(id, &have);
  if (s.ok() && !have.deleted && have.size == size) {
    // A touch: the same description again, fenced on the one read, so that
    // a sweep that listed it does not remove it now (its removal is fenced
    // on that one too). Of two, the one that loses learns of the other.
    std::uint64_t sequence = 0;
    s = append_description(id, have.text, have.sequence, "", &sequence);
    if (s.code == Errc::conflict) s = describe(id, &have);
    if (s.ok() && !have.deleted && have.size == size) {
      remember(id);
      return {};
    }
  }
  if (!s.ok() && s.code != Errc::not_found) return s;
  const std::string nuid = fresh_nuid();
  // Room for the headers beside the bytes, under the server's limit.
  const std::size_t limit = nats_.max_payload();
  const std::size_t chunk =
      std::min(settings_.chunk_bytes, limit > (16u << 10) ? limit - (8u << 10) : limit / 2);
  std::uint64_t chunks = 0;
  if (s = send_chunks(id, size, from, nuid, chunk, &chunks); !s.ok()) {
    upload_failures_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  json meta = {{"name", store::to_hex(id)},
               {"bucket", settings_.name},
               {"nuid", nuid},
               {"size", size},
               {"mtime", now_rfc3339()},
               {"chunks", chunks},
               {"digest", "SHA-256=" + base64url(std::string_view(
                                           reinterpret_cast<const char*>(id.data()), id.size()))},
               {"options", {{"max_chunk_size", chunk}}}};
  std::uint64_t sequence = 0;
  if (s = append_description(id, meta.dump(), std::nullopt, "meta." + nuid, &sequence); !s.ok()) {
    upload_failures_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  uploads_.fetch_add(1, std::memory_order_relaxed);
  upload_bytes_.fetch_add(size, std::memory_order_relaxed);
  remember(id);
  return {};
}

Status BlobBucket::remove(const store::BlobId& id) {
  Description d;
  Status s = describe(id, &d);
  if (s.code == Errc::not_found) return {};
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mutex_);
    published_.erase(std::string(id.begin(), id.end()));
  }
  if (s = js_.purge(stream(), meta_subject(id)); !s.ok()) return s;
  if (d.deleted) return {};
  return js_.purge(stream(), chunk_subject(d.nuid));
}

Status BlobBucket::list_stale(std::uint64_t before_ms, std::size_t max, std::uint64_t* cursor,
                              std::vector<StaleBlob>* out) {
  std::uint64_t next = std::max<std::uint64_t>(*cursor, 1);
  for (std::size_t listed = 0;;) {
    if (listed == max) {
      *cursor = next;
      return {};
    }
    StoredMessage m;
    Status s = js_.next_message(stream(), next, meta_subjects(), &m);
    if (s.code == Errc::not_found || (s.ok() && m.time_ms >= before_ms)) {
      *cursor = 1;  // the end, or only newer ones after: start again next time
      return {};
    }
    if (!s.ok()) return s;
    next = m.sequence + 1;
    if (m.time_ms == 0) continue;
    const json meta = json::parse(m.data, nullptr, false);
    StaleBlob blob;
    if (!meta.is_object() || !meta.contains("name") || !meta["name"].is_string() ||
        !store::from_hex(meta["name"].get<std::string>(), &blob.id) ||
        m.subject != meta_subject(blob.id)) {
      continue;  // not a description this code writes: never removed
    }
    if (meta.contains("deleted") && meta["deleted"] == true) {
      // A removal's mark, of no more use: it goes, and whatever came before
      // it on its subject, never a description put after it.
      (void)js_.purge_below(stream(), m.subject, m.sequence + 1);
      continue;
    }
    if (!meta.contains("nuid") || !meta["nuid"].is_string()) continue;
    blob.nuid = meta["nuid"].get<std::string>();
    if (!valid_nuid(blob.nuid)) continue;
    blob.sequence = m.sequence;
    out->push_back(std::move(blob));
    ++listed;
  }
}

Status BlobBucket::remove_if_unchanged(const StaleBlob& blob, bool* removed) {
  *removed = false;
  const json mark = {{"name", store::to_hex(blob.id)},
                     {"bucket", settings_.name},
                     {"nuid", blob.nuid},
                     {"size", 0},
                     {"chunks", 0},
                     {"mtime", now_rfc3339()},
                     {"deleted", true}};
  std::uint64_t sequence = 0;
  Status s = append_description(blob.id, mark.dump(), blob.sequence, "", &sequence);
  if (s.code == Errc::conflict) return {};  // touched or put again since: it stays
  if (!s.ok()) return s;
  *removed = true;
  {
    std::lock_guard lock(mutex_);
    published_.erase(std::string(blob.id.begin(), blob.id.end()));
  }
  // The mark has done its work (a touch fenced on the description fails):
  // it goes too, and never a description put after it.
  (void)js_.purge_below(stream(), meta_subject(blob.id), sequence + 1);
  // A fetch already reading them fails as corrupt, and looks again.
  return js_.purge(stream(), chunk_subject(blob.nuid));
}

Status BlobBucket::remove_unnamed(std::uint64_t before_ms,
                                  const std::unordered_set<std::string>& named,
                                  std::uint64_t* removed) {
  *removed = 0;
  std::vector<StaleBlob> stale;
  std::uint64_t from_start = 1;
  if (Status s = list_stale(before_ms, kMaxListed, &from_start, &stale); !s.ok()) return s;
  for (const StaleBlob& blob : stale) {
    if (named.contains(store::to_hex(blob.id))) continue;
    bool gone = false;
    if (Status s = remove_if_unchanged(blob, &gone); !s.ok()) return s;
    *removed += gone;
  }
  return {};
}

BucketCounters BlobBucket::counters() const {
  BucketCounters c;
  c.uploads = uploads_.load(std::memory_order_relaxed);
  c.upload_bytes = upload_bytes_.load(std::memory_order_relaxed);
  c.upload_failures = upload_failures_.load(std::memory_order_relaxed);
  c.fetches = fetches_.load(std::memory_order_relaxed);
  c.fetch_bytes = fetch_bytes_.load(std::memory_order_relaxed);
  c.fetch_failures = fetch_failures_.load(std::memory_order_relaxed);
  return c;
}

Status BlobBucket::usage(std::chrono::milliseconds timeout, BucketUsage* out) {
  JetStream js(nats_, timeout);
  StreamUsage u;
  if (Status s = js.stream_usage(stream(), meta_subjects(), &u); !s.ok()) return s;
  *out = BucketUsage{u.subjects, u.bytes};
  return {};
}

Status BlobBucket::fetch(const store::BlobId& id, std::uint64_t size, store::BlobStore& into) {
  Description d;
  if (Status s = describe(id, &d); !s.ok()) return s;
  if (d.deleted) {
    return {Errc::not_found,
            "blob " + store::to_hex(id) + " was removed from bucket " + settings_.name};
  }
  if (d.size != size) {
    return {Errc::corrupt, "bucket " + settings_.name + " describes blob " +
                               store::to_hex(id).substr(0, 12) + " as " + std::to_string(d.size) +
                               " bytes; its record says " + std::to_string(size)};
  }
  // Chunks from any replica first (direct gets: raw bytes, no JSON); once
  // more from the leader alone if what came fails its checks, since a
  // replica may serve what the stream never committed.
  Status s = fetch_chunks(id, d, into, false);
  if (s.code == Errc::corrupt) s = fetch_chunks(id, d, into, true);
  if (!s.ok()) {
    fetch_failures_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  fetches_.fetch_add(1, std::memory_order_relaxed);
  fetch_bytes_.fetch_add(d.size, std::memory_order_relaxed);
  remember(id);
  return {};
}

Status BlobBucket::fetch_chunks(const store::BlobId& id, const Description& d,
                                store::BlobStore& into, bool leader_only) {
  std::unique_ptr<store::BlobUpload> upload;
  if (Status s = into.begin_upload(id, d.size, &upload); !s.ok()) return s;
  const std::string chunks_subject = chunk_subject(d.nuid);
  std::uint64_t offset = 0, after = 0;
  for (std::uint64_t i = 0; i < d.chunks; ++i) {
    StoredMessage m;
    Status s{Errc::not_found, ""};
    if (!leader_only) s = js_.direct_next(stream(), after + 1, chunks_subject, &m);
    // A replica that lags, or a stream made without direct gets: the leader.
    if (!s.ok() || m.subject != chunks_subject) {
      s = js_.next_message(stream(), after + 1, chunks_subject, &m);
    }
    if (!s.ok()) {
      if (s.code == Errc::not_found) {
        return {Errc::corrupt, "bucket " + settings_.name + " lacks chunk " + std::to_string(i) +
                                   " of blob " + store::to_hex(id)};
      }
      return s;
    }
    if (m.subject != chunks_subject || m.data.empty() || m.data.size() > d.size - offset) {
      return {Errc::corrupt, "bucket " + settings_.name + "'s chunk " + std::to_string(i) +
                                 " of blob " + store::to_hex(id) + " does not fit its size"};
    }
    if (Status w = upload->write(offset, m.data); !w.ok()) return w;
    offset += m.data.size();
    after = m.sequence;
  }
  // finish() checks the size and the digest: a wrong byte is corrupt here.
  return upload->finish();
}

}  // namespace memos::cluster
