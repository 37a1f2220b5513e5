// locomo_data.h — the LoCoMo data set as the benchmarks read it
// (shared/data/locomo/README.md): each conversation's turns as memories
// ("<speaker>: <text>", the image caption, the session's date as valid time)
// and its questions of categories 1–4 with their corrected evidence, and
// adding a conversation's turns to a cube.
// Shared by bench-locomo-recall and bench-sched-replay, so both read the
// same memories and score against the same gold labels. Header-only: the
// benchmarks are one source file each (scripts/bench lists bench/*.cpp as
// benchmark names).
#pragma once

#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <fstream>
#include <future>
#include <initializer_list>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "memos/client.h"

namespace memos::bench::locomo {

using Json = nlohmann::json;

// shared/ lies beside the repository; scripts/bench runs from its root.
inline constexpr std::string_view kDefaultDataDir = "../shared/data/locomo";
// The options every LoCoMo benchmark reads (its own Options derive from
// this): the memosd under test, the split, where the data lies, and a
// memosd.conf for the daemons it starts (tuning on dev).
struct RunOptions {
  std::string memosd;
  std::string split = "dev";
  std::string data_dir{kDefaultDataDir};
  std::string config;
};

// Reads one of RunOptions' flags into `out`: --memosd, --split (one of
// `splits`, else UsageError saying `refused`), --data, --config. Returns
// false for any other flag. Checks the whole RunOptions: check_run_options.
inline bool read_run_option(std::string_view flag, std::string_view value,
                            std::initializer_list<std::string_view> splits,
                            std::string_view refused, RunOptions* out) {
  if (flag == "--memosd") {
    out->memosd = value;
  } else if (flag == "--split") {
    if (std::find(splits.begin(), splits.end(), value) == splits.end())
      throw UsageError(std::string(refused));
    out->split = value;
  } else if (flag == "--data") {
    out->data_dir = value;
  } else if (flag == "--config") {
    out->config = value;
  } else {
    return false;
  }
  return true;
}

// Throws UsageError when no memosd is named.
inline void check_run_options(const RunOptions& options) {
  if (options.memosd.empty()) throw UsageError("--memosd is required");
}

// The README's splits: dev is conversations 0–2, held-out 3–9.
inline constexpr std::size_t kDevConversations = 3;
inline constexpr int kFirstCategory = 1, kLastCategory = 4;  // 5 (adversarial) has no answer

struct Turn {
  std::string dia_id;  // "D<session>:<turn>"
  std::string text;
  std::int64_t valid_from_ms = 0;
};

struct Question {
  std::string text;
  int category = 0;
  std::vector<std::string> evidence;  // dialogue ids, corrected and checked
};

struct Conversation {
  std::string sample_id;
  std::vector<Turn> turns;
  std::vector<Question> questions;  // categories 1–4 with evidence only
};

inline Json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return Json::parse(in);
}

// "1:56 pm on 8 May, 2023" to Unix milliseconds. The data gives no time
// zone; UTC keeps the result independent of the machine's.
inline std::int64_t parse_session_date(const std::string& text) {
  static const std::regex pattern(R"((\d{1,2}):(\d{2}) (am|pm) on (\d{1,2}) (\w+), (\d{4}))");
  static const std::map<std::string, int> months = {
      {"January", 0},   {"February", 1}, {"March", 2},     {"April", 3},
      {"May", 4},       {"June", 5},     {"July", 6},      {"August", 7},
      {"September", 8}, {"October", 9},  {"November", 10}, {"December", 11}};
  std::smatch m;
  auto month = months.end();
  if (std::regex_match(text, m, pattern)) month = months.find(m[5].str());
  if (month == months.end()) throw std::runtime_error("unexpected session date '" + text + "'");
  struct tm t {};
  t.tm_hour = std::stoi(m[1].str()) % 12 + (m[3].str() == "pm" ? 12 : 0);  // 12 am is 0h
  t.tm_min = std::stoi(m[2].str());
  t.tm_mday = std::stoi(m[4].str());
  t.tm_mon = month->second;
  t.tm_year = std::stoi(m[6].str()) - 1900;
  return static_cast<std::int64_t>(timegm(&t)) * 1000;
}

// The protocol's memory text: "<speaker>: <text>", plus the BLIP caption of
// a shared image, which often carries the answer (LoCoMo asks about photos).
inline std::string turn_text(const Json& turn) {
  std::string text =
      turn.at("speaker").get<std::string>() + ": " + turn.at("text").get<std::string>();
  if (turn.contains("blip_caption")) {
    text += " [image: " + turn["blip_caption"].get<std::string>() + "]";
  }
  return text;
}

// Sessions are keys "session_<n>" with their date in "session_<n>_date_time".
inline std::vector<Turn> load_turns(const Json& conversation) {
  std::vector<Turn> turns;
  for (int n = 1;; ++n) {
    std::string key = "session_" + std::to_string(n);
    if (!conversation.contains(key)) break;
    std::int64_t date = parse_session_date(conversation.at(key + "_date_time").get<std::string>());
    for (const Json& turn : conversation[key]) {
      turns.push_back({turn.at("dia_id").get<std::string>(), turn_text(turn), date});
    }
  }
  return turns;
}

// question_id "locomo_<conversation>_qa<question>" (both 0-based) to the
// corrected evidence. Only WRONG_CITATION entries replace the evidence; the
// other error types fault the answer, not the citation.
using Corrections = std::map<std::pair<std::size_t, std::size_t>, std::vector<std::string>>;

