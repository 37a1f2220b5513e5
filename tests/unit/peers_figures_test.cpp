// bench-peers' two formats: the figure lines the peers' script prints and
// bench-peers reads back (bench/peers_figures.h), and the data folder it
// exports for them (bench/peers_export.h). A line that is not a figure must
// be refused with a message naming what is wrong, never read as zeros.
#define BOOST_TEST_MODULE peers_figures
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/peers_export.h"
#include "bench/peers_figures.h"
#include "tests/support/memosd_process.h"

namespace peers = memos::bench::peers;
using memos::bench::peers::Figure;
using nlohmann::json;

namespace {

Figure search_figure() {
  Figure f;
  f.system = "lancedb";
  f.phase = "search";
  f.mode = "dense";
  f.items = 100000;
  f.queries = 1000;
  f.p50_us = 1234.56;
  f.p99_us = 2345.04;
  f.durability = "none: in \"memory\"";  // quoted: escaped on the way out
  return f;
}

// The message parse_figure refuses `line` with ("" if it is read).
std::string refusal(const std::string& line) {
  try {
    peers::parse_figure(line);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_figure_reads_back_as_printed_rounded) {
  Figure back = peers::parse_figure(peers::to_json(search_figure()).dump());
  BOOST_TEST(back.system == "lancedb");
  BOOST_TEST(back.phase == "search");
  BOOST_TEST(back.mode.value() == "dense");
  BOOST_TEST(back.items.value() == 100000.0);
  BOOST_TEST(back.p50_us.value() == 1234.6);  // one decimal
  BOOST_TEST(back.p99_us.value() == 2345.0);
  BOOST_TEST(!back.writers.has_value());  // null: does not apply
  BOOST_TEST(!back.recall_at_10.has_value());
  BOOST_TEST(back.durability == "none: in \"memory\"");
  // Every key is there, null or not, so lines tabulate without the phase.
  json line = peers::to_json(search_figure());
  for (const char* key :
       {"bench", "system", "phase", "mode", "items", "writers", "queries", "adds_per_s", "p50_us",
        "p99_us", "recall_at_10", "rss_mb", "disk_mb", "durability"})
    BOOST_TEST(line.contains(key), key);
  BOOST_TEST(line["items"].is_number_integer());  // a count prints as one
}

BOOST_AUTO_TEST_CASE(lines_that_are_no_figure_are_refused_by_name) {
  std::string good = peers::to_json(search_figure()).dump();
  BOOST_TEST(refusal(good).empty());
  BOOST_TEST(refusal("").find("not a JSON object") != std::string::npos);
  BOOST_TEST(refusal("{\"bench\":").find("not a JSON object") != std::string::npos);
  BOOST_TEST(refusal("[1,2]").find("not a JSON object") != std::string::npos);
  BOOST_TEST(refusal("peers.mjs: loaded 10 items").find("not a JSON object") != std::string::npos);

  auto with = [&](const char* key, json value) {
    json line = json::parse(good);
    line[key] = std::move(value);
    return line.dump();
  };
  auto without = [&](const char* key) {
    json line = json::parse(good);
    line.erase(key);
    return line.dump();
  };
  BOOST_TEST(refusal(with("bench", "clients")).find("not a bench-peers line") != std::string::npos);
  BOOST_TEST(refusal(with("phase", "dance")).find("unknown phase") != std::string::npos);
  BOOST_TEST(refusal(with("p50_us", "fast")).find("\"p50_us\" is no number") != std::string::npos);
  BOOST_TEST(refusal(with("system", 7)).find("\"system\"") != std::string::npos);
  BOOST_TEST(refusal(without("recall_at_10")).find("no \"recall_at_10\"") != std::string::npos);
  BOOST_TEST(refusal(without("mode")).find("no \"mode\"") != std::string::npos);
  BOOST_TEST(refusal(without("durability")).find("\"durability\"") != std::string::npos);
  // Deeply nested or huge values are still only refused.
  BOOST_TEST(!refusal(with("rss_mb", json::parse(std::string(1000, '[') + std::string(1000, ']'))))
                  .empty());
  BOOST_TEST(!refusal(with("disk_mb", std::string(1 << 20, 'x'))).empty());
}

BOOST_AUTO_TEST_CASE(the_export_holds_each_text_with_its_embedders_vector) {
  memos::testing::TempDir dir;
  peers::PeerData data;
  data.scales = {3, 5};
  data.seed = 7;
  data.synthetic = memos::bench::make_search_workload(7, 5, 2);
  memos::bench::locomo::Conversation conv;
  conv.sample_id = "conv-x";
  conv.turns = {{"D1:1", "Caroline: I went to a \"support\" group\nyesterday", 0},
                {"D1:2", "Melanie: That's great — how was it?", 0}};
  conv.questions = {{"Where did Caroline go?", 4, {"D1:1"}}};
  data.conversations = {conv};
  memos::embed::HashEmbedder embedder(32);
  peers::write_peer_data(dir.path(), data, embedder);

  namespace fs = std::filesystem;
  fs::path root = dir.path();
  std::ifstream meta_in(root / "meta.json");
  json meta = json::parse(meta_in);
  BOOST_TEST(meta["dim"] == 32);
  BOOST_TEST(meta["embedder"] == "hash-v1");
  BOOST_TEST(meta["scales"] == json::array({3, 5}));
  BOOST_TEST(meta["conversations"] == json::array({"conv-x"}));

  BOOST_TEST(fs::file_size(root / "synthetic/items.f32") == 5u * 32 * sizeof(float));
  BOOST_TEST(fs::file_size(root / "synthetic/queries.f32") == 2u * 32 * sizeof(float));

  // Line i is turn i, and row i of the .f32 its vector, bit for bit.
  std::ifstream turns(root / "locomo/conv-x/turns.jsonl");
  std::ifstream vectors(root / "locomo/conv-x/turns.f32", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(vectors)), {});
  BOOST_REQUIRE(bytes.size() == 2u * 32 * sizeof(float));
  std::string text;
  for (std::size_t i = 0; std::getline(turns, text); ++i) {
    json line = json::parse(text);
    BOOST_TEST(line["id"] == conv.turns[i].dia_id);
    BOOST_TEST(line["text"] == conv.turns[i].text);  // quotes and newlines survive
    std::vector<float> expected = embedder.embed(conv.turns[i].text);
    BOOST_TEST(std::memcmp(bytes.data() + i * 32 * sizeof(float), expected.data(),
                           32 * sizeof(float)) == 0);
  }
  std::ifstream questions(root / "locomo/conv-x/questions.jsonl");
  std::getline(questions, text);
  json q = json::parse(text);
  BOOST_TEST(q["evidence"] == json::array({"D1:1"}));
  BOOST_TEST(q["category"] == 4);
}

BOOST_AUTO_TEST_CASE(an_unwritable_folder_is_an_error) {
  memos::testing::TempDir dir;
  std::string blocker = dir.path() + "/file";
  std::ofstream(blocker) << "x";
  peers::PeerData data;
  data.scales = {1};
  data.synthetic = memos::bench::make_search_workload(1, 1, 1);
  // A path under a regular file cannot be made.
  BOOST_CHECK_THROW(peers::write_peer_data(blocker + "/data", data, memos::embed::HashEmbedder(16)),
                    std::exception);
}
