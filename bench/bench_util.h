// bench_util.h — what the benchmarks share: option values, timing, latency
// percentiles, JSON result lines, and running a memosd and checking the SDK's
// results. Errors are exceptions (UsageError for a bad command line), so a
// benchmark's main can report them after the daemon and its temporary folder
// have been cleaned up by their destructors.
#pragma once

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace memos::bench {

using Clock = std::chrono::steady_clock;

// Milliseconds since `start`.
inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A bad command line: main prints it with the usage and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- options ---------------------------------------------------------------

inline std::uint64_t parse_positive(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) {
    throw UsageError(std::string(flag) + " needs a positive integer, not '" + std::string(text) +
                     "'");
  }
  return value;
}

// For values where 0 is fine, such as a seed.
inline std::uint64_t parse_unsigned(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(std::string(flag) + " needs an unsigned integer");
  }
  return value;
}

// "1,8,64": positive integers, in the order given.
inline std::vector<std::size_t> parse_positive_list(std::string_view flag, std::string_view text) {
  std::vector<std::size_t> values;
  while (true) {
    std::size_t comma = text.find(',');
    values.push_back(parse_positive(flag, text.substr(0, comma)));
    if (comma == std::string_view::npos) return values;
    text.remove_prefix(comma + 1);
  }
}

// A positive number of seconds; fractions allowed.
inline double parse_seconds(std::string_view flag, std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !(value > 0)) {
    throw UsageError(std::string(flag) + " needs a positive number of seconds, not '" +
                     std::string(text) + "'");
  }
  return value;
}

// ---- results ---------------------------------------------------------------

// One JSON object on one line of stdout. Keys and string values are our own
// constants, so they need no escaping.
// Reads "--flag value" pairs, handing each to `handle(flag, value)`, which
// returns false for a flag it does not know. --help (or -h) is a
// UsageError carrying `about`, as is a flag without a value or an unknown one.
template <class Handle>
void read_options(int argc, char** argv, std::string_view about, Handle&& handle) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") throw UsageError(std::string(about));
    if (i + 1 >= argc) throw UsageError(std::string(flag) + " needs a value");
    std::string_view value = argv[++i];
    if (!handle(flag, value)) throw UsageError("unknown option " + std::string(flag));
  }
}

class JsonLine {
 public:
  JsonLine& str(std::string_view key, std::string_view value) {
    return raw(key, "\"" + std::string(value) + "\"");
  }
  JsonLine& count(std::string_view key, std::uint64_t value) {
    return raw(key, std::to_string(value));
  }
  JsonLine& num(std::string_view key, double value, int decimals = 3) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::isfinite(value) ? value : 0.0);
    return raw(key, buf);
  }
  JsonLine& boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  // A figure that does not apply here.
  JsonLine& null(std::string_view key) { return raw(key, "null"); }
  void print() const { std::cout << '{' << text_ << '}' << std::endl; }

 private:
  JsonLine& raw(std::string_view key, std::string_view value) {
    if (!text_.empty()) text_ += ',';
    text_ += '"';
    text_ += key;
    text_ += "\":";
    text_ += value;
    return *this;
  }
  std::string text_;
};

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// In the unit of the samples summarized.
struct LatencyStats {
  double p50 = 0, p99 = 0, mean = 0;
};

// Nearest-rank percentiles: always a latency that was actually observed.
// All zero when there are no samples.
inline LatencyStats summarize(std::vector<double> latencies) {
  if (latencies.empty()) return {};
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(latencies.size())));
    return latencies[std::max<std::size_t>(rank, 1) - 1];
  };
  double sum = 0;
  for (double l : latencies) sum += l;
  return {percentile(0.50), percentile(0.99), sum / static_cast<double>(latencies.size())};
}

// The nearest-rank percentile p (0 < p <= 1) of the samples: always one
// that was observed (0 when there are none). For a percentile summarize()
// does not give.
inline double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
  return samples[std::min(std::max<std::size_t>(rank, 1), samples.size()) - 1];
}

// ---- models ----------------------------------------------------------------