inline Corrections load_corrections(const std::string& path) {
  static const std::regex id_pattern(R"(locomo_(\d+)_qa(\d+))");
  Corrections out;
  for (const Json& entry : read_json(path)) {
    if (entry.at("error_type") != "WRONG_CITATION" || !entry.contains("correct_evidence")) continue;
    std::string id = entry.at("question_id").get<std::string>();
    std::smatch m;
    if (!std::regex_match(id, m, id_pattern)) throw std::runtime_error("bad question_id " + id);
    out[{std::stoul(m[1].str()), std::stoul(m[2].str())}] =
        entry["correct_evidence"].get<std::vector<std::string>>();
  }
  return out;
}

// A few gold labels are malformed ("D8:6; D9:17", "D9:1 D4:4", "D", "D:11:26").
// Each string is split on separators, and only ids of turns that exist are
// kept (each once): no retriever could return the others, so counting them
// would only lower every system's recall by the same amount.
inline std::vector<std::string> clean_evidence(const std::vector<std::string>& raw,
                                               const std::set<std::string>& turn_ids,
                                               std::size_t& dropped) {
  static const std::regex token(R"([^\s;,]+)");
  std::vector<std::string> out;
  for (const std::string& s : raw) {
    for (auto it = std::sregex_iterator(s.begin(), s.end(), token); it != std::sregex_iterator();
         ++it) {
      std::string id = it->str();
      if (!turn_ids.count(id)) {
        ++dropped;
      } else if (std::find(out.begin(), out.end(), id) == out.end()) {
        out.push_back(id);
      }
    }
  }
  return out;
}

inline std::vector<Question> load_questions(const Json& qa, std::size_t conv_index,
                                            const std::vector<Turn>& turns,
                                            const Corrections& corrections) {
  std::set<std::string> turn_ids;
  for (const Turn& t : turns) turn_ids.insert(t.dia_id);
  std::vector<Question> out;
  std::size_t dropped = 0;
  for (std::size_t q = 0; q < qa.size(); ++q) {
    int category = qa[q].at("category").get<int>();
    if (category < kFirstCategory || category > kLastCategory) continue;
    auto corrected = corrections.find({conv_index, q});
    std::vector<std::string> evidence = clean_evidence(
        corrected != corrections.end() ? corrected->second
                                       : qa[q].at("evidence").get<std::vector<std::string>>(),
        turn_ids, dropped);
    if (evidence.empty()) continue;
    out.push_back({qa[q].at("question").get<std::string>(), category, std::move(evidence)});
  }
  if (dropped > 0) {
    std::cerr << "note: conversation " << conv_index << ": dropped " << dropped
              << " evidence ids that name no turn\n";
  }
  return out;
}

// Conversations [first, last) of the data set (fewer if it has fewer).
// Only those are read past the JSON parse, so a benchmark confined to the
// dev split never looks at a held-out conversation.
inline std::vector<Conversation> load_conversations(const std::string& data_dir, std::size_t first,
                                                    std::size_t last) {
  Json data = read_json(data_dir + "/locomo10.json");
  Corrections corrections = load_corrections(data_dir + "/evidence-corrections.json");
  std::vector<Conversation> out;
  for (std::size_t c = first; c < last && c < data.size(); ++c) {
    Conversation conv;
    conv.sample_id = data[c].at("sample_id").get<std::string>();
    conv.turns = load_turns(data[c].at("conversation"));
    conv.questions = load_questions(data[c].at("qa"), c, conv.turns, corrections);
    out.push_back(std::move(conv));
  }
  return out;
}

// The README's splits by name: "dev", "heldout" or "all".
inline std::vector<Conversation> load_split(const std::string& data_dir, const std::string& split) {
  if (split == "dev") return load_conversations(data_dir, 0, kDevConversations);
  if (split == "heldout") return load_conversations(data_dir, kDevConversations, SIZE_MAX);
  if (split == "all") return load_conversations(data_dir, 0, SIZE_MAX);
  throw std::invalid_argument("unknown LoCoMo split '" + split + "'");
}

// Adds every turn to `cube` (its valid time included) with up to 256
// requests in flight, and returns the dialogue id of each item memosd wrote,
// by item id: how a benchmark maps what memosd returns back to the gold
// labels.
inline std::unordered_map<std::uint64_t, std::string> add_turns(memos::Client& client,
                                                                const std::string& cube,
                                                                const std::vector<Turn>& turns) {
  constexpr std::size_t kPipeline = 256;
  std::unordered_map<std::uint64_t, std::string> dia_ids;
  std::deque<std::pair<std::future<memos::Result<memos::Item>>, const Turn*>> window;
  auto settle_oldest = [&] {
    memos::Result<memos::Item> added = window.front().first.get();
    check(added, "add");
    dia_ids[added->id] = window.front().second->dia_id;
    window.pop_front();
  };
  for (const Turn& turn : turns) {
    if (window.size() >= kPipeline) settle_oldest();
    memos::NewItem item;
    item.text = turn.text;
    item.valid_from_ms = turn.valid_from_ms;
    item.session_id = turn.dia_id.substr(0, turn.dia_id.find(':'));  // "D3": routing's expand
    item.allow_duplicate = true;  // a conversation repeats turns ("ok"): store each
    window.emplace_back(client.add_async(cube, std::move(item)), &turn);
  }
  while (!window.empty()) settle_oldest();
  return dia_ids;
}

}  // namespace memos::bench::locomo
