#define BOOST_TEST_MODULE faiss_retriever
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "plugins/faiss-retriever/faiss_retriever.h"
#include "plugins/faiss-retriever/hnsw_inserter.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"
#include "plugins/retriever-common/filter.h"
#include "tests/support/memosd_process.h"

using memos::faiss_retriever::FaissRetriever;
using memos::faiss_retriever::IndexKind;
using memos::retrieval::Attributes;
using memos::retrieval::FilterSpec;
using memos::testing::TempDir;
using Settings = std::map<std::string, std::string>;
namespace wire = memos::plugin_wire;
namespace fs = std::filesystem;

namespace {

// ---- what the tests send ------------------------------------------------------

// The wire fields of one document (attributes_of() makes Attributes of them).
struct DocFields {
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> meta;
  std::string tier = "plaintext";
  std::string state = "active";
  std::int64_t valid_from = 0, valid_to = 0, recorded_at = 0, expires_at = 0;
};

struct Doc {
  std::uint64_t id = 0;
  std::vector<float> vector;
  DocFields fields;
  bool attributes_only = false;
};

struct FilterFields {
  std::vector<std::string> all_tags, any_tags, tiers, states;
  std::vector<std::pair<std::string, std::string>> meta;
  bool include_archived = false;
  std::int64_t as_of = 0, now = 1000, recorded_from = 0, recorded_to = 0, valid_from = 0,
               valid_to = 0;
};

void set_texts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& in) {
  for (unsigned i = 0; i < in.size(); ++i) out.set(i, in[i]);
}

void set_pairs(capnp::List<wire::Setting>::Builder out,
               const std::vector<std::pair<std::string, std::string>>& in) {
  for (unsigned i = 0; i < in.size(); ++i) {
    out[i].setKey(in[i].first);
    out[i].setValue(in[i].second);
  }
}

void fill_document(wire::Document::Builder d, const Doc& doc) {
  d.setId(doc.id);
  auto v = d.initVector(static_cast<unsigned>(doc.vector.size()));
  for (unsigned i = 0; i < doc.vector.size(); ++i) v.set(i, doc.vector[i]);
  set_texts(d.initTags(static_cast<unsigned>(doc.fields.tags.size())), doc.fields.tags);
  set_pairs(d.initMeta(static_cast<unsigned>(doc.fields.meta.size())), doc.fields.meta);
  d.setTier(doc.fields.tier);
  d.setState(doc.fields.state);
  d.setValidFromMs(doc.fields.valid_from);
  d.setValidToMs(doc.fields.valid_to);
  d.setRecordedAtMs(doc.fields.recorded_at);
  d.setExpiresAtMs(doc.fields.expires_at);
  d.setAttributesOnly(doc.attributes_only);
}

void fill_filter(wire::Filter::Builder f, const FilterFields& in) {
  set_texts(f.initAllTags(static_cast<unsigned>(in.all_tags.size())), in.all_tags);
  set_texts(f.initAnyTags(static_cast<unsigned>(in.any_tags.size())), in.any_tags);
  set_texts(f.initTiers(static_cast<unsigned>(in.tiers.size())), in.tiers);
  set_texts(f.initStates(static_cast<unsigned>(in.states.size())), in.states);
  set_pairs(f.initMeta(static_cast<unsigned>(in.meta.size())), in.meta);
  f.setIncludeArchived(in.include_archived);
  f.setAsOfMs(in.as_of);
  f.setNowMs(in.now);
  f.setRecordedFromMs(in.recorded_from);
  f.setRecordedToMs(in.recorded_to);
  f.setValidFromMs(in.valid_from);
  f.setValidToMs(in.valid_to);
}

// The brute-force side decodes the very same wire filter and document.
FilterSpec spec_of(const FilterFields& in) {
  capnp::MallocMessageBuilder m;
  auto f = m.initRoot<wire::Filter>();
  fill_filter(f, in);
  return memos::retrieval::decode_filter(f.asReader());
}

Attributes attributes_of(const Doc& doc) {
  capnp::MallocMessageBuilder m;
  auto d = m.initRoot<wire::Document>();
  fill_document(d, doc);
  return memos::retrieval::attributes_of(d.asReader());
}

struct Answer {
  memos_status status = MEMOS_ERR_INTERNAL;
  std::unique_ptr<capnp::MallocMessageBuilder> message;
  wire::PluginResponse::Reader get() const {
    return message->getRoot<wire::PluginResponse>().asReader();
  }
  std::string error() const {
    auto r = get();
    return r.isError() ? std::string(r.getError().getMessage().cStr()) : std::string();
  }
  std::vector<std::pair<std::uint64_t, float>> hits() const {
    std::vector<std::pair<std::uint64_t, float>> out;
    for (auto h : get().getHits()) out.emplace_back(h.getId(), h.getScore());
    return out;
  }
};

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// Drives FaissRetriever::handle() with real plugin.capnp messages.
class Retriever {
 public:
  explicit Retriever(std::map<std::string, std::string> settings = {})
      : plugin(memos::plugin_sdk::Config(std::move(settings))) {}

  template <class Fill>
  Answer call(Fill&& fill) {
    capnp::MallocMessageBuilder request;
    fill(request.initRoot<wire::PluginRequest>());
    Answer a;
    a.message = std::make_unique<capnp::MallocMessageBuilder>();
    a.status = plugin.handle(request.getRoot<wire::PluginRequest>().asReader(),
                             a.message->initRoot<wire::PluginResponse>());
    return a;
  }
  Answer open(std::uint64_t c, std::uint32_t dimension) {
    return call([&](wire::PluginRequest::Builder r) {
      auto o = r.initOpen();
      o.setCollection(c);
      o.setDimension(dimension);
    });
  }
  Answer index(std::uint64_t c, const std::vector<Doc>& docs, std::uint64_t version,
               bool no_wait = false) {
    return call([&](wire::PluginRequest::Builder r) {
      auto x = r.initIndex();
      x.setCollection(c);
      x.setVersion(version);
      x.setNoWait(no_wait);
      auto list = x.initDocuments(static_cast<unsigned>(docs.size()));
      for (unsigned i = 0; i < docs.size(); ++i) fill_document(list[i], docs[i]);
    });
  }
  Answer remove(std::uint64_t c, const std::vector<std::uint64_t>& ids, std::uint64_t version) {
    return call([&](wire::PluginRequest::Builder r) {
      auto x = r.initRemove();
      x.setCollection(c);
      x.setVersion(version);
      auto list = x.initIds(static_cast<unsigned>(ids.size()));
      for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i]);
    });
  }
  Answer search(std::uint64_t c, const std::vector<float>& q, std::uint32_t k,
                const FilterFields& f = {}) {
    return call([&](wire::PluginRequest::Builder r) {
      auto s = r.initSearch();
      s.setCollection(c);
      s.setK(k);
      auto v = s.initVector(static_cast<unsigned>(q.size()));
      for (unsigned i = 0; i < q.size(); ++i) v.set(i, q[i]);
      fill_filter(s.initFilter(), f);
    });
  }
  Answer save(std::uint64_t c) {
    return call([&](wire::PluginRequest::Builder r) { r.setSave(c); });
  }
  Answer drop(std::uint64_t c) {
    return call([&](wire::PluginRequest::Builder r) { r.setDrop(c); });
  }
  Answer export_snapshot(std::uint64_t c, const std::string& path) {
    return call([&](wire::PluginRequest::Builder r) {
      auto x = r.initExportSnapshot();
      x.setCollection(c);
      x.setPath(path);
    });
  }
  Answer import_snapshot(std::uint64_t c, const std::string& path) {
    return call([&](wire::PluginRequest::Builder r) {
      auto x = r.initImportSnapshot();
      x.setCollection(c);
      x.setPath(path);
    });
  }

  FaissRetriever plugin;
};

// ---- random data and the brute-force reference ------------------------------

std::vector<float> random_vector(std::mt19937_64& rng, std::size_t dim) {
  std::normal_distribution<float> n;
  std::vector<float> v(dim);
  for (auto& x : v) x = n(rng);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

const std::vector<std::string> kTags = {"a", "b", "c", "d", "e"};

DocFields random_fields(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u;
  auto pick = [&](std::initializer_list<const char*> xs, std::initializer_list<double> ps) {
    double r = u(rng), acc = 0;
    auto p = ps.begin();
    for (const char* x : xs) {
      acc += *p++;
      if (r < acc) return std::string(x);
    }
    return std::string(*(xs.end() - 1));
  };
  DocFields f;
  for (const auto& t : kTags)
    if (u(rng) < 0.3) f.tags.push_back(t);
  if (u(rng) < 0.5) f.meta.emplace_back("k", u(rng) < 0.5 ? "x" : "y");
  if (u(rng) < 0.3) f.meta.emplace_back("j", "1");
  // Mostly default-looking documents, some restricted in every way.
  f.tier = pick({"plaintext", "activation", "parametric"}, {0.8, 0.1, 0.1});
  f.state = pick({"active", "archived", "frozen"}, {0.7, 0.15, 0.15});
  f.valid_from = u(rng) < 0.5 ? 0 : std::int64_t(u(rng) * 2000);
  f.valid_to = u(rng) < 0.7 ? 0 : f.valid_from + 1 + std::int64_t(u(rng) * 2000);
  f.recorded_at = std::int64_t(u(rng) * 3000);
  f.expires_at = u(rng) < 0.8 ? 0 : 500 + std::int64_t(u(rng) * 2500);
  return f;
}

FilterFields random_filter(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u;
  auto some_tags = [&](double p) {
    std::vector<std::string> out;
    if (u(rng) < p)
      for (const auto& t : kTags)
        if (u(rng) < 0.3) out.push_back(t);
    return out;
  };
  auto time = [&](double p) { return u(rng) < p ? std::int64_t(1 + u(rng) * 4000) : 0; };
  FilterFields f;
  f.all_tags = some_tags(0.3);
  f.any_tags = some_tags(0.3);
  if (u(rng) < 0.2) f.meta.emplace_back("k", u(rng) < 0.5 ? "x" : "y");
  if (u(rng) < 0.3) f.tiers = {u(rng) < 0.7 ? "plaintext" : "activation"};
  if (u(rng) < 0.3) f.states = {"active", u(rng) < 0.5 ? "archived" : "frozen"};
  f.include_archived = u(rng) < 0.2;
  f.now = 1 + std::int64_t(u(rng) * 4000);
  f.as_of = time(0.5);
  f.recorded_from = time(0.2);
  f.recorded_to = time(0.2);
  f.valid_from = time(0.15);
  f.valid_to = time(0.15);
  return f;
}

// The model: what the collection should hold.
struct Model {
  std::map<std::uint64_t, std::pair<std::vector<float>, Attributes>> docs;
  void apply(const Doc& d) {
    if (d.attributes_only) {
      auto it = docs.find(d.id);
      if (it != docs.end()) it->second.second = attributes_of(d);
    } else {
      docs[d.id] = {d.vector, attributes_of(d)};
    }
  }
  // Every admitted document, best first.
  std::vector<std::pair<std::uint64_t, double>> brute_force(const std::vector<float>& q,
                                                            const FilterSpec& f) const {
    std::vector<std::pair<std::uint64_t, double>> out;
    for (const auto& [id, doc] : docs)
      if (memos::retrieval::admits(doc.second, f)) out.emplace_back(id, dot(q, doc.first));
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.second > b.second; });
    return out;
  }
  bool admitted(std::uint64_t id, const FilterSpec& f) const {
    auto it = docs.find(id);
    return it != docs.end() && memos::retrieval::admits(it->second.second, f);
  }
};

