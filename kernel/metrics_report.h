// metrics_report.h — memosd's metrics as Prometheus text (memctl(1)
// "metrics", memosd.conf(5) metrics.textfile): the requests answered and
// their latency (request_metrics.h), connections, the queues (indexing
// backlog, the executor lane), each tenant's cubes, items and bytes, the
// blob bytes the store references, the plugins' health and the
// scheduler's passes. What a scrape costs: one read transaction over the
// per-tenant usage rows (one row a tenant), nothing that grows with items.
#pragma once

#include <string>

#include "kernel/services.h"
#include "kernel/status.h"

namespace memos::kernel {

// The whole exposition. Errors: those of reading the store (corrupt, io).
Status metrics_text(const Services& s, std::string* out);

}  // namespace memos::kernel
