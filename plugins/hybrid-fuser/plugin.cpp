// The hybrid fuser as a memosd plugin (memos-plugin(7)): memosd asks the
// dense and lexical retrievers, then hands their ranked lists here.
#include <cmath>

#include "memos/plugin_sdk.h"
#include "plugins/hybrid-fuser/fusion.h"

namespace {

using memos::plugin_sdk::Config;
using memos::plugin_sdk::Reply;
using memos::plugin_sdk::Request;
namespace pw = memos::plugin_wire;

constexpr std::uint32_t kMaxK = 100000;
constexpr std::size_t kMaxDimension = 65536;

class HybridFuserPlugin final : public memos::plugin_sdk::Plugin {
 public:
  explicit HybridFuserPlugin(const Config& config)
      : default_rrf_k_(static_cast<float>(config.get_int("rrf_k", 60, 1, 100000))) {}

  memos_status handle(const Request& request, Reply reply) override {
    switch (request.which()) {
      case pw::PluginRequest::DESCRIBE: {
        auto caps = reply.initCapabilities();
        caps.setKinds(MEMOS_KIND_RETRIEVER);
        auto r = caps.initRetriever();
        auto modes = r.initModes(1);
        modes.set(0, "hybrid");
        return MEMOS_OK;
      }
      case pw::PluginRequest::FUSE:
        return fuse(request.getFuse(), reply);
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "hybrid-fuser only describes and fuses");
    }
  }

 private:
  memos_status fuse(pw::FuseRequest::Reader in, Reply reply) {
    memos::fusion::Options o;
    o.k = in.getK();
    if (o.k == 0 || o.k > kMaxK) return fail(reply, MEMOS_ERR_INVALID, "k must be 1..100000");
    o.rrf_k = in.getRrfK() > 0 ? in.getRrfK() : default_rrf_k_;
    o.recency_weight = in.getRecencyWeight();
    if (in.getRecencyHalfLifeMs() > 0) o.recency_half_life_ms = in.getRecencyHalfLifeMs();
    o.importance_weight = in.getImportanceWeight();
    o.retention_weight = in.getRetentionWeight();
    o.mmr_lambda = in.getMmrLambda();
    o.now_ms = in.getNowMs();
    for (float f :
         {o.rrf_k, o.recency_weight, o.importance_weight, o.retention_weight, o.mmr_lambda}) {
      if (!std::isfinite(f)) return fail(reply, MEMOS_ERR_INVALID, "weights must be finite");
    }
    std::vector<memos::fusion::RankedList> lists;
    for (auto l : in.getLists()) {
      memos::fusion::RankedList list;
      list.weight = l.getWeight();
      if (!std::isfinite(list.weight) || list.weight < 0)
        return fail(reply, MEMOS_ERR_INVALID, "list weights must be finite and >= 0");
      for (auto h : l.getHits()) list.hits.push_back({h.getId(), h.getScore()});
      lists.push_back(std::move(list));
    }
    std::vector<std::pair<std::uint64_t, memos::fusion::Candidate>> candidates;
    std::size_t dimension = 0;
    for (auto c : in.getCandidates()) {
      memos::fusion::Candidate candidate;
      candidate.recorded_at_ms = c.getRecordedAtMs();
      candidate.importance = c.getImportance();
      candidate.retention = c.getRetention();
      if (!std::isfinite(candidate.retention))
        return fail(reply, MEMOS_ERR_INVALID, "retention must be finite");
      auto v = c.getVector();
      if (v.size() > kMaxDimension) return fail(reply, MEMOS_ERR_INVALID, "vector too long");
      if (v.size() != 0) {
        if (dimension == 0) dimension = v.size();
        if (v.size() != dimension)
          return fail(reply, MEMOS_ERR_INVALID, "candidate vectors differ in length");
      }
      candidate.vector.reserve(v.size());
      for (float x : v) candidate.vector.push_back(x);
      candidates.emplace_back(c.getId(), std::move(candidate));
    }
    auto fused = memos::fusion::fuse(lists, candidates, o);
    auto hits = reply.initHits(static_cast<unsigned>(fused.size()));
    for (unsigned i = 0; i < fused.size(); ++i) {
      hits[i].setId(fused[i].id);
      hits[i].setScore(fused[i].score);
    }
    return MEMOS_OK;
  }

  float default_rrf_k_;
};

}  // namespace

MEMOS_PLUGIN(HybridFuserPlugin, "hybrid-fuser", "1.0.0", MEMOS_KIND_RETRIEVER)
