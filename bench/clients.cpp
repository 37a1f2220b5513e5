// clients.cpp — bench-clients: one blocking get and one search through each
// client of memosd — the C++ SDK (the baseline), the C API (libmemos.so),
// the Python package (over the C API) and memos-mcp (the MCP server, over
// its stdio pipe) — p50/p99 per call and each one's ratio to the C++ SDK.
//
// Starts a real memosd, loads N items into one cube through the C++ SDK,
// then runs each client in turn against the same cube with the same
// calls: K gets of ids drawn at random, K searches (k = 10) of queries drawn
// from the items' own words, after a warm-up. Python runs in a python3 of
// its own, timing each call with perf_counter_ns and handing the latencies
// back as JSON; memos-mcp is driven here over its pipes, each call timed
// from the request's first byte written to the reply's line read. One JSON
// line per client and operation on stdout. Usage: see kUsage.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "memos/client.h"
#include "memos/memos.h"
#include "tests/support/memosd_process.h"

extern char** environ;

namespace {

using memos::bench::check;
using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::LatencyStats;
using memos::bench::parse_positive;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::Rng;
using memos::bench::seconds_since;
using memos::bench::summarize;
using memos::bench::UsageError;
using Json = nlohmann::json;

constexpr std::string_view kUsage =
    "usage: bench-clients --memosd PATH [--library PATH] [--python-package DIR] [--mcp PATH]\n"
    "                     [--items N] [--calls K] [--seed S]\n";
constexpr std::size_t kWarmup = 200;
constexpr std::uint32_t kSearchK = 10;
constexpr const char* kCube = "bench";

struct Options {
  std::string memosd;
  std::string library = "build/sdk/libmemos.so.1";
  std::string python_package = "sdk/python";
  std::string mcp = "bridges/mcp/memos-mcp";
  std::size_t items = 2000;
  std::size_t calls = 2000;
  std::uint64_t seed = 42;
};

Options parse_options(int argc, char** argv) {
  Options o;
  read_options(argc, argv, "one get and one search through each client of memosd",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd")
                   o.memosd = value;
                 else if (flag == "--library")
                   o.library = value;
                 else if (flag == "--python-package")
                   o.python_package = value;
                 else if (flag == "--mcp")
                   o.mcp = value;
                 else if (flag == "--items")
                   o.items = parse_positive(flag, value);
                 else if (flag == "--calls")
                   o.calls = parse_positive(flag, value);
                 else if (flag == "--seed")
                   o.seed = parse_unsigned(flag, value);
                 else
                   return false;
                 return true;
               });
  if (o.memosd.empty()) throw UsageError("--memosd is required");
  return o;
}

// What every client is asked: the same ids and queries, in the same order.
struct Workload {
  std::vector<std::uint64_t> ids;    // K + warm-up draws
  std::vector<std::string> queries;  // K + warm-up draws
};

using Latencies = std::map<std::string, std::vector<double>>;  // op: microseconds

// `call(i)` for every i, timed after the warm-up.
std::vector<double> timed(std::size_t n, const std::function<void(std::size_t)>& call) {
  std::vector<double> us;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = Clock::now();
    call(i);
    if (i >= kWarmup) us.push_back(seconds_since(t) * 1e6);
  }
  return us;
}

Latencies run_cpp(const std::string& socket, const Workload& w) {
  auto client = memos::bench::connect_client(socket);
  Latencies out;
  out["get"] =
      timed(w.ids.size(), [&](std::size_t i) { check(client->get(kCube, w.ids[i]), "get"); });
  memos::SearchOptions options;
  options.k = kSearchK;
  out["search"] = timed(w.queries.size(), [&](std::size_t i) {
    check(client->search(kCube, w.queries[i], options), "search");
  });
  return out;
}

void check_c(int rc, memos_error& err, std::string_view what) {
  if (rc == MEMOS_OK) return;
  std::string message = err.message != nullptr ? err.message : "";
  memos_free(err.message);
  throw std::runtime_error(std::string(what) + " (C API): " + message);
}

Latencies run_c(const std::string& socket, const Workload& w) {
  memos_client* client = nullptr;
  memos_error err{};
  check_c(memos_connect(socket.c_str(), nullptr, &client, &err), err, "connect");
  Latencies out;
  out["get"] = timed(w.ids.size(), [&](std::size_t i) {
    memos_item* item = nullptr;
    check_c(memos_get(client, kCube, w.ids[i], 0, &item, &err), err, "get");
    memos_free(item);
  });
  memos_search_options options;
  memos_search_options_init(&options);
  options.k = kSearchK;
  out["search"] = timed(w.queries.size(), [&](std::size_t i) {
    memos_hits* hits = nullptr;
    check_c(memos_search(client, kCube, w.queries[i].c_str(), &options, &hits, &err), err,
            "search");
    memos_free(hits);
  });
  memos_close(client);
  return out;
}

// The Python side: the workload from a file, the latencies back as JSON.
constexpr std::string_view kPythonScript = R"(import json, sys, time
import memos
socket, cube, workload, warmup, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
w = json.load(open(workload))
def timed(calls):
    out = []
    for i, call in enumerate(calls):
        t = time.perf_counter_ns()
        call()
        if i >= warmup:
            out.append((time.perf_counter_ns() - t) / 1000)
    return out
with memos.Client.connect(socket) as c:
    get = timed([lambda i=i: c.get(cube, i) for i in w["ids"]])
    search = timed([lambda q=q: c.search(cube, q, k=k) for q in w["queries"]])
print(json.dumps({"get": get, "search": search}))
)";

std::string write_workload(const std::string& dir, const Workload& w) {
  std::string path = dir + "/workload.json";
  std::ofstream(path) << Json{{"ids", w.ids}, {"queries", w.queries}}.dump();
  return path;
}

