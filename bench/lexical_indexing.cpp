// lexical-indexing: whether lexical indexing keeps up with memosd's indexer
// while searches run (issue 14). In process, no daemon: the xapian-retriever
// plugin class is driven with the same Cap'n Proto requests memosd sends.
// See README.md for the phases and the output.
#include <xapian.h>

#include <capnp/message.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "plugins/xapian-retriever/document_data.h"
#include "plugins/xapian-retriever/retriever_plugin.h"

namespace {

namespace fs = std::filesystem;
namespace wire = memos::plugin_wire;
using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::Rng;

constexpr std::string_view kName = "lexical-indexing";
constexpr std::string_view kUsage =
    "usage: bench-lexical-indexing [--docs N] [--batch B] [--cost-docs M] [--seed S]\n"
    "  indexes N synthetic documents (100000) in batches of B (256) into one collection\n"
    "  while another thread searches it, through the xapian-retriever plugin and through\n"
    "  a single Glass database (the baseline); first measures per-document costs over M\n"
    "  documents (9000).\n";

struct Options {
  std::uint64_t docs = 100000;
  std::uint64_t batch = 256;
  std::uint64_t cost_docs = 9000;  // below Xapian's 10000-change auto-commit
  std::uint64_t seed = 42;
};

Options parse(int argc, char** argv) {
  Options o;
  memos::bench::read_options(argc, argv, kUsage, [&](std::string_view flag, std::string_view v) {
    if (flag == "--memosd") return true;  // scripts/bench passes it; not needed here
    if (flag == "--docs") return (o.docs = memos::bench::parse_positive(flag, v)), true;
    if (flag == "--batch") return (o.batch = memos::bench::parse_positive(flag, v)), true;
    if (flag == "--cost-docs") return (o.cost_docs = memos::bench::parse_positive(flag, v)), true;
    if (flag == "--seed") return (o.seed = memos::bench::parse_unsigned(flag, v)), true;
    return false;
  });
  return o;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "bench-lexical-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct Corpus {
  std::vector<std::string> texts;
  std::vector<std::string> queries;
};

Corpus make_corpus(std::uint64_t docs, std::uint64_t seed) {
  Rng rng(seed);
  auto vocabulary = memos::bench::make_vocabulary(rng, 20000);
  memos::bench::ZipfSampler zipf(vocabulary.size());
  Corpus c;
  c.texts.reserve(docs);
  for (std::uint64_t i = 0; i < docs; ++i) {
    c.texts.push_back(memos::bench::make_sentence(rng, vocabulary, zipf, 8, 30));
  }
  for (int i = 0; i < 1000; ++i) {
    c.queries.push_back(memos::bench::make_sentence(rng, vocabulary, zipf, 3, 8));
  }
  return c;
}

void configure(Xapian::TermGenerator& generator, const Xapian::Stem& stem) {
  generator.set_stemmer(stem);
  generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
  generator.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
}

// A document as the plugin makes it: terms, key, attributes in the data.
Xapian::Document make_document(Xapian::TermGenerator& generator, std::uint64_t id,
                               const std::string& text) {
  Xapian::Document doc;
  generator.set_document(doc);
  generator.index_text_without_positions(text);
  doc.add_boolean_term("Q" + std::to_string(id));
  memos::retrieval::Attributes a;
  a.state = "active";
  a.tier = "plaintext";
  doc.set_data(memos::lexical::encode_document_data(id, a));
  return doc;
}

Xapian::Query parse_query(const std::string& text, const Xapian::Stem& stem) {
  Xapian::QueryParser parser;
  parser.set_stemmer(stem);
  parser.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
  parser.set_default_op(Xapian::Query::OP_OR);
  return parser.parse_query(text, Xapian::QueryParser::FLAG_CJK_NGRAM);
}

double search_p50_us(Xapian::Database& db, const Corpus& corpus, const Xapian::Stem& stem) {
  std::vector<double> us;
  for (int i = 0; i < 200; ++i) {
    auto start = Clock::now();
    Xapian::Enquire enquire(db);
    enquire.set_query(parse_query(corpus.queries[static_cast<std::size_t>(i)], stem));
    enquire.get_mset(0, 10);
    us.push_back(memos::bench::seconds_since(start) * 1e6);
  }
  return memos::bench::summarize(us).p50;
}

// Where a document's time goes, one thread, no searches: terms alone, then
// terms plus an add to a Glass database (buffered) and to an in-memory one,
// the commit of what Glass buffered, and a search over a committed base with
// and without that buffer.
void measure_costs(const Options& o, const Corpus& corpus) {
  TempDir dir;
  Xapian::Stem stem("english");
  Xapian::TermGenerator generator;
  configure(generator, stem);
  const std::uint64_t m = std::min<std::uint64_t>(o.cost_docs, corpus.texts.size() / 2);

  for (std::uint64_t i = 0; i < m; ++i) make_document(generator, i, corpus.texts[i]);  // warm-up
  auto start = Clock::now();
  for (std::uint64_t i = 0; i < m; ++i) make_document(generator, i, corpus.texts[i]);
  double termgen_us = memos::bench::seconds_since(start) * 1e6 / static_cast<double>(m);

  Xapian::WritableDatabase memory(std::string(), Xapian::DB_BACKEND_INMEMORY);
  start = Clock::now();
  for (std::uint64_t i = 0; i < m; ++i)
    memory.add_document(make_document(generator, i, corpus.texts[i]));
  double inmemory_us = memos::bench::seconds_since(start) * 1e6 / static_cast<double>(m);

  // A committed base of m documents, then m more buffered on top.
  Xapian::WritableDatabase glass(dir.path("costs.glass"),
                                 Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
  for (std::uint64_t i = 0; i < m; ++i)
    glass.add_document(make_document(generator, i, corpus.texts[i]));
  glass.commit();
  start = Clock::now();
  for (std::uint64_t i = m; i < 2 * m; ++i) {
    glass.add_document(make_document(generator, i, corpus.texts[i]));
  }
  double glass_us = memos::bench::seconds_since(start) * 1e6 / static_cast<double>(m);
  double buffered_p50 = search_p50_us(glass, corpus, stem);
  start = Clock::now();
  glass.commit();
  double commit_ms = memos::bench::seconds_since(start) * 1e3;
  double committed_p50 = search_p50_us(glass, corpus, stem);
  // The same 2m documents, m on disk and m in memory, searched as one.
  Xapian::WritableDatabase recent(std::string(), Xapian::DB_BACKEND_INMEMORY);
  for (std::uint64_t i = m; i < 2 * m; ++i)
    recent.add_document(make_document(generator, i, corpus.texts[i]));
  Xapian::Database base(dir.path("costs.glass"));
  Xapian::Database layered = base;
  layered.add_database(recent);
  double layered_p50 = search_p50_us(layered, corpus, stem);

  JsonLine()
      .str("bench", kName)
      .str("phase", "costs")
      .count("docs", m)
      .num("termgen_us", termgen_us)
      .num("inmemory_add_us", inmemory_us)
      .num("glass_add_us", glass_us)
      .num("glass_commit_ms", commit_ms)
      .num("search_glass_buffered_p50_us", buffered_p50)
      .num("search_glass_committed_p50_us", committed_p50)
      .num("search_glass_plus_inmemory_p50_us", layered_p50)
      .print();
}

// What one ingest run measured.
struct Ingest {
  double index_s = 0;  // all index calls
  double save_s = 0;   // the final save (commit)
  std::size_t searches = 0;
  memos::bench::LatencyStats search_us;
  double max_search_us = 0;
  double max_index_ms = 0;  // the longest single batch
};

// Runs `index_batch(first, count)` over the corpus while one thread calls
// `search(query)` every 5 ms, then `save()`.
template <class IndexBatch, class Search, class Save>
Ingest run_ingest(const Options& o, const Corpus& corpus, IndexBatch&& index_batch, Search&& search,
                  Save&& save) {
  Ingest r;
  std::atomic<bool> done{false};
  std::vector<double> latencies;
  // Paced like a steady stream of users (one search every 5 ms when they
  // are fast), so both systems serve the same load; a slow search delays
  // the next one.
  std::thread searcher([&] {
    std::size_t q = 0;
    auto next = Clock::now();
    while (!done.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_until(next);
      next += std::chrono::milliseconds(5);
      auto start = Clock::now();
      search(corpus.queries[q++ % corpus.queries.size()]);
      latencies.push_back(memos::bench::seconds_since(start) * 1e6);
      next = std::max(next, Clock::now());
    }
  });
  auto start = Clock::now();
  for (std::uint64_t first = 0; first < corpus.texts.size(); first += o.batch) {
    auto batch_start = Clock::now();
    index_batch(first, std::min<std::uint64_t>(o.batch, corpus.texts.size() - first));
    r.max_index_ms = std::max(r.max_index_ms, memos::bench::seconds_since(batch_start) * 1e3);
  }
  r.index_s = memos::bench::seconds_since(start);
  done = true;
  searcher.join();
  start = Clock::now();
  save();
  r.save_s = memos::bench::seconds_since(start);
  r.searches = latencies.size();
  r.max_search_us = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
  r.search_us = memos::bench::summarize(std::move(latencies));
  return r;
}

void print_ingest(std::string_view system, const Options& o, const Ingest& r) {
  JsonLine()
      .str("bench", kName)
      .str("phase", "ingest")
      .str("system", system)
      .count("docs", o.docs)
      .count("batch", o.batch)
      .num("index_s", r.index_s)
      .num("docs_per_s", static_cast<double>(o.docs) / r.index_s, 0)
      .num("max_batch_ms", r.max_index_ms)
      .num("save_s", r.save_s)
      .count("searches", r.searches)
      .num("search_p50_us", r.search_us.p50, 1)
      .num("search_p99_us", r.search_us.p99, 1)
      .num("search_max_us", r.max_search_us, 1)
      .print();
}

// The baseline: what the plugin did before issue 14, with Xapian directly.
// One Glass database; each batch is indexed under the lock searches take,
// Xapian commits on its own every 10000 documents, save commits.
Ingest ingest_single_glass(const Options& o, const Corpus& corpus, const std::string& path) {
  std::mutex mutex;
  Xapian::WritableDatabase db(path, Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
  Xapian::Stem stem("english");
  Xapian::TermGenerator generator;
  configure(generator, stem);
  Xapian::Stem search_stem("english");
  return run_ingest(
      o, corpus,
      [&](std::uint64_t first, std::uint64_t count) {
        std::lock_guard lock(mutex);
        for (std::uint64_t i = first; i < first + count; ++i) {
          db.add_document(make_document(generator, i + 1, corpus.texts[i]));
        }
      },
      [&](const std::string& query) {
        std::lock_guard lock(mutex);
        Xapian::Enquire enquire(db);
        enquire.set_query(parse_query(query, search_stem));
        enquire.get_mset(0, 10);
      },
      [&] {
        std::lock_guard lock(mutex);
        db.commit();
      });
}

// The plugin, called as memosd calls it.
class PluginDriver {
 public:
  explicit PluginDriver(const std::string& state_dir)
      : plugin_(memos::plugin_sdk::Config({{"state_dir", state_dir}})) {
    plugin_.attach(&host_);
    call([](auto r) {
      auto o = r.initOpen();
      o.setCollection(1);
    });
  }

  void index(const Corpus& corpus, std::uint64_t first, std::uint64_t count) {
    call([&](auto r) {
      auto i = r.initIndex();
      i.setCollection(1);
      i.setVersion(first + count);
      auto list = i.initDocuments(static_cast<unsigned>(count));
      for (unsigned n = 0; n < count; ++n) {
        list[n].setId(first + n + 1);
        list[n].setText(corpus.texts[first + n]);
        list[n].setState("active");
        list[n].setTier("plaintext");
      }
    });
  }
  void search(const std::string& query) {
    call([&](auto r) {
      auto s = r.initSearch();
      s.setCollection(1);
      s.setQuery(query);
      s.setK(10);
      s.initFilter().setNowMs(1);
    });
  }
  void save() {
    call([](auto r) { r.setSave(1); });
  }

 private:
  template <class Build>
  void call(Build&& build) {
    capnp::MallocMessageBuilder request;
    build(request.initRoot<wire::PluginRequest>());
    capnp::MallocMessageBuilder reply;
    auto status = plugin_.handle(request.getRoot<wire::PluginRequest>().asReader(),
                                 reply.initRoot<wire::PluginResponse>());
    if (status != MEMOS_OK) {
      auto r = reply.getRoot<wire::PluginResponse>().asReader();
      throw std::runtime_error("plugin call failed: " +
                               (r.isError() ? std::string(r.getError().getMessage()) : ""));
    }
  }
  static void log(void*, int, const char* message, size_t size) {
    std::cerr << std::string_view(message, size) << '\n';
  }

  memos_host_api api_{
      sizeof(memos_host_api), MEMOS_PLUGIN_ABI_MINOR, nullptr, &log, nullptr, nullptr, nullptr};
  memos::plugin_sdk::Host host_{&api_};
  memos::lexical::XapianRetriever plugin_;
};

Ingest ingest_plugin(const Options& o, const Corpus& corpus, const std::string& state_dir) {
  PluginDriver plugin(state_dir);
  return run_ingest(
      o, corpus,
      [&](std::uint64_t first, std::uint64_t count) { plugin.index(corpus, first, count); },
      [&](const std::string& query) { plugin.search(query); }, [&] { plugin.save(); });
}

void run(const Options& o) {
  std::cerr << "generating " << o.docs << " documents\n";
  Corpus corpus = make_corpus(o.docs, o.seed);
  TempDir dir;
  measure_costs(o, corpus);
  std::cerr << "ingest: single-glass\n";
  Ingest baseline = ingest_single_glass(o, corpus, dir.path("baseline.glass"));
  print_ingest("single-glass", o, baseline);
  std::cerr << "ingest: xapian-retriever\n";
  Ingest plugin = ingest_plugin(o, corpus, dir.path("plugin"));
  print_ingest("xapian-retriever", o, plugin);
  JsonLine()
      .str("bench", kName)
      .str("phase", "summary")
      .count("docs", o.docs)
      .num("baseline_docs_per_s", static_cast<double>(o.docs) / baseline.index_s, 0)
      .num("plugin_docs_per_s", static_cast<double>(o.docs) / plugin.index_s, 0)
      .num("speedup", baseline.index_s / plugin.index_s, 2)
      .num("baseline_search_p99_us", baseline.search_us.p99, 1)
      .num("plugin_search_p99_us", plugin.search_us.p99, 1)
      .num("p99_ratio", plugin.search_us.p99 / baseline.search_us.p99, 2)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main(kName, kUsage, argc, argv, parse, run);
}
