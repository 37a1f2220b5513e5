// sched_replay.cpp — bench-sched-replay: what the memory scheduler buys.
//
// Replays one stream of chats over LoCoMo's conv-26 (the first dev
// conversation; shared/data/locomo/README.md), every turn one memory of one
// cube, three times, each on a fresh memosd and data folder with the same
// activation budget:
//
//   scheduler  working sets on (memos(7), "Scheduling"): each chat's block is
//              the cube's working set, prefilled in the background, then
//              what its own search found; states evicted by utility; its
//              chats do not ask for their own block's state (the working
//              set's is the scheduler's job; --activate-chats yes: they do);
//   off        no activation tier: every block decoded (no_reuse);
//   lru        the on-demand states of `chat --activate`, evicted LRU.
//
// The questions are conv-26's (categories 1–4 with evidence), drawn with
// Zipf-distributed repeats over a seeded permutation, the same sequence in
// every mode. Each chat generates one token, so its wall time as the client
// sees it is the time to the first token. `scheduler` runs first with k
// retrieved memories; `off` and `lru` then run at the k whose mean block
// tokens come closest to the scheduler run's (equal context tokens), found
// by a probe on a daemon of its own. One JSON line per mode, then a summary
// line; notes on stderr. Usage: see kUsage.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_data.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::check;
using memos::bench::Clock;
using memos::bench::connect_client;
using memos::bench::create_cube;
using memos::bench::JsonLine;
using memos::bench::parse_positive;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::seconds_since;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::UsageError;
using memos::bench::locomo::Conversation;
using memos::bench::locomo::Question;

constexpr std::string_view kUsage =
    "usage: bench-sched-replay --memosd PATH [--data DIR] [--chats 300] [--k 5] [--seed 1]\n"
    "         [--zipf-s 1.1] [--budget-mb 8] [--threads 2] [--working-set-tokens 1024]\n"
    "         [--time-unit seconds|minutes|hours|days] [--activate-chats no|yes]\n"
    "         [--prompt-cache-mb N] [--model FILE]\n";

// The workload: the first conversation of the dev split, and no other (the
// held-out ones are for published figures only).
constexpr std::string_view kConversation = "conv-26";
constexpr std::uint32_t kContext = 2048;
constexpr std::uint32_t kBatch = 512;
constexpr std::uint32_t kChunkTokens = 64;  // activation.chunk_tokens' default
constexpr std::uint32_t kMaxK = 100;
constexpr unsigned kSchedulerIntervalS = 2;

struct Options {
  std::string memosd;
  std::string data_dir{memos::bench::locomo::kDefaultDataDir};
  std::string model;
  std::size_t chats = 300;
  std::uint32_t k = 5;
  std::uint64_t seed = 1;
  double zipf_s = 1.1;
  std::uint64_t budget_mb = 8;
  unsigned threads = 2;
  std::uint32_t working_set_tokens = 1024;
  std::string time_unit = "minutes";
  // scheduler: its chats also store their own block's state (--activate).
  bool activate_scheduler_chats = false;
  // executor.prompt_cache_mb in every run; empty: memosd's default.
  std::optional<std::uint64_t> prompt_cache_mb;
};

// ---- options ---------------------------------------------------------------