// A model file that memos-mkmodel (`mkmodel`) makes with `args` (random
// weights, a real tokenizer), made once and kept in
// $MEMOS_DEPS_DIR/models or ~/.cache/memosd/models as `file_name`: making
// a large one takes a while, and every run of a benchmark should time the
// same model. The name must spell out the arguments, since it is the only
// key of the cache.
inline std::string cached_mkmodel(std::string_view bench, const std::string& mkmodel,
                                  const std::string& file_name, std::vector<std::string> args) {
  namespace fs = std::filesystem;
  const char* deps = std::getenv("MEMOS_DEPS_DIR");
  const char* home = std::getenv("HOME");
  fs::path dir =
      fs::path(deps ? std::string(deps) : std::string(home ? home : ".") + "/.cache/memosd") /
      "models";
  fs::create_directories(dir);
  fs::path path = dir / file_name;
  if (fs::exists(path)) return path;
  std::cerr << bench << ": making " << path << " (once)\n";
  args.insert(args.begin(), {mkmodel, "--out", path.string()});
  std::string out, err;
  if (memos::testing::run_command(args, &out, &err) != 0) {
    throw std::runtime_error("memos-mkmodel failed: " + err);
  }
  return path;
}

// ---- through memosd --------------------------------------------------------

template <class T>
void check(const memos::Result<T>& r, std::string_view what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + " failed: " + memos::to_string(r.error().code) +
                             ": " + r.error().message);
  }
}

// `timeout` covers a start that rebuilds large indexes from the store.
inline void start_daemon(memos::testing::MemosdProcess& daemon, const std::string& binary,
                         std::chrono::seconds timeout = std::chrono::seconds(20)) {
  if (!daemon.start(timeout)) {
    throw std::runtime_error("memosd (" + binary + ") did not start:\n" + daemon.log());
  }
}

// Stops memosd with SIGTERM and fails unless it exits with status 0. Close
// the clients' connections first: the exit status should reflect an ordinary
// shutdown, not one racing a client's open requests.
inline void stop_daemon(memos::testing::MemosdProcess& daemon) {
  int status = daemon.stop(SIGTERM);
  if (status != 0) {
    throw std::runtime_error("memosd exited with status " + std::to_string(status) + ":\n" +
                             daemon.log());
  }
}

// Sample `sample` (a metric's name and labels) in `c`'s metrics; 0 when
// absent. Throws when the metrics cannot be read.
inline double metric(memos::Client& c, const std::string& sample) {
  auto text = c.metrics();
  check(text, "metrics");
  const auto at = text->find("\n" + sample + " ");
  return at == std::string::npos ? 0 : std::stod(text->substr(at + sample.size() + 2));
}

inline std::unique_ptr<memos::Client> connect_client(const std::string& socket) {
  auto connected = memos::Client::connect(socket);
  if (!connected.ok()) throw std::runtime_error("connect failed: " + connected.error().message);
  return std::move(connected.value());
}

inline memos::Cube create_cube(memos::Client& client, const std::string& name) {
  auto cube = client.cube_create(name);
  if (!cube.ok()) {
    throw std::runtime_error("cube_create " + name + " failed: " + cube.error().message);
  }
  return cube.value();
}

// Adds `count` memories keeping up to `pipeline` requests in flight: a
// sliding window, refilled as the oldest reply arrives, so the daemon's
// group commit has a batch to work on. Returns the seconds taken.
inline double add_pipelined(memos::Client& client, const std::string& cube,
                            const std::vector<memos::NewItem>& memories, std::size_t count,
                            std::size_t pipeline) {
  std::deque<std::future<memos::Result<memos::Item>>> window;
  auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    if (window.size() >= pipeline) {
      check(window.front().get(), "add");
      window.pop_front();
    }
    window.push_back(client.add_async(cube, memories[i]));
  }
  for (auto& f : window) check(f.get(), "add");
  return seconds_since(start);
}

// Waits until every write answered so far is searchable (a fresh search);
// returns the seconds it took.
inline double wait_until_indexed(memos::Client& client, const std::string& cube) {
  memos::SearchOptions fresh;
  fresh.fresh = true;
  fresh.k = 1;
  fresh.mode = memos::SearchMode::lexical;
  auto start = Clock::now();
  check(client.search(cube, "anything", fresh), "fresh search");
  return seconds_since(start);
}

// The main() of a benchmark: parse, run, and turn errors into exit statuses
// (2 with the usage for bad options, 1 for a failed run). Errors are
// exceptions rather than exit(), so that daemons and temporary folders are
// cleaned up by their destructors.
template <class Parse, class Run>
int bench_main(std::string_view name, std::string_view usage, int argc, char** argv, Parse&& parse,
               Run&& run) {
  try {
    run(parse(argc, argv));
    return 0;
  } catch (const UsageError& e) {
    std::cerr << name << ": " << e.what() << '\n' << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace memos::bench
