// bench-etcd-tls: what TLS costs the etcd client, which connects once per
// call (cluster/etcd_client.h): the latency of a key read against one etcd
// member that requires TLS and a client certificate, through
//   resumed — one TlsContext for every call, as a node has: after the
//             first, each handshake resumes the session the server gave
//             the last connection (cluster/tls_stream.h);
//   full    — a new TlsContext for each call, which has no session to
//             offer: a full handshake, certificates sent and checked, each
//             call (what every call cost before sessions were kept; the
//             baseline);
//   plain   — the same read over HTTP from a member without TLS.
// Each figure is the p50, p99 and mean of --calls reads, after a warm-up.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "cluster/etcd_client.h"
#include "cluster/tls_stream.h"
#include "tests/support/engine_servers.h"
#include "tests/support/test_certificates.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::ms_since;
using memos::cluster::EtcdClient;
using memos::cluster::EtcdKeyValue;
using memos::cluster::TlsContext;
using memos::cluster::TlsFiles;
using namespace std::chrono_literals;

constexpr std::string_view kUsage = "usage: bench-etcd-tls [--calls N]\n";

struct Options {
  std::size_t calls = 500;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  memos::bench::read_options(argc, argv, "times etcd calls over TLS, resumed and not",
                             [&](std::string_view flag, std::string_view value) {
                               // scripts/bench passes --memosd; no memosd runs here.
                               if (flag == "--memosd") return true;
                               if (flag != "--calls") return false;
                               opts.calls = memos::bench::parse_positive(flag, value);
                               return true;
                             });
  return opts;
}

std::shared_ptr<const TlsContext> open_context(const TlsFiles& files) {
  std::shared_ptr<const TlsContext> out;
  if (auto s = TlsContext::open(files, &out); !s.ok()) throw std::runtime_error(s.message);
  return out;
}

// --calls reads of one key through the client `make` gives for each call.
template <class MakeClient>
void time_reads(const Options& opts, const char* mode, MakeClient make) {
  std::vector<double> ms;
  for (std::size_t i = 0; i < opts.calls + 20; ++i) {
    const std::unique_ptr<EtcdClient> client = make();
    std::optional<EtcdKeyValue> kv;
    const auto began = Clock::now();
    if (auto s = client->get("/bench/key", &kv); !s.ok() || !kv) {
      throw std::runtime_error(std::string(mode) + ": " + s.message);
    }
    if (i >= 20) ms.push_back(ms_since(began));  // the first 20 warm up
  }
  const auto stats = memos::bench::summarize(ms);
  JsonLine()
      .str("bench", "etcd-tls")
      .str("mode", mode)
      .count("calls", opts.calls)
      .num("p50_ms", stats.p50)
      .num("p99_ms", stats.p99)
      .num("mean_ms", stats.mean)
      .print();
}

void run(const Options& opts) {
  memos::testing::TestCertificates certs;
  const memos::testing::ServerTls server = certs.server("server");
  memos::testing::EtcdServers secure(1, {server.cert, server.key, server.ca});
  if (!secure.start()) throw std::runtime_error("etcd with TLS did not start: " + secure.log(0));
  memos::testing::EtcdServers plain(1);
  if (!plain.start()) throw std::runtime_error("etcd did not start: " + plain.log(0));
  const TlsFiles node{certs.ca(), certs.cert(), certs.key()};
  const auto kept = open_context(node);
  auto client = [](const std::string& url, std::shared_ptr<const TlsContext> tls) {
    return std::make_unique<EtcdClient>(std::vector<std::string>{url}, 5s, std::move(tls));
  };
  for (const auto& c : {client(secure.url(0), kept), client(plain.url(0), nullptr)}) {
    if (auto s = c->put("/bench/key", std::string(100, 'v')); !s.ok())
      throw std::runtime_error(s.message);
  }
  time_reads(opts, "resumed", [&] { return client(secure.url(0), kept); });
  time_reads(opts, "full", [&] { return client(secure.url(0), open_context(node)); });
  time_reads(opts, "plain", [&] { return client(plain.url(0), nullptr); });
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-etcd-tls", kUsage, argc, argv, parse_options, run);
}