std::vector<Doc> random_docs(std::mt19937_64& rng, std::uint64_t first_id, std::size_t n,
                             std::size_t dim) {
  std::vector<Doc> docs(n);
  for (std::size_t i = 0; i < n; ++i) {
    docs[i].id = first_id + i;
    docs[i].vector = random_vector(rng, dim);
    docs[i].fields = random_fields(rng);
  }
  return docs;
}

bool near(double a, double b) {
  return std::abs(a - b) <= 1e-3 * std::max(1.0, std::abs(b));
}

// An exact answer: the brute force's first k, same scores in the same order,
// and (ties aside) the same ids.
void check_exact(const std::vector<std::pair<std::uint64_t, float>>& hits,
                 const std::vector<std::pair<std::uint64_t, double>>& expected, std::size_t k,
                 const Model& model, const FilterSpec& f, const std::vector<float>& q) {
  std::size_t want = std::min(k, expected.size());
  BOOST_REQUIRE_EQUAL(hits.size(), want);
  for (std::size_t i = 0; i < want; ++i) {
    BOOST_TEST(near(hits[i].second, expected[i].second), "rank " << i);
    BOOST_TEST(model.admitted(hits[i].first, f));
    BOOST_TEST(near(hits[i].second, dot(q, model.docs.at(hits[i].first).first)));
  }
  if (want == expected.size()) {
    std::set<std::uint64_t> a, b;
    for (auto& h : hits) a.insert(h.first);
    for (auto& e : expected) b.insert(e.first);
    BOOST_TEST((a == b));
  }
}

// Every hit admitted, scored right, unique; min(k, admitted) of them; and
// the share of the true top k found.
double check_approximate(const std::vector<std::pair<std::uint64_t, float>>& hits,
                         const std::vector<std::pair<std::uint64_t, double>>& expected,
                         std::size_t k, const Model& model, const FilterSpec& f,
                         const std::vector<float>& q) {
  std::size_t want = std::min(k, expected.size());
  BOOST_REQUIRE_EQUAL(hits.size(), want);
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < hits.size(); ++i) {
    BOOST_TEST(model.admitted(hits[i].first, f), "id " << hits[i].first);
    BOOST_TEST(seen.insert(hits[i].first).second);
    BOOST_TEST(near(hits[i].second, dot(q, model.docs.at(hits[i].first).first)));
    if (i > 0) BOOST_TEST(hits[i - 1].second >= hits[i].second);
  }
  if (want == 0) return 1.0;
  std::size_t found = 0;
  for (std::size_t i = 0; i < want; ++i) found += seen.count(expected[i].first);
  return double(found) / double(want);
}

std::map<std::string, std::string> hnsw_settings(const std::string& state_dir = "") {
  return {{"hnsw_threshold", "200"}, {"state_dir", state_dir}};
}

}  // namespace

// ---- (1) filters against brute force ----------------------------------------

BOOST_AUTO_TEST_CASE(exact_index_matches_brute_force_under_random_filters) {
  std::mt19937_64 rng(1);
  Retriever r;
  const std::size_t dim = 16;
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  Model model;
  auto docs = random_docs(rng, 1, 600, dim);
  BOOST_REQUIRE_EQUAL(r.index(1, docs, 5).status, MEMOS_OK);
  for (auto& d : docs) model.apply(d);
  BOOST_TEST((r.plugin.collection(1)->stats().kind == IndexKind::exact));
  for (int round = 0; round < 300; ++round) {
    auto q = random_vector(rng, dim);
    auto f = random_filter(rng);
    auto spec = spec_of(f);
    auto expected = model.brute_force(q, spec);
    for (std::uint32_t k : {1u, 10u, 1000u}) {
      auto a = r.search(1, q, k, f);
      BOOST_REQUIRE_EQUAL(a.status, MEMOS_OK);
      check_exact(a.hits(), expected, k, model, spec, q);
    }
  }
  // The unfiltered fast path (no restricted documents, no tombstones).
  Retriever plain;
  BOOST_REQUIRE_EQUAL(plain.open(2, dim).status, MEMOS_OK);
  Model plain_model;
  auto simple = random_docs(rng, 1, 300, dim);
  for (auto& d : simple) d.fields = DocFields{};
  plain.index(2, simple, 1);
  for (auto& d : simple) plain_model.apply(d);
  for (int round = 0; round < 20; ++round) {
    auto q = random_vector(rng, dim);
    FilterFields f;
    auto spec = spec_of(f);
    BOOST_REQUIRE(spec.only_default_conditions(0));
    check_exact(plain.search(2, q, 25, f).hits(), plain_model.brute_force(q, spec), 25, plain_model,
                spec, q);
  }
}

BOOST_AUTO_TEST_CASE(hnsw_index_admits_only_what_filters_allow_with_high_recall) {
  std::mt19937_64 rng(2);
  Retriever r(hnsw_settings());
  const std::size_t dim = 32;
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  Model model;
  auto docs = random_docs(rng, 1, 2000, dim);
  // A few documents carry a tag nothing else does: a very selective filter.
  for (std::size_t i = 0; i < 5; ++i) {
    docs[i * 300].fields = DocFields{};
    docs[i * 300].fields.tags = {"rare"};
  }
  BOOST_REQUIRE_EQUAL(r.index(1, docs, 1).status, MEMOS_OK);
  for (auto& d : docs) model.apply(d);
  auto c = r.plugin.collection(1);
  c->wait_for_rebuild();
  BOOST_REQUIRE((c->stats().kind == IndexKind::hnsw));
  BOOST_TEST(c->stats().documents == 2000u);

  double recall = 0;
  int measured = 0;
  for (int round = 0; round < 200; ++round) {
    auto q = random_vector(rng, dim);
    auto f = random_filter(rng);
    auto spec = spec_of(f);
    auto expected = model.brute_force(q, spec);
    auto a = r.search(1, q, 10, f);
    BOOST_REQUIRE_EQUAL(a.status, MEMOS_OK);
    recall += check_approximate(a.hits(), expected, 10, model, spec, q);
    ++measured;
    // k beyond the collection: the whole admitted set, exactly.
    check_exact(r.search(1, q, 5000, f).hits(), expected, 5000, model, spec, q);
  }
  recall /= measured;
  BOOST_TEST_MESSAGE("hnsw recall@10 under random filters: " << recall);
  BOOST_TEST(recall > 0.9);

  // Five admitted documents among 2000: all five, best first.
  FilterFields rare;
  rare.all_tags = {"rare"};
  auto spec = spec_of(rare);
  for (int round = 0; round < 10; ++round) {
    auto q = random_vector(rng, dim);
    auto expected = model.brute_force(q, spec);
    BOOST_REQUIRE_EQUAL(expected.size(), 5u);
    check_exact(r.search(1, q, 10, rare).hits(), expected, 10, model, spec, q);
    // Fewer than admitted: HNSW's pick, approximate but never short.
    check_approximate(r.search(1, q, 3, rare).hits(), expected, 3, model, spec, q);
  }
}

// ---- (2) removed and replaced documents never come back ---------------------

void check_changes_stick(std::map<std::string, std::string> settings, IndexKind kind) {
  std::mt19937_64 rng(3);
  Retriever r(settings);
  const std::size_t dim = 16;
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  Model model;
  auto docs = random_docs(rng, 1, 1000, dim);
  for (auto& d : docs) d.fields = DocFields{};
  r.index(1, docs, 1);
  for (auto& d : docs) model.apply(d);
  auto c = r.plugin.collection(1);
  c->wait_for_rebuild();
  BOOST_REQUIRE((c->stats().kind == kind));

  std::set<std::uint64_t> removed;
  std::vector<std::vector<float>> old_vectors;
  auto check = [&](const char* when) {
    BOOST_TEST_CONTEXT(when) {
      FilterFields f;
      auto spec = spec_of(f);
      // The old vectors of replaced documents as queries: a stale copy
      // would score |v|^2 and come first.
      for (const auto& q : old_vectors) {
        auto hits = r.search(1, q, 10, f).hits();
        check_approximate(hits, model.brute_force(q, spec), 10, model, spec, q);
        for (auto& h : hits) BOOST_TEST(!removed.count(h.first));
      }
      auto q = random_vector(rng, dim);
      auto all = r.search(1, q, 5000, f).hits();
      check_exact(all, model.brute_force(q, spec), 5000, model, spec, q);
    }
  };

  // Replace 100 vectors, archive 50 through attributes only, remove 100:
  // under 25% of the index, so they stay tombstones.
  std::vector<Doc> changes;
  for (std::uint64_t id = 1; id <= 100; ++id) {
    Doc d = docs[id - 1];
    old_vectors.push_back(d.vector);
    d.vector = random_vector(rng, dim);
    changes.push_back(d);
  }
  for (std::uint64_t id = 101; id <= 150; ++id) {
    Doc d;
    d.id = id;
    d.attributes_only = true;
    d.fields.state = "archived";
    changes.push_back(d);
  }
  Doc ghost;  // attributes only, for an id the collection does not hold
  ghost.id = 99999;
  ghost.attributes_only = true;
  changes.push_back(ghost);
  BOOST_REQUIRE_EQUAL(r.index(1, changes, 2).status, MEMOS_OK);
  for (auto& d : changes) model.apply(d);
  std::vector<std::uint64_t> gone;
  for (std::uint64_t id = 201; id <= 300; ++id) gone.push_back(id);
  gone.push_back(123456);  // not there: ignored
  BOOST_REQUIRE_EQUAL(r.remove(1, gone, 3).status, MEMOS_OK);
  for (auto id : gone) {
    removed.insert(id);
    model.docs.erase(id);
  }
  BOOST_TEST(c->stats().tombstones == 200u);
  BOOST_TEST(c->stats().documents == 900u);
  check("with tombstones");

  // Past the tombstone ratio: a rebuild clears them.
  gone.clear();
  for (std::uint64_t id = 301; id <= 450; ++id) gone.push_back(id);
  BOOST_REQUIRE_EQUAL(r.remove(1, gone, 4).status, MEMOS_OK);
  for (auto id : gone) {
    removed.insert(id);
    model.docs.erase(id);
  }
  c->wait_for_rebuild();
  auto stats = c->stats();
  BOOST_TEST(stats.tombstones == 0u);
  BOOST_TEST(stats.rebuilds >= 1u);
  BOOST_TEST(stats.documents == 750u);
  BOOST_TEST(stats.version == 4u);
  BOOST_TEST(stats.rebuild_error.empty());
  check("after a rebuild");
}

BOOST_AUTO_TEST_CASE(removed_and_replaced_documents_never_come_back_exact) {
  check_changes_stick({}, IndexKind::exact);
}

BOOST_AUTO_TEST_CASE(removed_and_replaced_documents_never_come_back_hnsw) {
  check_changes_stick(hnsw_settings(), IndexKind::hnsw);
}