double parse_exponent(std::string_view flag, std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  double value = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(value) || value <= 0 ||
      value > 10) {
    throw UsageError(std::string(flag) + " needs a number above 0 and at most 10, not '" + s + "'");
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  read_options(
      argc, argv, "replays chats over LoCoMo's conv-26 with and without the scheduler",
      [&](std::string_view flag, std::string_view value) {
        if (flag == "--memosd") {
          o.memosd = value;
        } else if (flag == "--data") {
          o.data_dir = value;
        } else if (flag == "--model") {
          o.model = value;
        } else if (flag == "--chats") {
          o.chats = parse_positive(flag, value);
        } else if (flag == "--k") {
          auto k = parse_positive(flag, value);
          if (k > kMaxK) throw UsageError("--k: at most " + std::to_string(kMaxK));
          o.k = static_cast<std::uint32_t>(k);
        } else if (flag == "--seed") {
          o.seed = parse_unsigned(flag, value);
        } else if (flag == "--zipf-s") {
          o.zipf_s = parse_exponent(flag, value);
        } else if (flag == "--budget-mb") {
          o.budget_mb = parse_positive(flag, value);
        } else if (flag == "--threads") {
          auto t = parse_positive(flag, value);
          if (t > 256) throw UsageError("--threads: at most 256");
          o.threads = static_cast<unsigned>(t);
        } else if (flag == "--prompt-cache-mb") {
          auto n = parse_unsigned(flag, value);
          if (n > (1u << 20)) throw UsageError("--prompt-cache-mb: at most 1048576");
          o.prompt_cache_mb = n;
        } else if (flag == "--working-set-tokens") {
          auto n = parse_positive(flag, value);
          // The set and a chat's own memories share the context.
          if (n >= kContext) {
            throw UsageError("--working-set-tokens: less than the context, " +
                             std::to_string(kContext));
          }
          o.working_set_tokens = static_cast<std::uint32_t>(n);
        } else if (flag == "--activate-chats") {
          if (value != "yes" && value != "no") throw UsageError("--activate-chats: yes or no");
          o.activate_scheduler_chats = value == "yes";
        } else if (flag == "--time-unit") {
          if (value != "seconds" && value != "minutes" && value != "hours" && value != "days") {
            throw UsageError("--time-unit must be seconds, minutes, hours or days");
          }
          o.time_unit = value;
        } else {
          return false;
        }
        return true;
      });
  if (o.memosd.empty()) throw UsageError("--memosd is required (scripts/bench passes it)");
  return o;
}

// ---- the question stream ---------------------------------------------------

// splitmix64: the same sequence with every standard library (std's
// distributions are not specified bit for bit), so a seed names one stream.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

// `chats` question indices: rank r of a seeded permutation of the questions
// is drawn with probability proportional to r^-s, so a few questions come
// back often and most rarely, as a user's do.
std::vector<std::size_t> question_stream(std::size_t questions, const Options& o) {
  Rng rng{o.seed};
  std::vector<std::size_t> order(questions);
  for (std::size_t i = 0; i < questions; ++i) order[i] = i;
  for (std::size_t i = questions; i > 1; --i) std::swap(order[i - 1], order[rng.next() % i]);
  std::vector<double> cumulative(questions);
  double total = 0;
  for (std::size_t r = 0; r < questions; ++r) {
    total += std::pow(static_cast<double>(r + 1), -o.zipf_s);
    cumulative[r] = total;
  }
  std::vector<std::size_t> out;
  for (std::size_t c = 0; c < o.chats; ++c) {
    auto at = std::upper_bound(cumulative.begin(), cumulative.end(), rng.uniform() * total);
    out.push_back(order[std::min<std::size_t>(at - cumulative.begin(), questions - 1)]);
  }
  return out;
}

// ---- one daemon ------------------------------------------------------------

enum class Mode { scheduler, off, lru };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::scheduler:
      return "scheduler";
    case Mode::off:
      return "off";
    case Mode::lru:
      return "lru";
  }
  return "?";
}

// A fresh memosd on a fresh data folder, configured for `mode`, with one
// cube holding every turn of the conversation.
class Replay {
 public:
  Replay(const Options& o, Mode mode, const std::string& model, const Conversation& conv)
      : daemon_(o.memosd, dir_.path(), {"--config", write_config(o, mode, model)}) {
    start_daemon(daemon_, o.memosd, std::chrono::seconds(300));  // loads the model
    client_ = connect_client(daemon_.socket());
    create_cube(*client_, kCube);
    dia_ids_ = memos::bench::locomo::add_turns(*client_, kCube, conv.turns);
  }
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  // The chat as a client sees it: its wall time (the time to the first and
  // only token, and with `activate` the storing of its block's state, which
  // the reply waits for) and the reply.
  double chat(const std::string& question, const memos::ChatOptions& options,
              memos::ChatReply* reply) {
    auto start = Clock::now();
    auto r = client_->chat(kCube, question, options);
    double ms = seconds_since(start) * 1000;
    check(r, "chat");
    *reply = std::move(r.value());
    return ms;
  }

