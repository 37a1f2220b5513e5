#include "kernel/rate_limits.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace memos::kernel {
namespace {

// Past this many buckets, full ones are forgotten (forget_full).
constexpr std::size_t kSweepAt = 4096;

const std::optional<policies::Rate>& rate_of(const policies::TenantPolicy& p,
                                             RateLimits::Kind kind) {
  switch (kind) {
    case RateLimits::Kind::write:
      return p.writes;
    case RateLimits::Kind::search:
      return p.searches;
    case RateLimits::Kind::chat:
      break;
  }
  return p.chats;
}

const char* name_of(RateLimits::Kind kind) {
  switch (kind) {
    case RateLimits::Kind::write:
      return "writes_per_s";
    case RateLimits::Kind::search:
      return "searches_per_s";
    case RateLimits::Kind::chat:
      break;
  }
  return "chats_per_min";
}

}  // namespace

std::optional<RateLimits::Kind> RateLimits::kind_of(wire::Request::Which op) {
  using R = wire::Request;
  switch (op) {
    case R::ADD:
    case R::UPDATE:
    case R::REMOVE:
    case R::SET_STATE:
    case R::ROLLBACK:
    case R::IMPORT_BEGIN:
      return Kind::write;
    case R::SEARCH:
      return Kind::search;
    case R::CHAT:
    case R::KV_PREFILL:
      return Kind::chat;
    default:
      return std::nullopt;
  }
}

Status RateLimits::take(std::uint32_t tenant, wire::Request::Which operation,
                        const policies::TenantPolicy& policy, Clock::time_point now) {
  auto kind = kind_of(operation);
  if (!kind) return {};
  const auto& rate = rate_of(policy, *kind);
  if (!rate) return {};
  if (buckets_.size() >= kSweepAt) forget_full(now);
  auto [it, fresh] = buckets_.try_emplace({tenant, *kind});
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = rate->burst;
  } else {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(rate->burst, b.tokens + std::max(0.0, elapsed) * rate->per_second);
  }
  b.last = now;
  b.rate = *rate;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return {};
  }
  double wait_ms = std::ceil((1 - b.tokens) / rate->per_second * 1000);
  Status refused{Code::rate_limited,
                 std::string(name_of(*kind)) + " of the tenant's policy reached" +
                     (policy.file.empty() ? "" : " (" + policy.file + ")"),
                 true};
  refused.retry_after_ms = static_cast<std::uint32_t>(std::clamp(wait_ms, 1.0, 86400000.0));
  return refused;
}

void RateLimits::forget_full(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    if (b.tokens + elapsed * b.rate.per_second >= b.rate.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace memos::kernel