// Changes that arrive while a rebuild runs reach the rebuilt index.
BOOST_AUTO_TEST_CASE(writes_during_a_background_rebuild_are_not_lost) {
  std::mt19937_64 rng(4);
  Retriever r(hnsw_settings());
  const std::size_t dim = 64;
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  Model model;
  auto docs = random_docs(rng, 1, 6000, dim);
  r.index(1, docs, 1);  // outgrows the exact index: HNSW is built behind it
  for (auto& d : docs) model.apply(d);
  auto c = r.plugin.collection(1);
  int during = 0;
  std::uint64_t version = 1;
  std::uniform_int_distribution<std::uint64_t> any(1, 7000);
  for (int i = 0; i < 400 && (i < 50 || c->stats().rebuilding); ++i) {
    if (c->stats().rebuilding) ++during;
    Doc d;
    d.id = any(rng);
    int what = i % 3;
    if (what == 0) {  // new or replaced vector
      d.vector = random_vector(rng, dim);
      d.fields = random_fields(rng);
    } else if (what == 1) {  // attributes only
      d.attributes_only = true;
      d.fields = random_fields(rng);
    }
    if (what == 2) {
      r.remove(1, {d.id}, ++version);
      model.docs.erase(d.id);
    } else {
      BOOST_REQUIRE_EQUAL(r.index(1, {d}, ++version).status, MEMOS_OK);
      model.apply(d);
    }
  }
  BOOST_TEST_MESSAGE(during << " changes arrived during the rebuild");
  BOOST_TEST(during > 0);
  c->wait_for_rebuild();
  auto stats = c->stats();
  BOOST_TEST((stats.kind == IndexKind::hnsw));
  BOOST_TEST(stats.documents == model.docs.size());
  BOOST_TEST(stats.version == version);
  for (int round = 0; round < 10; ++round) {
    auto q = random_vector(rng, dim);
    auto f = random_filter(rng);
    auto spec = spec_of(f);
    check_exact(r.search(1, q, 10000, f).hits(), model.brute_force(q, spec), 10000, model, spec, q);
  }
}

// Searches and changes side by side, through rebuilds: nothing crashes and
// no search returns a removed id.
BOOST_AUTO_TEST_CASE(concurrent_searches_and_changes) {
  Retriever r(Settings{{"hnsw_threshold", "300"}});
  const std::size_t dim = 16;
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  std::mt19937_64 rng(5);
  r.index(1, random_docs(rng, 1, 500, dim), 1);  // ids 1..500 stay
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, searches{0};
  // Rounds whose even ids have been removed (searches may see a round's
  // ids between its index and remove calls).
  std::atomic<int> removed_rounds{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 local(100 + t);
      while (!done) {
        int removed = removed_rounds.load();
        auto hits = r.search(1, random_vector(local, dim), 20, FilterFields{}).hits();
        for (auto& h : hits) {
          bool even_of_removed_round =
              h.first >= 1000 && h.first % 2 == 0 && int((h.first - 1000) / 100) < removed;
          if (even_of_removed_round) ++bad;
        }
        ++searches;
      }
    });
  }
  // On a busy machine the writer could finish before a reader runs.
  while (searches < 3) std::this_thread::yield();
  for (std::uint64_t round = 0; round < 30; ++round) {
    auto docs = random_docs(rng, 1000 + round * 100, 100, dim);
    for (auto& d : docs) d.fields = DocFields{};
    r.index(1, docs, 2 + round);
    std::vector<std::uint64_t> even;
    for (auto& d : docs)
      if (d.id % 2 == 0) even.push_back(d.id);
    r.remove(1, even, 2 + round);
    removed_rounds = int(round) + 1;
  }
  done = true;
  for (auto& t : readers) t.join();
  BOOST_TEST(bad == 0);
  BOOST_TEST(searches > 0);
  auto c = r.plugin.collection(1);
  c->wait_for_rebuild();
  BOOST_TEST(c->stats().documents == 500u + 30u * 50u);
}

// ---- (3) snapshots -------------------------------------------------------------

void check_round_trip(std::map<std::string, std::string> settings, IndexKind kind) {
  TempDir dir;
  settings["state_dir"] = dir.path() + "/index";
  std::mt19937_64 rng(6);
  const std::size_t dim = 24;
  std::vector<std::vector<std::pair<std::uint64_t, float>>> before;
  std::vector<std::vector<float>> queries;
  std::vector<FilterFields> filters;
  for (int i = 0; i < 30; ++i) {
    queries.push_back(random_vector(rng, dim));
    filters.push_back(random_filter(rng));
  }
  {
    Retriever r(settings);
    auto o = r.open(7, dim);
    BOOST_REQUIRE_EQUAL(o.status, MEMOS_OK);
    BOOST_TEST(o.get().getCollection().getVersion() == 0u);
    BOOST_TEST(contains(o.get().getCollection().getDetail().cStr(), "no snapshot"));
    r.index(7, random_docs(rng, 1, 800, dim), 41);
    r.plugin.collection(7)->wait_for_rebuild();
    r.remove(7, {5, 6, 7}, 42);  // tombstones travel too
    BOOST_REQUIRE((r.plugin.collection(7)->stats().kind == kind));
    auto s = r.save(7);
    BOOST_REQUIRE_MESSAGE(s.status == MEMOS_OK, s.error());
    BOOST_TEST(s.get().getCollection().getVersion() == 42u);
    BOOST_TEST(s.get().getCollection().getDocuments() == 797u);
    for (int i = 0; i < 30; ++i) before.push_back(r.search(7, queries[i], 15, filters[i]).hits());
    BOOST_TEST(fs::exists(settings["state_dir"] + "/7.dense"));
    BOOST_TEST(!fs::exists(settings["state_dir"] + "/7.dense.tmp"));
  }
  Retriever again(settings);
  auto o = again.open(7, dim);
  BOOST_REQUIRE_EQUAL(o.status, MEMOS_OK);
  auto state = o.get().getCollection();
  BOOST_TEST(state.getVersion() == 42u);
  BOOST_TEST(state.getDocuments() == 797u);
  BOOST_TEST(contains(state.getDetail().cStr(), "loaded snapshot"), state.getDetail().cStr());
  auto stats = again.plugin.collection(7)->stats();
  BOOST_TEST((stats.kind == kind));
  BOOST_TEST(stats.tombstones == 3u);
  BOOST_TEST(stats.rebuilds == 0u);  // served as loaded
  for (int i = 0; i < 30; ++i) {
    auto after = again.search(7, queries[i], 15, filters[i]).hits();
    BOOST_REQUIRE_EQUAL(after.size(), before[i].size());
    for (std::size_t j = 0; j < after.size(); ++j) {
      BOOST_TEST(after[j].first == before[i][j].first);
      BOOST_TEST(after[j].second == before[i][j].second);
    }
  }
  // Opening again answers the current state.
  auto twice = again.open(7, dim);
  BOOST_TEST(twice.get().getCollection().getVersion() == 42u);
  // Drop forgets the collection and its file.
  BOOST_REQUIRE_EQUAL(again.drop(7).status, MEMOS_OK);
  BOOST_TEST(!fs::exists(settings["state_dir"] + "/7.dense"));
  BOOST_TEST(contains(again.search(7, queries[0], 1).error(), "collection 7 is not open"));
  BOOST_REQUIRE_EQUAL(again.open(7, dim).status, MEMOS_OK);
  BOOST_TEST(again.open(7, dim).get().getCollection().getDocuments() == 0u);
}

BOOST_AUTO_TEST_CASE(snapshot_round_trip_exact) {
  check_round_trip({}, IndexKind::exact);
}

BOOST_AUTO_TEST_CASE(snapshot_round_trip_hnsw) {
  check_round_trip({{"hnsw_threshold", "200"}}, IndexKind::hnsw);
}

// A collection that never held a document (a cube made and left empty) is
// snapshotted and loaded as such. Its vector section is empty: reading it
// once copied 0 bytes from a null pointer (UBSan).
BOOST_AUTO_TEST_CASE(an_empty_collection_round_trips) {
  TempDir dir;
  std::map<std::string, std::string> settings{{"state_dir", dir.path() + "/index"}};
  const std::size_t dim = 16;
  {
    Retriever r(settings);
    BOOST_REQUIRE_EQUAL(r.open(9, dim).status, MEMOS_OK);
    r.index(9, {}, 3);
    auto saved = r.save(9);
    BOOST_REQUIRE_MESSAGE(saved.status == MEMOS_OK, saved.error());
  }
  Retriever again(settings);
  auto o = again.open(9, dim);
  BOOST_REQUIRE_EQUAL(o.status, MEMOS_OK);
  BOOST_TEST(o.get().getCollection().getVersion() == 3u);
  BOOST_TEST(o.get().getCollection().getDocuments() == 0u);
  BOOST_TEST(again.search(9, std::vector<float>(dim, 1.0f), 5).hits().empty());
}

// ---- (4) damaged snapshots open empty ------------------------------------------

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Opens `collection` in a fresh instance and expects an empty collection.
std::string open_refused(const std::map<std::string, std::string>& settings,
                         std::uint64_t collection, std::uint32_t dim) {
  Retriever r(settings);
  auto o = r.open(collection, dim);
  BOOST_REQUIRE_EQUAL(o.status, MEMOS_OK);
  auto state = o.get().getCollection();
  BOOST_TEST(state.getVersion() == 0u);
  BOOST_TEST(state.getDocuments() == 0u);
  // It works as an empty collection.
  BOOST_TEST(r.search(collection, std::vector<float>(dim, 1.0f), 5).hits().empty());
  return state.getDetail().cStr();
}