  // The chat's block tokens, or nothing when its block and question do not
  // fit in the model's context (too many memories asked for).
  std::optional<std::uint32_t> block_tokens(const std::string& question,
                                            const memos::ChatOptions& options) {
    auto r = client_->chat(kCube, question, options);
    if (!r.ok() && r.error().code == memos::ErrorCode::too_large) return std::nullopt;
    check(r, "chat");
    return r->block_tokens;
  }

  // The share of the question's evidence turns that the chat's context held.
  double context_recall(const Question& q, const memos::ChatReply& reply) const {
    std::set<std::string> in_context;
    for (std::uint64_t id : reply.memories) {
      auto found = dia_ids_.find(id);
      if (found == dia_ids_.end()) throw std::runtime_error("a chat read an item never added");
      in_context.insert(found->second);
    }
    std::size_t held = 0;
    for (const std::string& id : q.evidence) held += in_context.count(id);
    return static_cast<double>(held) / static_cast<double>(q.evidence.size());
  }

  memos::Client& client() { return *client_; }

  // How many times the scheduler made a working set's state (once, then
  // at each change of the set), from its decision log.
  std::size_t working_set_prefills() {
    auto log = client_->sched_log("", 0);
    check(log, "sched log");
    return static_cast<std::size_t>(
        std::count_if(log->begin(), log->end(), [](const memos::SchedDecision& d) {
          return d.action == "promoted" &&
                 d.reason.find("prefilled the working set") != std::string::npos;
        }));
  }

  // Fails unless memosd stops cleanly.
  void stop() {
    client_.reset();  // before stopping: see stop_daemon
    stop_daemon(daemon_);
  }

 private:
  static constexpr const char* kCube = "conv-26";

  std::string write_config(const Options& o, Mode mode, const std::string& model) {
    std::string path = dir_.path() + "/memosd.conf";
    std::ofstream conf(path);
    conf << "[executor]\nmodel = \"" << model << "\"\nthreads = " << o.threads
         << "\ncontext = " << kContext << "\nbatch = " << kBatch << "\nmax_tokens = 16\n"
         << (o.prompt_cache_mb ? "prompt_cache_mb = " + std::to_string(*o.prompt_cache_mb) + "\n"
                               : "")
         << "\n[activation]\ntenant_max_mb = " << o.budget_mb << "\nchunk_tokens = " << kChunkTokens
         << "\neviction = \"" << (mode == Mode::lru ? "lru" : "utility") << "\"\n"
         << "\n[scheduler]\nenabled = " << (mode == Mode::scheduler ? "true" : "false")
         << "\ninterval_s = " << kSchedulerIntervalS
         << "\nworking_set_tokens = " << o.working_set_tokens << "\ntime_unit = \"" << o.time_unit
         << "\"\n";
    if (!conf.flush()) throw std::runtime_error("cannot write " + path);
    return path;
  }

  memos::testing::TempDir dir_;
  memos::testing::MemosdProcess daemon_;
  std::unique_ptr<memos::Client> client_;
  std::unordered_map<std::uint64_t, std::string> dia_ids_;
};

// ---- a run -----------------------------------------------------------------

struct RunResult {
  Mode mode = Mode::off;
  std::uint32_t k = 0;
  std::vector<double> ttft_ms;
  double recall_sum = 0;
  std::uint64_t prompt_tokens = 0, reused_tokens = 0, block_tokens = 0, memories = 0;
  std::size_t restored = 0, stored = 0;
  double daemon_first_token_ms = 0;       // summed: what memosd itself measured
  double restore_ms = 0, prefill_ms = 0;  // summed: the executor's parts of it
  std::size_t resident = 0;               // restores from the executor's memory
  std::size_t cached = 0;                 // chats that started from a recent prompt
  std::size_t whole = 0;                  // of them, with all of their prompt but its last token
  std::size_t set_prefills = 0;           // scheduler: states made for its working set
  std::uint64_t cached_tokens = 0;
  double seconds = 0;

  double chats() const { return static_cast<double>(std::max<std::size_t>(ttft_ms.size(), 1)); }
  double mean_ttft() const { return memos::bench::summarize(ttft_ms).mean; }
  double recall() const { return recall_sum / chats(); }
  double block_mean() const { return static_cast<double>(block_tokens) / chats(); }
};

