// plugin-call: what calling a plugin costs, in process and isolated in
// memos-plugin-host, for a trivial call: embedding one short text with the
// hash-embedder plugin. Both go through the same PluginEmbedder and request
// bytes, so the difference is the process boundary.
//
//   bench-plugin-call --memosd build/kernel/memosd [--calls N] [--texts T]
//
// memos-plugin-host is looked up beside memosd, the plugin in ../plugins.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "kernel/plugin_embedder.h"
#include "plugins/loader/isolated.h"
#include "plugins/loader/library.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::parse_positive;
using memos::bench::summarize;
using memos::bench::UsageError;

struct Options {
  std::string memosd;
  std::uint64_t calls = 20000;
  std::uint64_t texts = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--memosd") {
      o.memosd = value();
    } else if (arg == "--calls") {
      o.calls = parse_positive(arg, value());
    } else if (arg == "--texts") {
      o.texts = parse_positive(arg, value());
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
  if (o.memosd.empty()) throw UsageError("--memosd is required");
  return o;
}

// Times `calls` embed calls of `texts` short texts each (after a warm-up).
std::vector<double> time_calls(const memos::kernel::PluginEmbedder& embedder, const Options& o) {
  std::vector<std::string> storage;
  for (std::uint64_t i = 0; i < o.texts; ++i)
    storage.push_back("a short memory number " + std::to_string(i));
  std::vector<std::string_view> texts(storage.begin(), storage.end());
  std::vector<float> out;
  for (int i = 0; i < 500; ++i) {  // warm-up; a failure shows in the timed calls
    (void)embedder.embed(texts, 256, &out);
  }
  std::vector<double> us;
  us.reserve(o.calls);
  for (std::uint64_t i = 0; i < o.calls; ++i) {
    auto start = Clock::now();
    memos::kernel::Status st = embedder.embed(texts, 256, &out);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (!st.ok()) throw std::runtime_error(st.message);
  }
  return us;
}

void report(const char* mode, const Options& o, const memos::bench::LatencyStats& s) {
  JsonLine()
      .str("bench", "plugin-call")
      .str("mode", mode)
      .count("calls", o.calls)
      .count("texts_per_call", o.texts)
      .num("p50_us", s.p50)
      .num("p99_us", s.p99)
      .num("mean_us", s.mean)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    namespace fs = std::filesystem;
    fs::path bin = fs::absolute(o.memosd).parent_path();
    std::string manifest_path =
        (bin.parent_path() / "plugins" / "hash-embedder" / "hash-embedder.plugin.toml").string();
    memos::plugins::Manifest manifest;
    if (std::string err = memos::plugins::read_manifest(manifest_path, &manifest); !err.empty()) {
      throw std::runtime_error(err);
    }
    // In process.
    memos::plugins::LoadedLibrary library;
    if (std::string err = memos::plugins::load_library(manifest, &library); !err.empty()) {
      throw std::runtime_error(err);
    }
    std::string err;
    auto instance = memos::plugins::PluginInstance::create(library, &err);
    if (!instance) throw std::runtime_error(err);
    memos::kernel::PluginEmbedder in_process(
        manifest.name, std::make_shared<memos::plugins::InProcessChannel>(std::move(instance)),
        std::chrono::seconds(10), 4096);
    auto local = summarize(time_calls(in_process, o));
    report("in-process", o, local);

    // Isolated.
    memos::plugins::IsolationPolicy policy;
    policy.host_binary = (bin / "memos-plugin-host").string();
    auto channel = std::make_shared<memos::plugins::IsolatedChannel>(manifest, policy);
    if (err = channel->start(); !err.empty()) throw std::runtime_error(err);
    memos::kernel::PluginEmbedder isolated(manifest.name, channel, std::chrono::seconds(10), 4096);
    auto remote = summarize(time_calls(isolated, o));
    report("isolated", o, remote);

    JsonLine()
        .str("bench", "plugin-call")
        .str("phase", "summary")
        .num("in_process_p50_us", local.p50)
        .num("isolated_p50_us", remote.p50)
        .num("isolation_overhead_p50_us", remote.p50 - local.p50)
        .num("in_process_p99_us", local.p99)
        .num("isolated_p99_us", remote.p99)
        .print();
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "bench-plugin-call: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench-plugin-call: " << e.what() << "\n";
    return 1;
  }
}