Latencies run_python(const std::string& socket, const Workload& w, const Options& o,
                     const std::string& dir) {
  std::string script = dir + "/bench_clients.py";
  std::ofstream(script) << kPythonScript;
  std::string out, err;
  int rc = memos::testing::run_command(
      {"/usr/bin/env", "MEMOS_LIBRARY=" + o.library, "PYTHONPATH=" + o.python_package,
       "/usr/bin/python3", script, socket, kCube, write_workload(dir, w), std::to_string(kWarmup),
       std::to_string(kSearchK)},
      &out, &err);
  if (rc != 0) throw std::runtime_error("python3: " + err);
  Json j = Json::parse(out);
  return {{"get", j["get"].get<std::vector<double>>()},
          {"search", j["search"].get<std::vector<double>>()}};
}

// memos-mcp as a child on two pipes.
class McpChild {
 public:
  McpChild(const Options& o, const std::string& socket) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> args = {"/usr/bin/env",
                                     "MEMOS_LIBRARY=" + o.library,
                                     "PYTHONPATH=" + o.python_package,
                                     o.mcp,
                                     "--socket",
                                     socket};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    if (rc != 0) throw std::runtime_error("cannot start " + o.mcp);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~McpChild() {
    if (to_ != nullptr) fclose(to_);  // EOF on stdin: memos-mcp exits
    if (from_ != nullptr) fclose(from_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  // One request and its reply (notifications are not answered: empty).
  Json request(const std::string& method, Json params, bool notification = false) {
    Json message = {{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
    if (!notification) message["id"] = ++id_;
    std::string line = message.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), to_);
    std::fflush(to_);
    if (notification) return {};
    char* buf = nullptr;
    std::size_t cap = 0;
    ssize_t n = getline(&buf, &cap, from_);
    std::string reply = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    std::free(buf);
    if (reply.empty()) throw std::runtime_error("memos-mcp closed its output");
    Json j = Json::parse(reply);
    if (j.contains("error")) throw std::runtime_error("memos-mcp: " + j["error"].dump());
    if (j["result"].value("isError", false)) throw std::runtime_error("memos-mcp: " + reply);
    return j["result"];
  }

 private:
  pid_t pid_ = 0;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  int id_ = 0;
};

Latencies run_mcp(const std::string& socket, const Workload& w, const Options& o) {
  McpChild mcp(o, socket);
  mcp.request("initialize", {{"protocolVersion", "2025-06-18"},
                             {"capabilities", Json::object()},
                             {"clientInfo", {{"name", "bench-clients"}, {"version", "1"}}}});
  mcp.request("notifications/initialized", Json::object(), true);
  Latencies out;
  out["get"] = timed(w.ids.size(), [&](std::size_t i) {
    mcp.request("tools/call",
                {{"name", "get_memory"},
                 {"arguments", {{"cube", kCube}, {"id", memos::format_id(w.ids[i])}}}});
  });
  out["search"] = timed(w.queries.size(), [&](std::size_t i) {
    Json arguments = {{"query", w.queries[i]}, {"cubes", Json::array({kCube})}, {"k", kSearchK}};
    mcp.request("tools/call", {{"name", "search_memories"}, {"arguments", arguments}});
  });
  return out;
}

void run(const Options& o) {
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {});
  memos::bench::start_daemon(daemon, o.memosd);
  const std::string socket = daemon.socket();
  Workload w;
  {
    auto client = memos::bench::connect_client(socket);
    memos::bench::create_cube(*client, kCube);
    Rng rng(o.seed);
    auto vocabulary = memos::bench::make_vocabulary(rng, 2000);
    memos::bench::ZipfSampler zipf(vocabulary.size());
    std::vector<std::future<memos::Result<memos::Item>>> adds;
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i < o.items; ++i) {
      memos::NewItem item;
      item.text = "note " + std::to_string(i) + ": " +
                  memos::bench::make_sentence(rng, vocabulary, zipf, 8, 24);
      item.wait_searchable = true;
      adds.push_back(client->add_async(kCube, std::move(item)));
    }
    for (auto& f : adds) {
      auto r = f.get();
      check(r, "add");
      ids.push_back(r->id);
    }
    for (std::size_t i = 0; i < o.calls + kWarmup; ++i) {
      w.ids.push_back(ids[memos::bench::uniform_index(rng, 0, ids.size() - 1)]);
      w.queries.push_back(memos::bench::make_sentence(rng, vocabulary, zipf, 2, 4));
    }
  }
  // Each client's lines as soon as it has run: the C++ SDK's first, the
  // baseline of every ratio.
  std::map<std::string, LatencyStats> baseline;
  auto report = [&](const std::string& client, const Latencies& latencies) {
    for (const auto& [op, us] : latencies) {
      LatencyStats s = summarize(us);
      if (client == "cpp") baseline[op] = s;
      JsonLine()
          .str("bench", "clients")
          .str("client", client)
          .str("op", op)
          .count("items", o.items)
          .count("calls", us.size())
          .num("p50_us", s.p50)
          .num("p99_us", s.p99)
          .num("p50_vs_cpp", s.p50 / baseline[op].p50)
          .num("p99_vs_cpp", s.p99 / baseline[op].p99)
          .print();
    }
  };
  run_cpp(socket, w);  // the daemon warmed through (caches, lazy state), not reported
  report("cpp", run_cpp(socket, w));
  report("c", run_c(socket, w));
  report("python", run_python(socket, w, o, dir.path()));
  report("mcp", run_mcp(socket, w, o));
  memos::bench::stop_daemon(daemon);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a memos-mcp that died is reported, not fatal
  return memos::bench::bench_main("bench-clients", kUsage, argc, argv, parse_options, run);
}