void check_damage(std::map<std::string, std::string> settings) {
  TempDir dir;
  std::string folder = dir.path() + "/index";
  settings["state_dir"] = folder;
  const std::uint32_t dim = 4;
  std::mt19937_64 rng(7);
  {
    Retriever r(settings);
    r.open(3, dim);
    r.index(3, random_docs(rng, 1, 300, dim), 9);
    r.plugin.collection(3)->wait_for_rebuild();
    BOOST_REQUIRE_EQUAL(r.save(3).status, MEMOS_OK);
  }
  std::string path = folder + "/3.dense";
  std::string good = read_bytes(path);
  BOOST_TEST_MESSAGE("snapshot of 300 documents: " << good.size() << " bytes");

  write_bytes(path, good.substr(0, good.size() / 2));
  BOOST_TEST(contains(open_refused(settings, 3, dim), "snapshot refused: truncated"));
  write_bytes(path, "");
  BOOST_TEST(contains(open_refused(settings, 3, dim), "truncated"));

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  write_bytes(path, flipped);
  BOOST_TEST(contains(open_refused(settings, 3, dim), "checksum mismatch"));

  std::string magic = good;
  magic[0] = 'X';
  write_bytes(path, magic);
  BOOST_TEST(contains(open_refused(settings, 3, dim), "bad magic"));

  write_bytes(path, good + "x");
  BOOST_TEST(contains(open_refused(settings, 3, dim), "trailing bytes"));

  // Another collection's snapshot under this name.
  write_bytes(folder + "/4.dense", good);
  BOOST_TEST(contains(open_refused(settings, 4, dim), "holds collection 3, not 4"));
  // The right collection at another dimension.
  write_bytes(path, good);
  BOOST_TEST(contains(open_refused(settings, 3, dim + 1), "dimension 4, not 5"));

  // Killed while writing: only the .tmp exists. It is never trusted, and removed.
  write_bytes(folder + "/5.dense.tmp", good.substr(0, 100));
  std::string detail = open_refused(settings, 5, dim);
  BOOST_TEST(contains(detail, "no snapshot"), detail);
  BOOST_TEST(contains(detail, "unfinished"), detail);
  BOOST_TEST(!fs::exists(folder + "/5.dense.tmp"));
  // Beside a good snapshot, a stale .tmp does not matter.
  write_bytes(path + ".tmp", "garbage");
  {
    Retriever r(settings);
    auto answer = r.open(3, dim);
    auto state = answer.get().getCollection();
    BOOST_TEST(state.getVersion() == 9u);
    BOOST_TEST(state.getDocuments() == 300u);
  }

  // Single-byte flips and truncations of a small snapshot: refused, never a
  // crash.
  {
    Retriever r(settings);
    r.open(6, dim);
    r.index(6, random_docs(rng, 1, 8, dim), 2);
    BOOST_REQUIRE_EQUAL(r.save(6).status, MEMOS_OK);
  }
  std::string small_path = folder + "/6.dense";
  std::string small = read_bytes(small_path);
  // Every byte of the header and checksum, every third of the body.
  for (std::size_t i = 0; i < small.size(); i += (i < 48 || i + 4 >= small.size()) ? 1 : 3) {
    std::string bad = small;
    bad[i] ^= 0x01;
    write_bytes(small_path, bad);
    BOOST_TEST(contains(open_refused(settings, 6, dim), "snapshot refused"), "byte " << i);
    write_bytes(small_path, small.substr(0, i));
    BOOST_TEST(contains(open_refused(settings, 6, dim), "snapshot refused"), "length " << i);
  }
}

BOOST_AUTO_TEST_CASE(damaged_snapshots_open_empty_exact) {
  check_damage({});
}

BOOST_AUTO_TEST_CASE(damaged_snapshots_open_empty_hnsw) {
  check_damage({{"hnsw_threshold", "200"}});
}

// ---- (5) hostile requests ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(hostile_requests_are_refused_clearly) {
  Retriever r;
  const std::uint32_t dim = 8;
  std::mt19937_64 rng(8);
  auto q = random_vector(rng, dim);

  // Unknown collections.
  std::vector<Answer> unknown;
  unknown.push_back(r.search(9, q, 3));
  unknown.push_back(r.index(9, {}, 1));
  unknown.push_back(r.remove(9, {1}, 1));
  unknown.push_back(r.save(9));
  for (const auto& a : unknown) {
    BOOST_TEST(a.status == MEMOS_ERR_INVALID);
    BOOST_TEST(contains(a.error(), "collection 9 is not open"), a.error());
  }
  BOOST_TEST(r.drop(9).status == MEMOS_OK);  // dropping twice is harmless

  // Dimensions.
  BOOST_TEST(r.open(1, 0).status == MEMOS_ERR_INVALID);
  BOOST_TEST(r.open(1, 65537).status == MEMOS_ERR_INVALID);
  BOOST_REQUIRE_EQUAL(r.open(1, dim).status, MEMOS_OK);
  auto other = r.open(1, dim * 2);
  BOOST_TEST(other.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(other.error(), "open with dimension 8"), other.error());

  auto good = random_docs(rng, 1, 10, dim);
  BOOST_REQUIRE_EQUAL(r.index(1, good, 1).status, MEMOS_OK);

  // A request with one bad document changes nothing.
  auto batch = random_docs(rng, 100, 5, dim);
  batch[3].vector.pop_back();
  auto short_vector = r.index(1, batch, 2);
  BOOST_TEST(short_vector.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(short_vector.error(), "document 103"), short_vector.error());
  batch = random_docs(rng, 100, 5, dim);
  batch[4].vector[2] = std::numeric_limits<float>::quiet_NaN();
  BOOST_TEST(r.index(1, batch, 2).status == MEMOS_ERR_INVALID);
  batch[4].vector[2] = std::numeric_limits<float>::infinity();
  BOOST_TEST(r.index(1, batch, 2).status == MEMOS_ERR_INVALID);
  auto reopened = r.open(1, dim);
  auto state = reopened.get().getCollection();
  BOOST_TEST(state.getDocuments() == 10u);
  BOOST_TEST(state.getVersion() == 1u);

  // Queries.
  auto nan_query = q;
  nan_query[0] = std::numeric_limits<float>::quiet_NaN();
  BOOST_TEST(r.search(1, nan_query, 3).status == MEMOS_ERR_INVALID);
  BOOST_TEST(r.search(1, std::vector<float>(dim + 1, 0.5f), 3).status == MEMOS_ERR_INVALID);
  BOOST_TEST(r.search(1, {}, 3).status == MEMOS_ERR_INVALID);
  auto zero = r.search(1, q, 0);
  BOOST_TEST(zero.status == MEMOS_OK);
  BOOST_TEST(zero.hits().empty());
  FilterFields everything;
  everything.states = {"active", "archived", "frozen"};
  everything.as_of = 1'000'000;
  auto huge = r.search(1, q, std::numeric_limits<std::uint32_t>::max(), everything);
  BOOST_TEST(huge.status == MEMOS_OK);
  std::size_t admitted = 0;
  auto spec = spec_of(everything);
  for (auto& d : good) admitted += memos::retrieval::admits(attributes_of(d), spec);
  BOOST_TEST(huge.hits().size() == admitted);

  // Attributes-only documents need no vector.
  Doc attrs;
  attrs.id = 1;
  attrs.attributes_only = true;
  BOOST_TEST(r.index(1, {attrs}, 3).status == MEMOS_OK);

  // No state_dir: save refused, not crashed.
  auto save = r.save(1);
  BOOST_TEST(save.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(save.error(), "no state_dir"), save.error());

  // Request kinds a retriever does not answer.
  auto embed = r.call([](wire::PluginRequest::Builder b) { b.initEmbed(); });
  BOOST_TEST(embed.status == MEMOS_ERR_UNSUPPORTED);

  // Bad settings are refused at create().
  BOOST_CHECK_THROW(Retriever(Settings{{"tombstone_ratio", "1.5"}}), std::invalid_argument);
  BOOST_CHECK_THROW(Retriever(Settings{{"hnsw_m", "zero"}}), std::invalid_argument);
}

// ---- the real plugin, through the loader -------------------------------------

BOOST_AUTO_TEST_CASE(the_shared_object_loads_and_answers) {
  using namespace memos::plugins;
  Manifest manifest;
  std::string manifest_path =
      std::string(MEMOS_PLUGIN_DIR) + "/faiss-retriever/faiss-retriever.plugin.toml";
  BOOST_REQUIRE_EQUAL(read_manifest(manifest_path, &manifest), "");
  BOOST_TEST(manifest.settings.at("hnsw_threshold") == "20000");
  TempDir dir;
  manifest.settings["state_dir"] = dir.path();
  LoadedLibrary library;
  BOOST_REQUIRE_EQUAL(load_library(manifest, &library), "");
  std::string error;
  auto instance = PluginInstance::create(library, &error);
  BOOST_REQUIRE_MESSAGE(instance, error);

  auto call = [&](auto fill, auto check) {
    capnp::MallocMessageBuilder request;
    fill(request.initRoot<wire::PluginRequest>());
    auto words = capnp::messageToFlatArray(request);
    auto bytes = words.asBytes();
    auto result =
        instance->call(std::string(bytes.begin(), bytes.end()), std::chrono::seconds(30), 1 << 20);
    BOOST_REQUIRE_MESSAGE(result.status == MEMOS_OK, result.message);
    std::vector<capnp::word> aligned(result.reply.size() / sizeof(capnp::word));
    std::memcpy(aligned.data(), result.reply.data(), result.reply.size());
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(aligned.data(), aligned.size()));
    check(reader.getRoot<wire::PluginResponse>());
  };

  call([](wire::PluginRequest::Builder r) { r.setDescribe(); },
       [](wire::PluginResponse::Reader r) {
         BOOST_REQUIRE(r.isCapabilities());
         BOOST_TEST(r.getCapabilities().getKinds() == unsigned(MEMOS_KIND_RETRIEVER));
         auto retriever = r.getCapabilities().getRetriever();
         BOOST_TEST(retriever.getModes().size() == 1u);
         BOOST_TEST(std::string(retriever.getModes()[0].cStr()) == "dense");
         BOOST_TEST(retriever.getFilters().size() == 12u);
       });
  call(
      [](wire::PluginRequest::Builder r) {
        auto o = r.initOpen();
        o.setCollection(1);
        o.setDimension(3);
      },
      [](wire::PluginResponse::Reader r) { BOOST_TEST(r.isCollection()); });
  call(
      [](wire::PluginRequest::Builder r) {
        auto x = r.initIndex();
        x.setCollection(1);
        x.setVersion(2);
        auto docs = x.initDocuments(2);
        Doc a, b;
        a.id = 10;
        a.vector = {1, 0, 0};
        b.id = 11;
        b.vector = {0, 1, 0};
        fill_document(docs[0], a);
        fill_document(docs[1], b);
      },
      [](wire::PluginResponse::Reader r) { BOOST_TEST(r.isDone()); });
  call(
      [](wire::PluginRequest::Builder r) {
        auto s = r.initSearch();
        s.setCollection(1);
        s.setK(5);
        auto v = s.initVector(3);
        v.set(0, 0.2f);
        v.set(1, 0.9f);
        v.set(2, 0);
      },
      [](wire::PluginResponse::Reader r) {
        BOOST_REQUIRE(r.isHits());
        BOOST_REQUIRE_EQUAL(r.getHits().size(), 2u);
        BOOST_TEST(r.getHits()[0].getId() == 11u);
        BOOST_TEST(r.getHits()[0].getScore() == 0.9f, boost::test_tools::tolerance(1e-5f));
        BOOST_TEST(r.getHits()[1].getId() == 10u);
      });
  call([](wire::PluginRequest::Builder r) { r.setSave(1); },
       [](wire::PluginResponse::Reader r) {
         BOOST_REQUIRE(r.isCollection());
         BOOST_TEST(r.getCollection().getVersion() == 2u);
       });
  BOOST_TEST(fs::exists(dir.path() + "/1.dense"));
}

// ---- (6) the fresh buffer of an HNSW collection --------------------------------

