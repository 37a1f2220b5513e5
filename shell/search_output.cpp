#include "shell/search_output.h"

#include <cstdio>
#include <string>

#include "shell/item_output.h"
#include "shell/text_format.h"

namespace memos::shell {

Json hits_json(const std::vector<memos::Hit>& hits, bool explain) {
  Json j = Json::array();
  for (const auto& h : hits) {
    Json hit;
    hit["score"] = json_number(h.score);
    hit["cube"] = h.cube;
    if (explain) {
      hit["ranks"] = Json::array();
      for (const auto& rank : h.ranks) {
        Json one;
        one["retriever"] = memos::to_string(rank.retriever);
        one["rank"] = rank.rank;
        one["score"] = json_number(rank.score);
        hit["ranks"].push_back(std::move(one));
      }
    }
    hit["item"] = item_json(h.item);
    j.push_back(std::move(hit));
  }
  return j;
}

void print_hits(const std::vector<memos::Hit>& hits, bool show_cube, bool explain) {
  for (const auto& h : hits) {
    std::string tags = h.item.tags.empty() ? "" : "  [" + join(h.item.tags, ",") + "]";
    std::string cube = show_cube ? h.cube + "  " : "";
    std::printf("%.3f  %s%s  %s%s\n", static_cast<double>(h.score), cube.c_str(),
                memos::format_id(h.item.id).c_str(), one_line(h.item.text).c_str(), tags.c_str());
    if (!explain) continue;
    std::string why;
    for (const auto& rank : h.ranks) {
      if (!why.empty()) why += ", ";
      why += std::string(memos::to_string(rank.retriever)) + " " +
             (rank.rank ? "#" + std::to_string(rank.rank) + " (" +
                              std::to_string(rank.score).substr(0, 6) + ")"
                        : "-");
    }
    std::printf("       %s\n", why.c_str());
  }
}

Json routed_json(const memos::RoutedSearch& routed, bool explain) {
  Json j;
  j["hits"] = hits_json(routed.hits, explain);
  j["context"] = Json::array();
  for (const auto& p : routed.context) {
    Json piece;
    piece["cube"] = p.cube;
    piece["id"] = memos::format_id(p.item_id);
    piece["text"] = p.text;
    piece["tokens"] = p.tokens;
    piece["neighbour_of"] = p.neighbour_of ? Json(memos::format_id(p.neighbour_of)) : Json();
    j["context"].push_back(std::move(piece));
  }
  j["context_tokens"] = routed.context_tokens;
  j["modules"] = modules_json(routed.modules);
  if (routed.router) j["router"] = router_json(*routed.router);
  return j;
}

Json router_json(const memos::RouterChoice& r) {
  Json j;
  j["source"] = r.source;
  j["reason"] = r.reason;
  j["route"] = memos::to_string(r.route);
  j["ms"] = r.ms;
  j["features"] = Json::object();
  for (const auto& [name, value] : r.features) j["features"][name] = value;
  if (!r.vector.empty()) j["vector"] = r.vector;
  j["scores"] = Json::array();
  for (const auto& sc : r.scores) {
    Json one;
    one["route"] = sc.route;
    one["quality"] = sc.quality;
    one["cost"] = sc.cost;
    one["score"] = sc.score;
    j["scores"].push_back(std::move(one));
  }
  return j;
}

std::string router_line(const memos::RouterChoice& r) {
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.2f", r.ms);
  return r.source + " chose " + memos::to_string(r.route) + " in " + ms + " ms" +
         (r.reason.empty() ? "" : " (" + r.reason + ")");
}

void print_router(const memos::RouterChoice& r, bool explain) {
  std::printf("router: %s\n", router_line(r).c_str());
  if (!explain) return;
  for (const auto& sc : r.scores) {
    std::printf("  %-60s  recall %.3f  cost %.3f  score %+.3f\n", sc.route.c_str(),
                static_cast<double>(sc.quality), static_cast<double>(sc.cost),
                static_cast<double>(sc.score));
  }
  std::string features;
  for (const auto& [name, value] : r.features) {
    char v[32];
    std::snprintf(v, sizeof v, "%.3g", static_cast<double>(value));
    features += (features.empty() ? "" : " ") + name + "=" + v;
  }
  if (!features.empty()) std::printf("  features: %s\n", features.c_str());
}

Json modules_json(const std::vector<memos::ModuleRun>& modules) {
  Json j = Json::array();
  for (const auto& m : modules) {
    Json run;
    run["module"] = memos::to_string(m.module);
    run["tier"] = memos::to_string(m.tier);
    run["ms"] = m.ms;
    run["detail"] = m.detail;
    j.push_back(std::move(run));
  }
  return j;
}

std::string modules_line(const std::vector<memos::ModuleRun>& modules) {
  std::string line;
  for (const auto& m : modules) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.2f", m.ms);
    line += std::string(line.empty() ? "" : ", ") + memos::to_string(m.module) + "=" +
            memos::to_string(m.tier) + " " + ms + " ms (" + m.detail + ")";
  }
  return line;
}

void print_routed(const memos::RoutedSearch& routed, bool show_cube, bool explain) {
  if (routed.hits.empty()) {
    std::printf("no matches\n");
  } else {
    std::printf(
        "score: orders these results (BM25 at retrieve=low with no time window, else rank "
        "fusion)\n");
    print_hits(routed.hits, show_cube, explain);
  }
  std::printf("context: %u tokens in %zu pieces\n", routed.context_tokens, routed.context.size());
  for (const auto& p : routed.context) {
    std::string from =
        p.neighbour_of ? "  (next to " + memos::format_id(p.neighbour_of) + ")" : std::string();
    std::printf("%5u  %s  %s%s\n", p.tokens, memos::format_id(p.item_id).c_str(),
                one_line(p.text).c_str(), from.c_str());
  }
  if (routed.router) print_router(*routed.router, explain);
  if (!explain) return;
  for (const auto& m : routed.modules) {
    std::printf("%-8s  %-4s  %8.3f ms  %s\n", memos::to_string(m.module), memos::to_string(m.tier),
                m.ms, m.detail.c_str());
  }
}

}  // namespace memos::shell
