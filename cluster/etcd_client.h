// etcd_client.h — the etcd v3 calls cluster mode needs (leases, a key
// created only if absent, reads, puts and deletes), spoken as JSON over
// HTTP/1.1 to etcd's gateway (/v3/...), one short connection per call:
// memosd makes a few calls a second, and this keeps gRPC out of the build.
//
// Each call tries the endpoints in turn until one answers; a call that
// reached etcd and was refused is not retried elsewhere.
//
// Errors (store::Status): unavailable — no endpoint answered within the
// timeout, or etcd answered that it cannot now (no leader); not_found — no
// such lease (expired or revoked); corrupt — a reply that is not etcd's;
// conflict — etcd refused the request as malformed (a bug here).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/store_types.h"

namespace memos::cluster {

class TlsContext;  // tls_stream.h

using store::Errc;
using store::Status;

struct EtcdKeyValue {
  std::string key, value;
  std::int64_t lease = 0;            // 0: none
  std::int64_t create_revision = 0;  // the revision that created it
  std::int64_t mod_revision = 0;
};

class EtcdClient {
 public:
  // `endpoints`: "http://host:port" (or "host:port"), tried in order.
  // `tls`: every endpoint is spoken to over TLS ("https://host:port";
  // tls_stream.h says its errors, all unavailable here).
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
             std::shared_ptr<const TlsContext> tls = nullptr);

  // A new lease of `ttl_s` seconds. Errors: unavailable, corrupt.
  Status grant_lease(std::int64_t ttl_s, std::int64_t* id);
  // Renews the lease; `ttl_s` gets what etcd granted again. Errors:
  // not_found (the lease lapsed or was revoked: whatever it held is gone),
  // unavailable, corrupt.
  Status keep_alive(std::int64_t id, std::int64_t* ttl_s);
  // Ends the lease now and deletes its keys. Errors: unavailable, corrupt.
  Status revoke(std::int64_t id);

  // Puts `key` = `value` under `lease` (0: none) only if the key does not
  // exist. `*created` says whether it did; if not, `*holder` (when given)
  // gets the key as it is. Errors: unavailable, corrupt.
  Status create(std::string_view key, std::string_view value, std::int64_t lease, bool* created,
                EtcdKeyValue* holder = nullptr);
  // Puts `key` = `value` (no lease) only if the key's mod revision is still
  // `mod_revision` (0: only if the key does not exist), so that of two
  // writers that read the same key, one replaces it and the other learns it
  // changed. `*replaced` says whether it did. Errors: unavailable, corrupt.
  Status replace(std::string_view key, std::string_view value, std::int64_t mod_revision,
                 bool* replaced);
  // Errors: unavailable, corrupt.
  Status put(std::string_view key, std::string_view value, std::int64_t lease = 0);
  // The key, or nullopt. Errors: unavailable, corrupt.
  Status get(std::string_view key, std::optional<EtcdKeyValue>* out);
  // Every key starting with `prefix`, in key order. Errors: unavailable,
  // corrupt.
  Status list(std::string_view prefix, std::vector<EtcdKeyValue>* out);
  // Deletes the key (absent is no error). Errors: unavailable, corrupt.
  Status erase(std::string_view key);

  // The endpoint tried first: the one that answered last (the first listed
  // until one has).
  std::string preferred_endpoint() const;

 private:
  // POSTs `body` (JSON) to `path`; `*reply` gets the JSON answer of the
  // first endpoint that answers, trying the one that answered last first:
  // a member cut off or dead costs its timeout once, not on every call (a
  // lease renewed every third of its life cannot afford a second per call).
  Status call(std::string_view path, const std::string& body, std::string* reply);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::atomic<std::size_t> preferred_{0};        // index into endpoints_; any thread
  const std::shared_ptr<const TlsContext> tls_;  // null: plain HTTP
};

}  // namespace memos::cluster