namespace {

using memos::faiss_retriever::DenseCollection;
using memos::faiss_retriever::DenseHit;
using memos::faiss_retriever::DocumentChange;
using memos::faiss_retriever::IndexSettings;

// A low threshold, small merge batches, and a merger that waits (an hour)
// until wait_for_merge() or a full buffer wakes it: the tests decide when
// documents reach the graph.
IndexSettings held_merger() {
  IndexSettings s;
  s.hnsw_threshold = 200;
  s.merge_after = std::numeric_limits<std::size_t>::max();
  s.merge_delay = std::chrono::hours(1);
  s.merge_batch = 16;
  return s;
}

std::vector<DocumentChange> changes_of(const std::vector<Doc>& docs) {
  std::vector<DocumentChange> out;
  for (const auto& d : docs) out.push_back({d.id, d.vector, attributes_of(d), d.attributes_only});
  return out;
}

std::vector<std::pair<std::uint64_t, float>> pairs(const std::vector<DenseHit>& hits) {
  std::vector<std::pair<std::uint64_t, float>> out;
  for (const auto& h : hits) out.emplace_back(h.id, h.score);
  return out;
}

void apply(DenseCollection& c, Model& model, const std::vector<Doc>& docs, std::uint64_t version) {
  BOOST_REQUIRE_EQUAL(c.index(changes_of(docs), version), "");
  for (const auto& d : docs) model.apply(d);
}

void remove_ids(DenseCollection& c, Model& model, const std::vector<std::uint64_t>& ids,
                std::uint64_t version) {
  c.remove(ids, version);
  for (auto id : ids) model.docs.erase(id);
}

// Exact where k covers every admitted document, and recall@10 above 0.9,
// under random filters; the old vectors of replaced documents as queries
// find no stale copy (a wrong score) and no removed document.
void check_against_model(const DenseCollection& c, const Model& model, std::mt19937_64& rng,
                         std::size_t dim, const std::vector<std::vector<float>>& old_vectors = {}) {
  double recall = 0;
  const int rounds = 60;
  for (int round = 0; round < rounds; ++round) {
    auto q = random_vector(rng, dim);
    auto f = random_filter(rng);
    auto spec = spec_of(f);
    auto expected = model.brute_force(q, spec);
    check_exact(pairs(c.search(q, 100000, spec)), expected, 100000, model, spec, q);
    recall += check_approximate(pairs(c.search(q, 10, spec)), expected, 10, model, spec, q);
  }
  BOOST_TEST(recall / rounds > 0.9, "recall@10 " << recall / rounds);
  auto everything = spec_of(FilterFields{});
  for (const auto& q : old_vectors) {
    check_approximate(pairs(c.search(q, 10, everything)), model.brute_force(q, everything), 10,
                      model, everything, q);
  }
}

// Replaces, re-attributes and removes documents among `ids`; remembers
// the replaced vectors.
void churn(DenseCollection& c, Model& model, std::mt19937_64& rng, std::size_t dim,
           std::vector<std::uint64_t> ids, std::uint64_t version,
           std::vector<std::vector<float>>* old_vectors) {
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<Doc> changes;
  for (std::size_t i = 0; i < 20 && i < ids.size(); ++i) {
    Doc d;
    d.id = ids[i];
    old_vectors->push_back(model.docs.at(d.id).first);
    d.vector = random_vector(rng, dim);
    d.fields = random_fields(rng);
    changes.push_back(d);
  }
  for (std::size_t i = 20; i < 30 && i < ids.size(); ++i) {
    Doc d;
    d.id = ids[i];
    d.attributes_only = true;
    d.fields = random_fields(rng);
    changes.push_back(d);
  }
  apply(c, model, changes, version);
  std::vector<std::uint64_t> gone(ids.begin() + 30, ids.begin() + 40);
  remove_ids(c, model, gone, version);
}

std::vector<std::uint64_t> id_range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (auto id = first; id <= last; ++id) out.push_back(id);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fresh_documents_are_searched_before_and_after_the_merge) {
  std::mt19937_64 rng(21);
  const std::size_t dim = 16;
  DenseCollection c(1, dim, held_merger());
  Model model;
  apply(c, model, random_docs(rng, 1, 1000, dim), 1);
  c.wait_for_rebuild();
  BOOST_REQUIRE((c.stats().kind == IndexKind::hnsw));
  BOOST_REQUIRE_EQUAL(c.stats().fresh, 0u);

  // New documents wait in the buffer, and are found there.
  for (std::uint64_t r = 0; r < 10; ++r)
    apply(c, model, random_docs(rng, 2000 + r * 30, 30, dim), 2);
  BOOST_TEST(c.stats().fresh == 300u);
  BOOST_TEST(c.stats().documents == 1300u);
  BOOST_TEST(contains(c.state().detail, "300 not in the graph yet"), c.state().detail);
  std::vector<std::vector<float>> old_vectors;
  BOOST_TEST_CONTEXT("buffered") {
    check_against_model(c, model, rng, dim);
  }

  // Changes to buffered documents and to graph documents.
  churn(c, model, rng, dim, id_range(2000, 2299), 3, &old_vectors);
  churn(c, model, rng, dim, id_range(1, 1000), 4, &old_vectors);
  BOOST_TEST(c.stats().fresh == 300u - 10u + 20u);  // 10 buffered removed, 20 graph replaced
  BOOST_TEST(c.stats().documents == model.docs.size());
  BOOST_TEST_CONTEXT("changed while buffered") {
    check_against_model(c, model, rng, dim, old_vectors);
  }

  // After the merge: the same answers from the graph.
  c.wait_for_merge();
  BOOST_TEST(c.stats().fresh == 0u);
  BOOST_TEST(c.stats().merge_error.empty());
  BOOST_TEST(c.stats().documents == model.docs.size());
  BOOST_TEST_CONTEXT("merged") {
    check_against_model(c, model, rng, dim, old_vectors);
  }
  churn(c, model, rng, dim, id_range(2000, 2299), 5, &old_vectors);  // now graph documents
  BOOST_TEST_CONTEXT("changed after the merge") {
    check_against_model(c, model, rng, dim, old_vectors);
  }

  // A rebuild (too many tombstones) while documents are buffered: the
  // rebuilt graph takes them.
  apply(c, model, random_docs(rng, 3000, 100, dim), 6);
  BOOST_REQUIRE(c.stats().fresh > 100u);
  std::vector<std::uint64_t> gone;
  for (const auto& [id, doc] : model.docs)
    if (id < 2000 && gone.size() < 500) gone.push_back(id);
  remove_ids(c, model, gone, 7);
  c.wait_for_rebuild();
  auto stats = c.stats();
  BOOST_TEST(stats.rebuilds >= 2u);
  BOOST_TEST(stats.tombstones == 0u);
  BOOST_TEST(stats.fresh == 0u);
  BOOST_TEST(stats.documents == model.docs.size());
  BOOST_TEST(stats.version == 7u);
  BOOST_TEST_CONTEXT("rebuilt") {
    check_against_model(c, model, rng, dim, old_vectors);
  }
}

// The merger moves a few documents at a time while documents are replaced
// and removed between its batches: no search sees a stale copy.
BOOST_AUTO_TEST_CASE(changes_during_a_merge_are_never_stale) {
  std::mt19937_64 rng(22);
  const std::size_t dim = 16;
  IndexSettings settings;
  settings.hnsw_threshold = 200;
  settings.merge_after = 1;
  settings.merge_delay = std::chrono::milliseconds(0);
  settings.merge_batch = 4;
  DenseCollection c(1, dim, settings);
  Model model;
  apply(c, model, random_docs(rng, 1, 600, dim), 1);
  c.wait_for_rebuild();
  BOOST_REQUIRE((c.stats().kind == IndexKind::hnsw));
  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::thread reader([&] {  // keeps the lock busy between the merger's batches
    std::mt19937_64 local(99);
    while (!done) {
      c.search(random_vector(local, dim), 10, spec_of(FilterFields{}));
      ++searches;
    }
  });
  auto everything = spec_of(FilterFields{});
  std::uniform_int_distribution<std::uint64_t> any(1, 1500);
  int seen_buffered = 0;
  for (std::uint64_t round = 0; round < 60; ++round) {
    apply(c, model, random_docs(rng, 1000 + round * 10, 10, dim), 2 + round);
    std::vector<Doc> replaced;
    std::vector<std::vector<float>> old;
    for (int i = 0; i < 5; ++i) {
      auto it = model.docs.lower_bound(any(rng));
      if (it == model.docs.end()) continue;
      Doc d;
      d.id = it->first;
      old.push_back(it->second.first);
      d.vector = random_vector(rng, dim);
      replaced.push_back(d);
    }
    apply(c, model, replaced, 2 + round);
    std::vector<std::uint64_t> gone;
    for (int i = 0; i < 3; ++i) gone.push_back(any(rng));
    remove_ids(c, model, gone, 2 + round);
    if (c.stats().fresh > 0) ++seen_buffered;
    for (const auto& q : old) {
      check_approximate(pairs(c.search(q, 10, everything)), model.brute_force(q, everything), 10,
                        model, everything, q);
    }
    auto q = random_vector(rng, dim);
    check_exact(pairs(c.search(q, 100000, everything)), model.brute_force(q, everything), 100000,
                model, everything, q);
  }
  done = true;
  reader.join();
  BOOST_TEST_MESSAGE(seen_buffered << " of 60 rounds ended with documents still buffered");
  c.wait_for_merge();
  c.wait_for_rebuild();
  c.wait_for_merge();
  BOOST_TEST(c.stats().documents == model.docs.size());
  BOOST_TEST(c.stats().fresh == 0u);
  check_against_model(c, model, rng, dim);
}

// Writers that outrun the merger wait for it; fresh_limit 0 is no buffer.
BOOST_AUTO_TEST_CASE(a_full_buffer_holds_writers_back) {
  std::mt19937_64 rng(23);
  const std::size_t dim = 8;
  auto settings = held_merger();  // only a full buffer wakes it
  settings.fresh_limit = 50;
  DenseCollection c(1, dim, settings);
  Model model;
  apply(c, model, random_docs(rng, 1, 300, dim), 1);
  c.wait_for_rebuild();
  std::size_t most = 0;
  for (std::uint64_t r = 0; r < 40; ++r) {
    apply(c, model, random_docs(rng, 1000 + r * 10, 10, dim), 2 + r);
    most = std::max(most, c.stats().fresh);
  }
  BOOST_TEST(most <= 50u + 10u);
  BOOST_TEST(c.stats().documents == 700u);
  check_against_model(c, model, rng, dim);

  settings.fresh_limit = 0;
  DenseCollection direct(2, dim, settings);
  Model direct_model;
  apply(direct, direct_model, random_docs(rng, 1, 300, dim), 1);
  direct.wait_for_rebuild();
  apply(direct, direct_model, random_docs(rng, 1000, 50, dim), 2);
  BOOST_TEST(direct.stats().fresh == 0u);
  BOOST_TEST(direct.stats().documents == 350u);
  check_against_model(direct, direct_model, rng, dim);
  // The setting is read like the others.
  BOOST_TEST(Retriever(Settings{{"fresh_limit", "7"}}).plugin.settings().index.fresh_limit == 7u);
  BOOST_TEST(Retriever().plugin.settings().index.fresh_limit == 2048u);
  BOOST_CHECK_THROW(Retriever(Settings{{"fresh_limit", "-1"}}), std::invalid_argument);
}

