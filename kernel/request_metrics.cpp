#include "kernel/request_metrics.h"

#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace memos::kernel {

RequestMetrics::RequestMetrics() {
  for (auto field : capnp::Schema::from<wire::Request>().getUnionFields()) {
    const auto slot = field.getProto().getDiscriminantValue();
    if (operation_names_.size() <= slot) operation_names_.resize(slot + 1u);
    operation_names_[slot] = field.getProto().getName().cStr();
  }
  code_names_.push_back("ok");
  for (auto e : capnp::Schema::from<wire::ErrorCode>().getEnumerants())
    code_names_.push_back(e.getProto().getName().cStr());
  operations_ = operation_names_.size();
  codes_ = code_names_.size();
  answers_ = std::make_unique<std::atomic<std::uint64_t>[]>(operations_ * codes_);
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(operations_ * (kBuckets.size() + 1));
  micros_ = std::make_unique<std::atomic<std::uint64_t>[]>(operations_);
}

void RequestMetrics::record(wire::Request::Which operation, const wire::ErrorCode* error,
                            double seconds) {
  const auto op = static_cast<std::size_t>(operation);
  if (op >= operations_) return;  // not in this memosd's schema: never dispatched
  std::size_t code = error ? 1 + static_cast<std::size_t>(*error) : 0;
  if (code >= codes_) code = 1;  // a code newer than the schema: "unknown"
  answers_[op * codes_ + code].fetch_add(1, std::memory_order_relaxed);
  if (!(seconds >= 0)) seconds = 0;
  const std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
  buckets_[op * (kBuckets.size() + 1) + bucket].fetch_add(1, std::memory_order_relaxed);
  micros_[op].fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e6)),
                        std::memory_order_relaxed);
}

void RequestMetrics::record(wire::Request::Which operation, const kj::Array<capnp::word>& last,
                            std::chrono::steady_clock::time_point arrived) {
  const auto error = error_of(last);
  record(operation, error ? &*error : nullptr,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count());
}

std::optional<wire::ErrorCode> RequestMetrics::error_of(const kj::Array<capnp::word>& frame) {
  std::optional<wire::ErrorCode> code;
  // memosd built the frame itself: a failure to read it is a bug, counted
  // as internal rather than thrown across the reply path.
  kj::Maybe<kj::Exception> failed = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(frame.asPtr());
    auto response = reader.getRoot<wire::Response>();
    if (response.isError()) code = response.getError().getCode();
  });
  if (failed != nullptr) code = wire::ErrorCode::INTERNAL;
  return code;
}

void RequestMetrics::write(PrometheusText* out) const {
  out->family("memosd_requests_total", "counter",
              "Requests answered, by operation and code (ok, or the error's).");
  std::vector<std::uint64_t> totals(operations_);
  for (std::size_t op = 0; op < operations_; ++op) {
    for (std::size_t code = 0; code < codes_; ++code) {
      const std::uint64_t n = answers_[op * codes_ + code].load(std::memory_order_relaxed);
      totals[op] += n;
      if (n == 0) continue;
      out->sample("memosd_requests_total",
                  {{"operation", operation_names_[op]}, {"code", code_names_[code]}},
                  static_cast<double>(n));
    }
  }
  out->family("memosd_request_duration_seconds", "histogram",
              "Seconds from a request's arrival to its answer, by operation.");
  for (std::size_t op = 0; op < operations_; ++op) {
    if (totals[op] == 0) continue;
    std::uint64_t cumulative = 0;
    const Labels labels = {{"operation", operation_names_[op]}};
    for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += buckets_[op * (kBuckets.size() + 1) + b].load(std::memory_order_relaxed);
      char le[24] = "+Inf";
      if (b < kBuckets.size()) std::snprintf(le, sizeof le, "%g", kBuckets[b]);
      out->sample("memosd_request_duration_seconds_bucket",
                  {{"operation", operation_names_[op]}, {"le", le}},
                  static_cast<double>(cumulative));
    }
    out->sample("memosd_request_duration_seconds_sum", labels,
                static_cast<double>(micros_[op].load(std::memory_order_relaxed)) / 1e6);
    // The count is the +Inf bucket's (read once: buckets and count agree).
    out->sample("memosd_request_duration_seconds_count", labels, static_cast<double>(cumulative));
  }
}

}  // namespace memos::kernel
