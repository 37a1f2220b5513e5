// The metrics request (memctl metrics): memosd's Prometheus text, built on
// a worker (it reads the store's per-tenant rows).
#include "kernel/handlers/areas.h"
#include "kernel/metrics_report.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

// Errors: permission_denied (not an admin: the figures are every tenant's),
// metrics_text's.
void metrics(const Services& s, const RequestContext& ctx) {
  if (!ctx.admin) {
    return ctx.fail(Status::permission_denied(
        "metrics are for root, memosd's own uid or an admin tenant (they count every "
        "tenant's memory)"));
  }
  s.run_on_worker([&s, ctx] {
    std::string text;
    if (Status st = metrics_text(s, &text); !st.ok()) return ctx.fail(st);
    ctx.respond([&](wire::Response::Builder r) { r.setMetrics(text); });
  });
}

}  // namespace

void add_metrics_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::METRICS, [&s](const RequestContext& c, R::Reader) { metrics(s, c); });
}

}  // namespace memos::kernel