// A stopping memosd's last writes (noWait) go into the buffer past
// fresh_limit, apply whole like any other, and the save after them keeps
// them buffered for the next start's merger.
BOOST_AUTO_TEST_CASE(writes_that_must_not_wait_go_past_a_full_buffer) {
  TempDir dir;
  const std::string folder = dir.path() + "/index";
  std::mt19937_64 rng(31);
  const std::size_t dim = 8;
  auto settings = held_merger();
  settings.fresh_limit = 50;
  Model model;
  {
    DenseCollection c(3, dim, settings);
    apply(c, model, random_docs(rng, 1, 300, dim), 1);
    c.wait_for_rebuild();
    for (std::uint64_t r = 0; r < 12; ++r) {
      auto docs = random_docs(rng, 1000 + r * 10, 10, dim);
      BOOST_REQUIRE_EQUAL(c.index(changes_of(docs), 2 + r, /*no_wait=*/true), "");
      for (const auto& d : docs) model.apply(d);
    }
    BOOST_TEST(c.stats().documents == 420u);
    BOOST_TEST(c.state().version == 13u);
    check_against_model(c, model, rng, dim);
    memos::faiss_retriever::CollectionState state;
    BOOST_REQUIRE_EQUAL(c.save(folder, &state), "");
    BOOST_TEST(state.documents == 420u);
  }
  std::string detail;
  auto reopened = DenseCollection::open(3, dim, settings, folder, &detail);
  BOOST_TEST(reopened->stats().documents == 420u, detail);
  check_against_model(*reopened, model, rng, dim);

  // Through the wire: a request with the flag indexes what one without it
  // does.
  Retriever r;
  BOOST_REQUIRE(r.open(7, dim).status == MEMOS_OK);
  BOOST_REQUIRE(r.open(8, dim).status == MEMOS_OK);
  auto docs = random_docs(rng, 1, 20, dim);
  BOOST_REQUIRE(r.index(7, docs, 4, /*no_wait=*/true).status == MEMOS_OK);
  BOOST_REQUIRE(r.index(8, docs, 4).status == MEMOS_OK);
  auto found = r.search(7, docs[0].vector, 100);
  BOOST_REQUIRE_MESSAGE(found.status == MEMOS_OK, found.error());
  BOOST_TEST(!found.hits().empty());
  BOOST_TEST(found.hits() == r.search(8, docs[0].vector, 100).hits());
}

BOOST_AUTO_TEST_CASE(snapshots_keep_buffered_documents) {
  TempDir dir;
  std::string folder = dir.path() + "/index";
  std::mt19937_64 rng(24);
  const std::size_t dim = 12;
  Model model;
  std::vector<std::vector<float>> queries;
  std::vector<FilterSpec> filters;
  std::vector<std::vector<std::pair<std::uint64_t, float>>> before;
  for (int i = 0; i < 30; ++i) {
    queries.push_back(random_vector(rng, dim));
    filters.push_back(spec_of(random_filter(rng)));
  }
  {
    DenseCollection c(5, dim, held_merger());
    apply(c, model, random_docs(rng, 1, 500, dim), 1);
    c.wait_for_rebuild();
    apply(c, model, random_docs(rng, 1000, 120, dim), 2);
    remove_ids(c, model, {3, 4, 1005}, 3);  // a graph tombstone, a buffered removal
    BOOST_REQUIRE_EQUAL(c.stats().fresh, 119u);
    memos::faiss_retriever::CollectionState state;
    BOOST_REQUIRE_EQUAL(c.save(folder, &state), "");
    BOOST_TEST(state.version == 3u);
    BOOST_TEST(state.documents == 617u);
    for (int i = 0; i < 30; ++i) before.push_back(pairs(c.search(queries[i], 15, filters[i])));
  }
  std::string detail;
  auto c = DenseCollection::open(5, dim, held_merger(), folder, &detail);
  BOOST_TEST(detail == "loaded snapshot");
  auto stats = c->stats();
  BOOST_TEST(stats.version == 3u);
  BOOST_TEST(stats.documents == 617u);
  BOOST_TEST(stats.fresh == 119u);
  BOOST_TEST(stats.tombstones == 2u);
  for (int i = 0; i < 30; ++i) {
    auto after = pairs(c->search(queries[i], 15, filters[i]));
    BOOST_REQUIRE_EQUAL(after.size(), before[i].size());
    for (std::size_t j = 0; j < after.size(); ++j) {
      BOOST_TEST(after[j].first == before[i][j].first);
      BOOST_TEST(after[j].second == before[i][j].second);
    }
  }
  c->wait_for_merge();
  BOOST_TEST(c->stats().fresh == 0u);
  check_against_model(*c, model, rng, dim);
}

// Dropping or destroying a collection while its merger works (and a
// writer waits for room) neither hangs nor touches freed memory.
BOOST_AUTO_TEST_CASE(drop_and_destruction_while_merging) {
  std::mt19937_64 rng(25);
  const std::size_t dim = 32;
  for (int variant = 0; variant < 4; ++variant) {
    IndexSettings settings;
    settings.hnsw_threshold = 100;
    settings.merge_after = 1;
    settings.merge_delay = std::chrono::milliseconds(0);
    settings.merge_batch = 2;
    settings.fresh_limit = 40;
    auto c = std::make_shared<DenseCollection>(1, dim, settings);
    c->index(changes_of(random_docs(rng, 1, 300, dim)), 1);
    c->wait_for_rebuild();
    auto docs = random_docs(rng, 1000, 400, dim);
    std::atomic<bool> started{false};
    std::thread writer([c, &docs, &started] {
      for (std::size_t i = 0; i < docs.size(); i += 20) {
        std::vector<Doc> part(docs.begin() + i, docs.begin() + i + 20);
        c->index(changes_of(part), 2);
        started = true;
      }
    });
    while (!started) std::this_thread::yield();
    if (variant % 2 == 0) c->mark_dropped();  // stops the merger; the writer finishes
    writer.join();
    if (variant % 2 == 0) {
      memos::faiss_retriever::CollectionState state;
      BOOST_TEST(contains(c->save("/nonexistent", &state), "dropped"));
    }
    BOOST_TEST(c->stats().documents == 700u);
    if (variant >= 2) {  // a rebuild in flight too
      std::vector<std::uint64_t> gone = id_range(1, 250);
      c->remove(gone, 3);
    }
    c.reset();  // destroys with the merger (or the rebuild) still at work
  }
}

// A burst far larger than fresh_limit into an HNSW collection, merged by
// several threads in small batches while a reader searches: every search
// sees each document exactly once (in the buffer or in the graph, with its
// own score), none goes missing while it moves, and all reach the graph.
BOOST_AUTO_TEST_CASE(a_burst_is_merged_by_several_threads_while_searches_run) {
  std::mt19937_64 rng(26);
  const std::size_t dim = 24;
  IndexSettings settings;
  settings.hnsw_threshold = 200;
  settings.merge_after = 1;
  settings.merge_delay = std::chrono::milliseconds(0);
  settings.merge_batch = 3;  // 12 per batch: uneven shares among 4 threads
  settings.merge_threads = 4;
  settings.fresh_limit = 300;
  DenseCollection c(1, dim, settings);
  Model model;
  apply(c, model, random_docs(rng, 1, 500, dim), 1);
  c.wait_for_rebuild();
  BOOST_REQUIRE((c.stats().kind == IndexKind::hnsw));

  const std::size_t burst = 4000;
  std::vector<Doc> docs(burst);  // all active: an unfiltered search admits each
  std::map<std::uint64_t, std::vector<float>> vectors;
  for (const auto& [id, doc] : model.docs) vectors[id] = doc.first;
  for (std::size_t i = 0; i < burst; ++i) {
    docs[i].id = 1000 + i;
    docs[i].vector = random_vector(rng, dim);
    vectors[docs[i].id] = docs[i].vector;
  }
  // Documents an unfiltered search admits whose request returned (the
  // first 500 have random attributes).
  std::size_t base_admitted = 0;
  for (const auto& [id, doc] : model.docs) base_admitted += model.admitted(id, spec_of({}));
  std::atomic<std::size_t> acknowledged{base_admitted};
  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, bad{0};
  std::thread reader([&] {
    std::mt19937_64 local(98);
    auto everything = spec_of(FilterFields{});
    while (!done) {
      auto q = random_vector(local, dim);
      std::size_t before = acknowledged.load();
      auto hits = c.search(q, 1000000, everything);
      std::set<std::uint64_t> seen;
      bool ok = hits.size() >= before && hits.size() <= base_admitted + burst;
      for (std::size_t i = 0; ok && i < hits.size(); ++i) {
        auto it = vectors.find(hits[i].id);
        ok = it != vectors.end() && seen.insert(hits[i].id).second &&
             near(hits[i].score, dot(q, it->second)) &&
             (i == 0 || hits[i - 1].score >= hits[i].score);
      }
      if (!ok) ++bad;
      ++searches;
    }
  });
  std::size_t most_fresh = 0;
  for (std::size_t i = 0; i < burst; i += 40) {
    std::vector<Doc> part(docs.begin() + static_cast<std::ptrdiff_t>(i),
                          docs.begin() + static_cast<std::ptrdiff_t>(i + 40));
    apply(c, model, part, 2 + i);
    acknowledged += part.size();
    most_fresh = std::max(most_fresh, c.stats().fresh);
  }
  c.wait_for_merge();
  done = true;
  reader.join();
  BOOST_TEST_MESSAGE(searches << " searches during the burst");
  BOOST_TEST(searches > 0);
  BOOST_TEST(bad == 0);
  BOOST_TEST(most_fresh <= 300u + 40u);  // backpressure held
  auto stats = c.stats();
  BOOST_TEST(stats.fresh == 0u);
  BOOST_TEST(stats.merge_error.empty());
  BOOST_TEST(stats.documents == 500u + burst);
  BOOST_TEST(stats.tombstones == 0u);
  check_against_model(c, model, rng, dim);
  // Each document's own vector finds it among the first ten (inner
  // product: a longer vector may beat it, rarely).
  auto everything = spec_of(FilterFields{});
  int found = 0;
  for (std::size_t i = 0; i < burst; i += 20) {
    auto hits = c.search(docs[i].vector, 10, everything);
    found += std::any_of(hits.begin(), hits.end(),
                         [&](const DenseHit& h) { return h.id == docs[i].id; });
  }
  BOOST_TEST(found >= 190, found << " of 200 found themselves");
  // The setting is read like the others; 0 means one per core.
  BOOST_TEST(Retriever(Settings{{"merge_threads", "3"}}).plugin.settings().index.merge_threads ==
             3);
  BOOST_TEST(Retriever(Settings{{"merge_threads", "0"}}).plugin.settings().index.merge_threads ==
             IndexSettings::default_merge_threads());
  BOOST_TEST(IndexSettings::default_merge_threads() >= 1);
  BOOST_CHECK_THROW(Retriever(Settings{{"merge_threads", "-1"}}), std::invalid_argument);
}

