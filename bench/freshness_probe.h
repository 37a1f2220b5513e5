// freshness_probe.h — how long a write answered by memosd takes to become
// searchable, measured from the client: while one connection keeps
// pipelined adds flowing (the load, `load` cycled), a second adds, one every
// few milliseconds, a memory holding a token no other text has, and from the
// moment each add is answered searches for the token (lexical, without
// `fresh`) until it is found. Probing lasts `seconds` (or `probes` probes),
// then the load stops: the phase is bounded however far behind indexing
// is. A load the indexer cannot follow shows the lag at the backlog bound
// (search.index_max_backlog), which is what a client then sees. The daemon's
// own account (Status's freshness figures, commit to searchable per commit
// group) is read at the end.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "memos/client.h"

namespace memos::bench {

struct FreshnessResult {
  LatencyStats visible_ms;  // answered to found, per probe
  std::size_t probes = 0;
  double load_adds_per_s = 0;  // what the load reached meanwhile
  double daemon_p50_ms = 0, daemon_p99_ms = 0;
};

// Probes for `seconds` (at most `probes` probes) under pipelined adds of
// `load`, `pipeline` in flight, into cubes of their own. Throws on any
// failed request.
inline FreshnessResult measure_freshness(const std::string& socket,
                                         const std::vector<memos::NewItem>& load,
                                         std::size_t pipeline, std::size_t probes, double seconds) {
  auto loader = connect_client(socket);
  auto prober = connect_client(socket);
  create_cube(*loader, "fresh-load");
  create_cube(*prober, "fresh-probe");
  std::atomic<bool> stop{false};
  std::size_t added = 0;
  auto load_start = Clock::now();
  double load_seconds = 0;
  auto load_done = std::async(std::launch::async, [&] {
    std::deque<std::future<memos::Result<memos::Item>>> window;
    for (std::size_t i = 0; !stop.load(); ++i) {
      if (window.size() >= pipeline) {
        check(window.front().get(), "load add");
        window.pop_front();
        ++added;
      }
      window.push_back(loader->add_async("fresh-load", load[i % load.size()]));
    }
    for (auto& f : window) check(f.get(), "load add");
    added += window.size();
    load_seconds = seconds_since(load_start);
  });
  // Let the load reach its pace before the first probe.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  lexical.k = 1;
  std::vector<double> visible_ms;
  const auto probing = Clock::now();
  for (std::size_t p = 0; p < probes && (p == 0 || seconds_since(probing) < seconds); ++p) {
    const std::string token = "zq" + std::to_string(p) + "probe";
    check(prober->add("fresh-probe", {"a probe note " + token}), "probe add");
    auto answered = Clock::now();
    for (;;) {
      auto hits = prober->search("fresh-probe", token, lexical);
      if (!hits.ok()) throw std::runtime_error("probe search failed: " + hits.error().message);
      if (!hits->empty()) break;
      if (seconds_since(answered) > 30) throw std::runtime_error("a probe never became searchable");
    }
    visible_ms.push_back(seconds_since(answered) * 1e3);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  load_done.get();
  FreshnessResult out;
  out.load_adds_per_s = static_cast<double>(added) / load_seconds;
  out.probes = visible_ms.size();
  out.visible_ms = summarize(std::move(visible_ms));
  auto status = prober->status();
  if (!status.ok()) throw std::runtime_error("status failed: " + status.error().message);
  out.daemon_p50_ms = status->freshness_p50_ms;
  out.daemon_p99_ms = status->freshness_p99_ms;
  return out;
}

}  // namespace memos::bench
