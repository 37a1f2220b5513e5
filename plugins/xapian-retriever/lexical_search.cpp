// lexical_search.cpp — LexicalCollection's searches: the query parsed as
// natural language, BM25 over the disk database and the in-memory layers
// together (shared statistics), the filter applied inside the match.
#include <algorithm>
#include <utility>

#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/lexical_internal.h"

namespace memos::lexical {

using namespace detail;

// Applies the filter inside the match: Xapian asks it about each candidate
// before counting it, so k admitted documents come back whatever the filter
// excludes. A document not in its layer's map (deleted on disk but still in
// the committed revision a search reads during a merge) is never admitted.
class LexicalCollection::AdmitDecider final : public Xapian::MatchDecider {
 public:
  AdmitDecider(const Layer& disk, const Layer& frozen, const Layer& recent, std::string frozen_tag,
               const retrieval::FilterSpec& filter)
      : disk_(disk),
        frozen_(frozen),
        recent_(recent),
        frozen_tag_(std::move(frozen_tag)),
        filter_(filter) {}
  bool operator()(const Xapian::Document& doc) const override {
    std::string tag = doc.get_value(kLayerSlot);
    const Layer& layer = tag.empty() ? disk_ : tag == frozen_tag_ ? frozen_ : recent_;
    auto it = layer.entries.find(doc.get_docid());
    return it != layer.entries.end() && retrieval::admits(it->second.attributes, filter_);
  }

 private:
  const Layer& disk_;
  const Layer& frozen_;
  const Layer& recent_;
  const std::string frozen_tag_;
  const retrieval::FilterSpec& filter_;
};

// Runs without the collection's lock, so it has its own stemmer (a stemmer
// keeps state while it stems).
Xapian::Query LexicalCollection::parse(std::string_view query) const {
  std::string text(query);
  Xapian::Stem stemmer(language_);
  Xapian::QueryParser parser;
  parser.set_stemmer(stemmer);
  parser.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
  if (stopper_) parser.set_stopper(stopper_.get());
  parser.set_default_op(Xapian::Query::OP_OR);
  try {
    return parser.parse_query(text, kParserFlags);
  } catch (const Xapian::QueryParserError&) {
    // Odd syntax: fall back to the OR of the words' stems, made the same way
    // as at indexing.
  }
  Xapian::Document doc;
  Xapian::TermGenerator generator;
  configure(generator, stemmer);
  generator.set_document(doc);
  generator.index_text_without_positions(text);
  std::vector<std::string> stems, words;  // stems: "Z" terms; none without a stemmer
  for (auto it = doc.termlist_begin(); it != doc.termlist_end(); ++it) {
    std::string term = *it;
    (term.starts_with('Z') ? stems : words).push_back(std::move(term));
  }
  const auto& terms = stems.empty() ? words : stems;
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

std::vector<LexicalHit> LexicalCollection::search(std::string_view query, std::uint32_t k,
                                                  const retrieval::FilterSpec& filter) const {
  if (query.size() > kMaxQueryBytes) {
    throw Error(Error::Kind::invalid, "the query is " + std::to_string(query.size()) +
                                          " bytes; at most " + std::to_string(kMaxQueryBytes));
  }
  std::vector<LexicalHit> hits;
  if (k == 0) {
    std::lock_guard lock(mutex_);
    check_open();
    return hits;
  }
  try {
    Xapian::Query q = parse(query);  // without the lock
    std::lock_guard lock(mutex_);
    check_open();
    if (locations_.empty() || q.empty()) return hits;
    // One database over the layers, so BM25's statistics (document count,
    // average length, term frequencies) are those of all of them. Its docids
    // interleave theirs: combined = (docid - 1) * 3 + layer + 1.
    Xapian::Database all(merging_ ? reader_ : Xapian::Database(disk_.db));
    all.add_database(frozen_.db);
    all.add_database(recent_.db);
    const Layer* layers[] = {&disk_, &frozen_, &recent_};
    constexpr Xapian::docid kLayers = std::size(layers);
    Xapian::Enquire enquire(all);
    enquire.set_query(q);
    // Xapian's defaults for k2 (0), k3 (1) and min_normlen (0.5).
    enquire.set_weighting_scheme(Xapian::BM25Weight(bm25_.k1, 0, 1, bm25_.b, 0.5));
    AdmitDecider decider(disk_, frozen_, recent_, layer_tag(generation_ - 1), filter);
    auto want = static_cast<Xapian::doccount>(std::min<std::size_t>(k, locations_.size()));
    Xapian::MSet mset = enquire.get_mset(0, want, nullptr, &decider);
    hits.reserve(mset.size());
    for (auto it = mset.begin(); it != mset.end(); ++it) {
      const Layer& layer = *layers[(*it - 1) % kLayers];
      auto entry = layer.entries.find((*it - 1) / kLayers + 1);
      if (entry == layer.entries.end()) continue;  // cannot happen: the decider admitted it
      hits.push_back(LexicalHit{entry->second.id, it.get_weight()});
    }
  } catch (const Xapian::Error& e) {
    throw to_error(e, "searching");
  }
  return hits;
}

}  // namespace memos::lexical