// HnswInserter builds the graph FAISS's own add would: the same vectors at
// the same positions, a graph as good (recall against brute force), whole
// batches of any size and any thread count, and one that write_index and
// read_index carry unchanged.
BOOST_AUTO_TEST_CASE(the_parallel_inserter_builds_a_graph_as_good_as_faiss) {
  using memos::faiss_retriever::HnswInserter;
  std::mt19937_64 rng(27);
  const int dim = 32;
  const std::size_t n = 3000;
  std::vector<float> data;
  for (std::size_t i = 0; i < n; ++i) {
    auto v = random_vector(rng, dim);
    data.insert(data.end(), v.begin(), v.end());
  }
  auto make = [&] {
    auto index = std::make_unique<faiss::IndexHNSWFlat>(dim, 16, faiss::METRIC_INNER_PRODUCT);
    index->hnsw.efConstruction = 40;
    index->hnsw.efSearch = 64;
    return index;
  };
  auto recall = [&](faiss::Index& index) {
    std::mt19937_64 local(5);
    double found = 0;
    const int queries = 100, k = 10;
    for (int q = 0; q < queries; ++q) {
      auto query = random_vector(local, dim);
      std::vector<std::pair<float, faiss::Index::idx_t>> truth;
      for (std::size_t i = 0; i < n; ++i) {
        std::vector<float> v(data.begin() + i * dim, data.begin() + (i + 1) * dim);
        truth.emplace_back(static_cast<float>(dot(query, v)), i);
      }
      std::partial_sort(truth.begin(), truth.begin() + k, truth.end(), std::greater<>());
      std::vector<float> scores(k);
      std::vector<faiss::Index::idx_t> labels(k);
      index.search(1, query.data(), k, scores.data(), labels.data());
      for (int j = 0; j < k; ++j)
        found += std::count(labels.begin(), labels.end(), truth[j].second);
    }
    return found / (queries * k);
  };
  auto reference = make();
  reference->add(static_cast<faiss::Index::idx_t>(n), data.data());
  double reference_recall = recall(*reference);

  for (int threads : {1, 2, 5}) {
    BOOST_TEST_CONTEXT(threads << " threads") {
      auto index = make();
      HnswInserter inserter;
      // Batches of 1 (the empty graph's entry point), 2, 7, 100, then 1000s.
      std::size_t done = 0;
      for (std::size_t size : {1, 2, 7, 100, 890, 2000}) {
        inserter.add(*index, size, data.data() + done * dim, threads);
        done += size;
        BOOST_REQUIRE_EQUAL(static_cast<std::size_t>(index->ntotal), done);
        BOOST_REQUIRE_EQUAL(index->hnsw.levels.size(), done);
      }
      std::vector<float> stored(n * dim);
      index->reconstruct_n(0, static_cast<faiss::Index::idx_t>(n), stored.data());
      BOOST_TEST((stored == data));
      // Every vertex has neighbours at level 0.
      std::size_t lonely = 0;
      for (std::size_t v = 0; v < n; ++v) {
        std::size_t begin, end;
        index->hnsw.neighbor_range(static_cast<faiss::Index::idx_t>(v), 0, &begin, &end);
        lonely += index->hnsw.neighbors[begin] < 0;
      }
      BOOST_TEST(lonely == 0u);
      double r = recall(*index);
      BOOST_TEST_MESSAGE("recall@10: inserter " << r << ", faiss add " << reference_recall);
      BOOST_TEST(r > 0.9);
      BOOST_TEST(r > reference_recall - 0.05);
      // write_index / read_index see an ordinary IndexHNSWFlat.
      faiss::VectorIOWriter writer;
      faiss::write_index(index.get(), &writer);
      faiss::VectorIOReader reader;
      reader.data = writer.data;
      std::unique_ptr<faiss::Index> loaded(faiss::read_index(&reader));
      BOOST_TEST(loaded->ntotal == index->ntotal);
      BOOST_TEST(recall(*loaded) == r);
    }
  }
}

// ---- (8) snapshots moved between nodes (exportSnapshot, importSnapshot) ------

