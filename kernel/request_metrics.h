// request_metrics.h — what memosd counts of the requests it answers
// (`memctl metrics`, metrics.textfile): per operation, its answers by code
// and a histogram of the seconds from its arrival to its answer.
//
// Every request's last reply adds to atomics (no lock on the request path:
// replies come from the loop, workers, the writer and the executor lane);
// write() reads them, each counter on its own, so a scrape during traffic
// may see one request in the count and not yet in the histogram — as
// every Prometheus client's counters may.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/prometheus_text.h"

namespace memos::kernel {

class RequestMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (then +Inf).
  static constexpr std::array<double, 18> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                      1,      2.5,     5,      10,    60,     300};

  RequestMetrics();

  // One answered request: `last` is its last reply (its code is read from
  // it), the time counts from `arrived` to now. Thread-safe.
  void record(wire::Request::Which operation, const kj::Array<capnp::word>& last,
              std::chrono::steady_clock::time_point arrived);

  // memosd_requests_total and memosd_request_duration_seconds, for the
  // operations answered at least once.
  void write(PrometheusText* out) const;

 private:
  // The same with its code known (`error`: nullptr when it succeeded) and
  // its seconds measured.
  void record(wire::Request::Which operation, const wire::ErrorCode* error, double seconds);
  // The code of a last reply `frame` (nullopt: it succeeded).
  static std::optional<wire::ErrorCode> error_of(const kj::Array<capnp::word>& frame);

  std::size_t operations_ = 0;  // the schema's request kinds
  std::size_t codes_ = 0;       // ok, then each ErrorCode
  std::vector<std::string> operation_names_, code_names_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> answers_;  // [operation][code]
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // [operation][bucket], not cumulative
  std::unique_ptr<std::atomic<std::uint64_t>[]> micros_;   // [operation]: summed time
};

}  // namespace memos::kernel