memos::ChatOptions chat_options(Mode mode, std::uint32_t k, bool activate_scheduler_chats) {
  memos::ChatOptions options;
  options.k = k;  // the search mode stays the cube's default
  options.max_tokens = 1;
  // Only lru's chats ask for their block's state: with the scheduler the
  // working set's state is made in the background, and a chat that stored
  // its own block's state too would pay for it before its reply (a user of
  // the scheduler need not ask; --activate-chats yes measures that too).
  options.activate = mode == Mode::lru || (mode == Mode::scheduler && activate_scheduler_chats);
  options.no_reuse = mode == Mode::off;
  return options;
}

RunResult run_mode(const Options& o, Mode mode, std::uint32_t k, const std::string& model,
                   const Conversation& conv, const std::vector<std::size_t>& stream) {
  Replay replay(o, mode, model, conv);
  RunResult r;
  r.mode = mode;
  r.k = k;
  const memos::ChatOptions options = chat_options(mode, k, o.activate_scheduler_chats);
  auto start = Clock::now();
  for (std::size_t q : stream) {
    const Question& question = conv.questions[q];
    memos::ChatReply reply;
    r.ttft_ms.push_back(replay.chat(question.text, options, &reply));
    r.recall_sum += replay.context_recall(question, reply);
    r.prompt_tokens += reply.prompt_tokens;
    r.reused_tokens += reply.reused_tokens;
    r.block_tokens += reply.block_tokens;
    r.memories += reply.memories.size();
    r.restored += reply.activation_status.restored ? 1 : 0;
    r.stored += reply.activation_status.stored ? 1 : 0;
    r.daemon_first_token_ms += reply.first_token_ms;
    r.restore_ms += reply.restore_ms;
    r.prefill_ms += reply.prefill_ms;
    r.resident += reply.resident ? 1 : 0;
    r.cached += reply.cached_tokens > 0 ? 1 : 0;
    r.whole += reply.cached_tokens > 0 && reply.cached_tokens + 1 == reply.prompt_tokens ? 1 : 0;
    r.cached_tokens += reply.cached_tokens;
  }
  r.seconds = seconds_since(start);
  if (mode == Mode::scheduler) r.set_prefills = replay.working_set_prefills();
  replay.stop();
  std::cerr << "sched-replay: " << mode_name(mode) << ": " << stream.size() << " chats in "
            << r.seconds << " s, k " << k << ", " << r.restored << " restored a state, " << r.stored
            << " stored one; memosd's own first-token time " << r.daemon_first_token_ms / r.chats()
            << " ms on average (restore " << r.restore_ms / r.chats() << ", prefill "
            << r.prefill_ms / r.chats() << "; " << r.resident
            << " states already in the executor's memory; " << r.cached
            << " started from a recent prompt (" << r.whole << " with the whole prompt), "
            << (r.cached ? static_cast<double>(r.cached_tokens) / static_cast<double>(r.cached) : 0)
            << " tokens each"
            << (mode == Mode::scheduler
                    ? "; the working set's state made " + std::to_string(r.set_prefills) + " times"
                    : "")
            << "), " << static_cast<double>(r.memories) / r.chats() << " memories a block\n";
  return r;
}

void print(const RunResult& r, const Options& o) {
  JsonLine()
      .str("bench", "sched-replay")
      .str("mode", mode_name(r.mode))
      .count("chats", r.ttft_ms.size())
      .count("k", r.k)
      .num("ttft_mean_ms", r.mean_ttft(), 1)
      .num("ttft_p50_ms", memos::bench::percentile(r.ttft_ms, 0.50), 1)
      .num("ttft_p95_ms", memos::bench::percentile(r.ttft_ms, 0.95), 1)
      .num("restored_token_share",
           r.prompt_tokens ? static_cast<double>(r.reused_tokens) / r.prompt_tokens : 0, 4)
      .num("context_recall", r.recall(), 4)
      .num("context_tokens_mean", r.block_mean(), 1)
      .count("budget_mb", o.budget_mb)
      .print();
}

// ---- equal context tokens --------------------------------------------------