namespace {

// <dir>/index/transfer/<name>, the folder memosd keeps for such files.
std::string transfer_path(const TempDir& dir, const std::string& name) {
  fs::create_directories(dir.path() + "/index/transfer");
  return dir.path() + "/index/transfer/" + name;
}

std::map<std::string, std::string> with_state_dir(std::map<std::string, std::string> settings,
                                                  const TempDir& dir) {
  settings["state_dir"] = dir.path() + "/index";
  return settings;
}

// Collection `c` of node `r` at version 3: 200 documents (every tenth
// tagged "moved"), two of them removed.
Model fill_small(Retriever& r, std::uint64_t c, std::uint32_t dim, std::mt19937_64& rng) {
  Model model;
  BOOST_REQUIRE_EQUAL(r.open(c, dim).status, MEMOS_OK);
  auto docs = random_docs(rng, 1, 200, dim);
  for (std::size_t i = 0; i < docs.size(); i += 10) docs[i].fields.tags.push_back("moved");
  BOOST_REQUIRE_EQUAL(r.index(c, docs, 2).status, MEMOS_OK);
  for (const auto& d : docs) model.apply(d);
  BOOST_REQUIRE_EQUAL(r.remove(c, {1, 2}, 3).status, MEMOS_OK);
  model.docs.erase(1);
  model.docs.erase(2);
  return model;
}

void check_transfer(std::map<std::string, std::string> settings, IndexKind kind) {
  TempDir a_dir, b_dir;
  std::mt19937_64 rng(41);
  const std::uint32_t dim = 24;
  Retriever a(with_state_dir(settings, a_dir));
  BOOST_REQUIRE_EQUAL(a.open(7, dim).status, MEMOS_OK);
  Model model;
  auto docs = random_docs(rng, 1, 800, dim);
  for (std::size_t i = 0; i < docs.size(); i += 20) docs[i].fields.tags.push_back("moved");
  BOOST_REQUIRE_EQUAL(a.index(7, docs, 40).status, MEMOS_OK);
  for (const auto& d : docs) model.apply(d);
  a.plugin.collection(7)->wait_for_rebuild();
  // Removed documents (21 is tagged) leave tombstones, which travel too.
  BOOST_REQUIRE_EQUAL(a.remove(7, {1, 2, 3, 21}, 41).status, MEMOS_OK);
  for (std::uint64_t id : {1, 2, 3, 21}) model.docs.erase(id);
  auto more = random_docs(rng, 2000, 30, dim);
  BOOST_REQUIRE_EQUAL(a.index(7, more, 42).status, MEMOS_OK);
  for (const auto& d : more) model.apply(d);
  // The graph settles first, so that both nodes search the same graph.
  a.plugin.collection(7)->wait_for_merge();
  auto a_stats = a.plugin.collection(7)->stats();
  BOOST_REQUIRE((a_stats.kind == kind));
  BOOST_REQUIRE_EQUAL(a_stats.tombstones, 4u);

  std::string file = transfer_path(a_dir, "7.snapshot");
  auto exported = a.export_snapshot(7, file);
  BOOST_REQUIRE_MESSAGE(exported.status == MEMOS_OK, exported.error());
  BOOST_TEST(exported.get().getCollection().getVersion() == 42u);
  BOOST_TEST(exported.get().getCollection().getDocuments() == 826u);
  // A link to the snapshot itself, not a copy; no .tmp left.
  BOOST_TEST(fs::hard_link_count(file) == 2u);
  BOOST_TEST(read_bytes(file) == read_bytes(a_dir.path() + "/index/7.dense"));
  BOOST_TEST(!fs::exists(file + ".tmp"));

  // memosd moves the bytes to the other node's transfer folder.
  std::string moved = transfer_path(b_dir, "7.snapshot");
  fs::copy_file(file, moved);
  Retriever b(with_state_dir(settings, b_dir));
  auto imported = b.import_snapshot(7, moved);
  BOOST_REQUIRE_MESSAGE(imported.status == MEMOS_OK, imported.error());
  auto state = imported.get().getCollection();
  BOOST_TEST(state.getVersion() == 42u);
  BOOST_TEST(state.getDocuments() == 826u);
  BOOST_TEST(contains(state.getDetail().cStr(), "4 tombstones"), state.getDetail().cStr());
  BOOST_TEST(!fs::exists(moved));  // renamed into place: same file system
  BOOST_TEST(fs::exists(b_dir.path() + "/index/7.dense"));

  auto opened = b.open(7, dim);
  BOOST_REQUIRE_EQUAL(opened.status, MEMOS_OK);
  BOOST_TEST(opened.get().getCollection().getVersion() == 42u);
  BOOST_TEST(opened.get().getCollection().getDocuments() == 826u);
  BOOST_TEST(contains(opened.get().getCollection().getDetail().cStr(), "loaded snapshot"));
  auto b_stats = b.plugin.collection(7)->stats();
  BOOST_TEST((b_stats.kind == kind));
  BOOST_TEST(b_stats.tombstones == 4u);
  BOOST_TEST(b_stats.rebuilds == 0u);  // served as loaded
  for (int round = 0; round < 30; ++round) {
    auto q = random_vector(rng, dim);
    auto f = random_filter(rng);
    auto there = a.search(7, q, 15, f).hits();
    auto here = b.search(7, q, 15, f).hits();
    BOOST_REQUIRE_EQUAL(here.size(), there.size());
    for (std::size_t i = 0; i < here.size(); ++i) {
      BOOST_TEST(here[i].first == there[i].first);
      BOOST_TEST(here[i].second == there[i].second);
    }
  }
  // A filter on the tag: exactly the tagged documents still there.
  FilterFields tagged;
  tagged.all_tags = {"moved"};
  tagged.states = {"active", "archived", "frozen"};
  auto spec = spec_of(tagged);
  auto q = random_vector(rng, dim);
  auto expected = model.brute_force(q, spec);
  BOOST_TEST(!expected.empty());
  auto hits = b.search(7, q, 5000, tagged).hits();
  check_exact(hits, expected, 5000, model, spec, q);
  for (const auto& h : hits) BOOST_TEST(h.first != 21u);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_snapshot_moves_to_another_node_exact) {
  check_transfer({}, IndexKind::exact);
}

BOOST_AUTO_TEST_CASE(a_snapshot_moves_to_another_node_hnsw) {
  check_transfer({{"hnsw_threshold", "200"}}, IndexKind::hnsw);
}

// The file exported is the snapshot of that moment: a later save renames a
// new snapshot into place and leaves the link alone.
BOOST_AUTO_TEST_CASE(an_exported_file_outlives_later_saves) {
  TempDir a_dir, b_dir;
  std::mt19937_64 rng(42);
  const std::uint32_t dim = 8;
  Retriever a(with_state_dir({}, a_dir));
  fill_small(a, 5, dim, rng);
  std::string file = transfer_path(a_dir, "5.snapshot");
  BOOST_REQUIRE_EQUAL(a.export_snapshot(5, file).status, MEMOS_OK);
  std::string bytes = read_bytes(file);
  BOOST_REQUIRE_EQUAL(a.index(5, random_docs(rng, 500, 10, dim), 4).status, MEMOS_OK);
  BOOST_REQUIRE_EQUAL(a.save(5).status, MEMOS_OK);
  BOOST_TEST(fs::hard_link_count(file) == 1u);
  BOOST_TEST(read_bytes(file) == bytes);
  // Exporting again replaces the file whole.
  auto again = a.export_snapshot(5, file);
  BOOST_REQUIRE_EQUAL(again.status, MEMOS_OK);
  BOOST_TEST(again.get().getCollection().getVersion() == 4u);
  BOOST_TEST(read_bytes(file) == read_bytes(a_dir.path() + "/index/5.dense"));

  Retriever b(with_state_dir({}, b_dir));
  std::string old_file = transfer_path(b_dir, "5.snapshot");
  write_bytes(old_file, bytes);
  auto imported = b.import_snapshot(5, old_file);
  BOOST_REQUIRE_MESSAGE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(imported.get().getCollection().getVersion() == 3u);
  BOOST_TEST(imported.get().getCollection().getDocuments() == 198u);
  auto opened = b.open(5, dim);
  BOOST_TEST(opened.get().getCollection().getVersion() == 3u);
  BOOST_TEST(opened.get().getCollection().getDocuments() == 198u);
}

BOOST_AUTO_TEST_CASE(snapshot_requests_need_the_collection_in_the_right_state) {
  TempDir dir;
  std::mt19937_64 rng(43);
  const std::uint32_t dim = 8;
  Retriever r(with_state_dir({}, dir));
  std::string file = transfer_path(dir, "6.snapshot");
  auto not_open = r.export_snapshot(6, file);
  BOOST_TEST(not_open.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(not_open.error(), "collection 6 is not open"), not_open.error());
  BOOST_TEST(!fs::exists(file));

  fill_small(r, 6, dim, rng);
  BOOST_REQUIRE_EQUAL(r.export_snapshot(6, file).status, MEMOS_OK);
  auto open = r.import_snapshot(6, file);
  BOOST_TEST(open.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(open.error(), "collection 6 is open: drop it first"), open.error());
  BOOST_TEST(r.open(6, dim).get().getCollection().getDocuments() == 198u);  // untouched
  auto relative = r.export_snapshot(6, "transfer/6.snapshot");
  BOOST_TEST(relative.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(relative.error(), "not absolute"), relative.error());
  BOOST_TEST(r.import_snapshot(9, "6.snapshot").status == MEMOS_ERR_INVALID);

  // Dropped, then imported: the file (a link to the dropped snapshot) is
  // still whole, and the next open loads it.
  BOOST_REQUIRE_EQUAL(r.drop(6).status, MEMOS_OK);
  BOOST_TEST(r.export_snapshot(6, file).status == MEMOS_ERR_INVALID);
  auto imported = r.import_snapshot(6, file);
  BOOST_REQUIRE_MESSAGE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(r.open(6, dim).get().getCollection().getVersion() == 3u);

  // Without a state_dir there are no snapshot files.
  Retriever memory;
  BOOST_REQUIRE_EQUAL(memory.open(6, dim).status, MEMOS_OK);
  auto unsupported = memory.export_snapshot(6, file);
  BOOST_TEST(unsupported.status == MEMOS_ERR_UNSUPPORTED);
  BOOST_TEST(contains(unsupported.error(), "no state_dir"), unsupported.error());
  BOOST_TEST(memory.import_snapshot(7, file).status == MEMOS_ERR_UNSUPPORTED);
  BOOST_TEST(memory.import_snapshot(6, file).status == MEMOS_ERR_UNSUPPORTED);  // open too
}

// Files an import must refuse, each after a good import: refused with
// invalid, and the good snapshot stays what the next open loads.
BOOST_AUTO_TEST_CASE(hostile_snapshot_files_are_refused_and_change_nothing) {
  TempDir a_dir, b_dir;
  std::mt19937_64 rng(44);
  const std::uint32_t dim = 8;
  Retriever a(with_state_dir({}, a_dir));
  fill_small(a, 7, dim, rng);
  fill_small(a, 8, dim, rng);
  std::string good_file = transfer_path(a_dir, "7.good");
  BOOST_REQUIRE_EQUAL(a.export_snapshot(7, good_file).status, MEMOS_OK);
  std::string good = read_bytes(good_file);
  // What the bad files are made of: a later snapshot (version 4).
  BOOST_REQUIRE_EQUAL(a.index(7, random_docs(rng, 900, 5, dim), 4).status, MEMOS_OK);
  std::string later_file = transfer_path(a_dir, "7.later");
  BOOST_REQUIRE_EQUAL(a.export_snapshot(7, later_file).status, MEMOS_OK);
  std::string later = read_bytes(later_file);
  std::string other_file = transfer_path(a_dir, "8.snapshot");
  BOOST_REQUIRE_EQUAL(a.export_snapshot(8, other_file).status, MEMOS_OK);

  auto b_settings = with_state_dir({}, b_dir);
  Retriever b(b_settings);
  std::string incoming = transfer_path(b_dir, "7.snapshot");
  write_bytes(incoming, good);
  BOOST_REQUIRE_EQUAL(b.import_snapshot(7, incoming).status, MEMOS_OK);
  const std::string installed = b_dir.path() + "/index/7.dense";
  BOOST_REQUIRE(read_bytes(installed) == good);

  auto expect_refused = [&](const std::string& what, const std::string& path,
                            const std::string& reason) {
    BOOST_TEST_CONTEXT(what) {
      auto answer = b.import_snapshot(7, path);
      BOOST_TEST(answer.status == MEMOS_ERR_INVALID);
      BOOST_TEST(contains(answer.error(), reason), answer.error());
      BOOST_TEST(read_bytes(installed) == good);
      Retriever fresh(b_settings);
      auto opened = fresh.open(7, dim);
      BOOST_TEST(opened.get().getCollection().getVersion() == 3u);
      BOOST_TEST(opened.get().getCollection().getDocuments() == 198u);
      BOOST_TEST(contains(opened.get().getCollection().getDetail().cStr(), "loaded snapshot"));
    }
  };
  auto refuse_bytes = [&](const std::string& what, const std::string& bytes,
                          const std::string& reason) {
    write_bytes(incoming, bytes);
    expect_refused(what, incoming, reason);
    BOOST_TEST(read_bytes(incoming) == bytes);  // left where it was
  };
  refuse_bytes("truncated", later.substr(0, later.size() / 2), "truncated");
  std::string flipped = later;
  flipped[later.size() / 2] ^= 0x01;
  refuse_bytes("a flipped byte", flipped, "checksum mismatch");
  refuse_bytes("another collection", read_bytes(other_file), "holds collection 8, not 7");
  refuse_bytes("empty", "", "truncated");
  std::string magic = later;
  magic[1] = 'X';
  refuse_bytes("bad magic", magic, "bad magic");
  refuse_bytes("trailing bytes", later + "x", "trailing bytes");

  // A link to a good file is still refused: memosd hands over files, not links.
  fs::remove(incoming);
  fs::create_symlink(later_file, incoming);
  expect_refused("a symbolic link", incoming, "symbolic link");
  fs::remove(incoming);
  fs::create_directory(incoming);
  expect_refused("a folder", incoming, "not a regular file");
  fs::remove(incoming);
  expect_refused("nothing there", incoming, "No such file");
  BOOST_TEST(!fs::exists(incoming));

  // And the later file itself is taken.
  write_bytes(incoming, later);
  auto imported = b.import_snapshot(7, incoming);
  BOOST_REQUIRE_MESSAGE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(imported.get().getCollection().getVersion() == 4u);
  BOOST_TEST(imported.get().getCollection().getDocuments() == 203u);
  BOOST_TEST(b.open(7, dim).get().getCollection().getVersion() == 4u);
}

// Where hard links and renames cannot go (another file system): copies.
BOOST_AUTO_TEST_CASE(a_snapshot_crosses_file_systems) {
  std::string pattern = "/dev/shm/faiss-transfer-XXXXXX";
  TempDir a_dir, b_dir;
  if (!fs::is_directory("/dev/shm") || ::mkdtemp(pattern.data()) == nullptr) {
    BOOST_TEST_MESSAGE("no /dev/shm: skipped");
    return;
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{pattern};
  struct stat shm {
  }, state{};
  if (::stat(pattern.c_str(), &shm) != 0 || ::stat(a_dir.path().c_str(), &state) != 0 ||
      shm.st_dev == state.st_dev) {
    BOOST_TEST_MESSAGE("/dev/shm is on the state_dir's file system: skipped");
    return;
  }
  std::mt19937_64 rng(45);
  const std::uint32_t dim = 8;
  Retriever a(with_state_dir({}, a_dir));
  fill_small(a, 3, dim, rng);
  std::string file = pattern + "/3.snapshot";
  auto exported = a.export_snapshot(3, file);
  BOOST_REQUIRE_MESSAGE(exported.status == MEMOS_OK, exported.error());
  BOOST_TEST(fs::hard_link_count(file) == 1u);  // a copy
  BOOST_TEST(read_bytes(file) == read_bytes(a_dir.path() + "/index/3.dense"));
  BOOST_TEST(!fs::exists(file + ".tmp"));

  Retriever b(with_state_dir({}, b_dir));
  auto imported = b.import_snapshot(3, file);
  BOOST_REQUIRE_MESSAGE(imported.status == MEMOS_OK, imported.error());
  BOOST_TEST(imported.get().getCollection().getVersion() == 3u);
  BOOST_TEST(fs::exists(file));  // copied, not moved
  BOOST_TEST(read_bytes(b_dir.path() + "/index/3.dense") == read_bytes(file));
  BOOST_TEST(b.open(3, dim).get().getCollection().getDocuments() == 198u);
}

// ---- timing (disabled: run with --run_test=index_timing_into_hnsw) -------------

// How long memosd's writer waits for 20k documents, sent 100 per request, to
// an HNSW collection of 20k (256 dimensions, default graph settings).
BOOST_AUTO_TEST_CASE(index_timing_into_hnsw, *boost::unit_test::disabled()) {
  using memos::faiss_retriever::DenseCollection;
  using memos::faiss_retriever::DocumentChange;
  memos::faiss_retriever::IndexSettings settings;
  settings.hnsw_threshold = 1000;
  const std::uint32_t dim = 256;
  DenseCollection c(1, dim, settings);
  std::mt19937_64 rng(11);
  auto batch = [&](std::uint64_t first, std::size_t n) {
    std::vector<DocumentChange> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      out[i].id = first + i;
      out[i].vector = random_vector(rng, dim);
    }
    return out;
  };
  BOOST_REQUIRE_EQUAL(c.index(batch(1, 20000), 1), "");
  c.wait_for_rebuild();
  BOOST_REQUIRE((c.stats().kind == IndexKind::hnsw));
  std::vector<std::vector<DocumentChange>> requests;
  for (std::uint64_t i = 0; i < 200; ++i) requests.push_back(batch(20001 + i * 100, 100));
  auto start = std::chrono::steady_clock::now();
  std::uint64_t version = 2;
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  double slowest = 0;
  for (auto& r : requests) {
    auto before = std::chrono::steady_clock::now();
    BOOST_REQUIRE_EQUAL(c.index(std::move(r), version++), "");
    slowest = std::max(slowest, ms(std::chrono::steady_clock::now() - before));
  }
  auto indexed = std::chrono::steady_clock::now();
  BOOST_TEST_MESSAGE("slowest request: " << slowest << " ms");
  BOOST_TEST_MESSAGE("20000 documents in 200 requests: " << ms(indexed - start) << " ms ("
                                                         << 20000.0 / ms(indexed - start) * 1000
                                                         << " docs/s)");
  BOOST_TEST(c.stats().documents == 40000u);
  c.wait_for_merge();
  BOOST_TEST_MESSAGE("all in the graph after " << ms(std::chrono::steady_clock::now() - start)
                                               << " ms");
  BOOST_TEST(c.stats().fresh == 0u);
}
