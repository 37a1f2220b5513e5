// A dense retriever that misbehaves on purpose, for the isolation tests: a
// brute-force cosine search over vectors held in memory (nothing is saved;
// filters are ignored), run in memos-plugin-host. A search whose tag filter
// (or query text) or an indexed document whose text holds a trigger word of
// misbehave.h makes it die, hang, hog memory or answer badly.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "memos/plugin_sdk.h"
#include "misbehave.h"

namespace {

using memos::test_plugins::BadReply;
namespace pw = memos::plugin_wire;

struct Collection {
  std::uint64_t version = 0;
  std::map<std::uint64_t, std::vector<float>> vectors;
};

class CrasherRetriever final : public memos::plugin_sdk::Plugin {
 public:
  explicit CrasherRetriever(const memos::plugin_sdk::Config&) {}

  memos_status handle(const memos::plugin_sdk::Request& request,
                      memos::plugin_sdk::Reply reply) override {
    std::lock_guard lock(mutex_);
    switch (request.which()) {
      case pw::PluginRequest::DESCRIBE: {
        auto caps = reply.initCapabilities();
        caps.setKinds(MEMOS_KIND_RETRIEVER);
        caps.initRetriever().initModes(1).set(0, "dense");
        return MEMOS_OK;
      }
      case pw::PluginRequest::OPEN:
        return state(reply, request.getOpen().getCollection());
      case pw::PluginRequest::SAVE:
        return state(reply, request.getSave());
      case pw::PluginRequest::DROP:
        collections_.erase(request.getDrop());
        reply.setDone();
        return MEMOS_OK;
      case pw::PluginRequest::INDEX: {
        auto in = request.getIndex();
        BadReply bad = BadReply::none;
        for (auto d : in.getDocuments()) {
          BadReply b = memos::test_plugins::misbehave(d.getText().cStr());
          if (b != BadReply::none) bad = b;
        }
        if (bad != BadReply::none) return act_out(bad, reply);
        Collection& c = collections_[in.getCollection()];
        for (auto d : in.getDocuments()) {
          if (d.getAttributesOnly() && c.vectors.count(d.getId())) continue;
          auto& v = c.vectors[d.getId()];
          v.clear();
          for (float x : d.getVector()) v.push_back(x);
        }
        c.version = std::max(c.version, in.getVersion());
        reply.setDone();
        return MEMOS_OK;
      }
      case pw::PluginRequest::REMOVE: {
        auto in = request.getRemove();
        Collection& c = collections_[in.getCollection()];
        for (auto id : in.getIds()) c.vectors.erase(id);
        c.version = std::max(c.version, in.getVersion());
        reply.setDone();
        return MEMOS_OK;
      }
      case pw::PluginRequest::SEARCH: {
        // memosd sends a dense search its vector, not its text: the
        // triggers come in the search's tag filter.
        auto in = request.getSearch();
        std::string words = in.getQuery().cStr();
        for (auto tag : in.getFilter().getAllTags()) words += std::string(" ") + tag.cStr();
        BadReply bad = memos::test_plugins::misbehave(words);
        if (bad != BadReply::none) return act_out(bad, reply);
        return search(in, reply);
      }
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "a dense retriever only");
    }
  }

 private:
  memos_status state(memos::plugin_sdk::Reply reply, std::uint64_t collection) {
    const Collection& c = collections_[collection];
    auto s = reply.initCollection();
    s.setCollection(collection);
    s.setVersion(c.version);
    s.setDocuments(c.vectors.size());
    s.setDetail("in memory, brute force");
    return MEMOS_OK;
  }

  memos_status search(pw::SearchRequest::Reader in, memos::plugin_sdk::Reply reply) {
    auto query = in.getVector();
    std::vector<std::pair<float, std::uint64_t>> scored;
    for (const auto& [id, v] : collections_[in.getCollection()].vectors) {
      if (v.size() != query.size()) continue;
      float dot = 0, nq = 0, nv = 0;
      for (unsigned i = 0; i < v.size(); ++i) {
        dot += v[i] * query[i];
        nq += query[i] * query[i];
        nv += v[i] * v[i];
      }
      scored.emplace_back(nq > 0 && nv > 0 ? dot / std::sqrt(nq * nv) : 0.0f, id);
    }
    std::size_t k = std::min<std::size_t>(in.getK(), scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    auto hits = reply.initHits(static_cast<unsigned>(k));
    for (unsigned i = 0; i < k; ++i) {
      hits[i].setId(scored[i].second);
      hits[i].setScore(scored[i].first);
    }
    return MEMOS_OK;
  }

  static memos_status act_out(BadReply bad, memos::plugin_sdk::Reply reply) {
    switch (bad) {
      case BadReply::wrong_kind:
        reply.initEmbeddings().setDimension(1);
        break;
      case BadReply::silent:
      case BadReply::none:
        break;
    }
    return MEMOS_OK;
  }

  std::mutex mutex_;
  std::map<std::uint64_t, Collection> collections_;
};

}  // namespace

MEMOS_MISBEHAVING_PLUGIN(CrasherRetriever, "crasher-retriever", "1", MEMOS_KIND_RETRIEVER)