// The k at which blocks of plain retrieval (off and lru lay out the same
// blocks) have, over the stream, the mean block tokens closest to `target`.
// A block's tokens depend only on its question and k, so each distinct
// question of the stream is chatted once per k tried, weighted by how often
// the stream asks it: the mean is the stream's exactly. The mean grows with
// k (a block holds the one of k - 1 and one more memory), so a bisection
// finds the least k that reaches the target, and that k or the one below
// is the closest. A k at which some question's block overflows the context
// counts as infinitely many tokens: the runs could not use it.
std::uint32_t equal_context_k(const Options& o, const std::string& model, const Conversation& conv,
                              const std::vector<std::size_t>& stream, double target) {
  auto start = Clock::now();
  std::map<std::size_t, std::size_t> asked;  // question -> times in the stream
  for (std::size_t q : stream) ++asked[q];
  Replay probe(o, Mode::off, model, conv);
  std::map<std::uint32_t, double> means;
  auto mean_at = [&](std::uint32_t k) {
    if (auto known = means.find(k); known != means.end()) return known->second;
    const memos::ChatOptions options = chat_options(Mode::off, k, false);
    double sum = 0;
    for (const auto& [q, times] : asked) {
      auto tokens = probe.block_tokens(conv.questions[q].text, options);
      if (!tokens) return means[k] = HUGE_VAL;
      sum += static_cast<double>(*tokens) * static_cast<double>(times);
    }
    return means[k] = sum / static_cast<double>(stream.size());
  };
  std::uint32_t lo = 1, hi = kMaxK;
  while (lo < hi) {
    std::uint32_t mid = lo + (hi - lo) / 2;
    if (mean_at(mid) >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  std::uint32_t k = lo;
  if (k > 1 && std::abs(mean_at(k - 1) - target) <= std::abs(mean_at(k) - target)) --k;
  probe.stop();
  if (std::isinf(mean_at(k))) {
    throw std::runtime_error("no k fits the blocks of every question in the context");
  }
  std::cerr << "sched-replay: equal context tokens: k " << k << " gives " << mean_at(k)
            << " block tokens on average, the scheduler run " << target << " (" << means.size()
            << " k tried over " << asked.size() << " distinct questions, " << seconds_since(start)
            << " s)\n";
  return k;
}

// ---- the run ---------------------------------------------------------------

std::string ensure_model(const Options& o) {
  if (!o.model.empty()) return o.model;
  return memos::bench::cached_mkmodel(
      "sched-replay", MEMOS_MKMODEL, "memos-mkmodel-small-f32-seed1-qwen2.gguf",
      {"--vocab", MEMOS_BENCH_VOCAB, "--preset", "small", "--seed", "1"});
}

void run(const Options& o) {
  auto loaded = memos::bench::locomo::load_conversations(o.data_dir, 0, 1);
  if (loaded.empty() || loaded[0].sample_id != kConversation) {
    throw std::runtime_error("the first conversation of " + o.data_dir + "/locomo10.json is not " +
                             std::string(kConversation));
  }
  const Conversation& conv = loaded[0];
  if (conv.questions.empty()) throw std::runtime_error("conv-26 has no questions");
  std::string model = ensure_model(o);
  std::vector<std::size_t> stream = question_stream(conv.questions.size(), o);
  std::cerr << "sched-replay: " << conv.sample_id << ": " << conv.turns.size() << " turns, "
            << conv.questions.size() << " questions, "
            << std::set<std::size_t>(stream.begin(), stream.end()).size()
            << " distinct in a stream of " << stream.size() << "\n";

  RunResult scheduler = run_mode(o, Mode::scheduler, o.k, model, conv, stream);
  print(scheduler, o);
  std::uint32_t k = equal_context_k(o, model, conv, stream, scheduler.block_mean());
  RunResult off = run_mode(o, Mode::off, k, model, conv, stream);
  print(off, o);
  RunResult lru = run_mode(o, Mode::lru, k, model, conv, stream);
  print(lru, o);
  JsonLine()
      .str("bench", "sched-replay")
      .num("ttft_ratio_scheduler_vs_lru", scheduler.mean_ttft() / lru.mean_ttft(), 3)
      .num("context_recall_scheduler_minus_lru", scheduler.recall() - lru.recall(), 4)
      .str("aim", "ttft ratio <= 0.3 and context recall not lower")
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-sched-replay", kUsage, argc, argv, parse, run);
}
