// peers_export.h — the data every system of bench-peers gets, written to a
// folder bench/peers/peers.mjs reads, so that the peers see exactly the
// texts memosd sees and, where they search vectors, exactly the vectors
// memosd's hash-v1 embedder makes of them: only the engine differs.
//
// Layout (texts as JSON lines, vectors as rows of little-endian float32,
// row i belonging to line i):
//   meta.json                    {"embedder","dim","scales","seed","conversations"}
//   synthetic/items.jsonl|.f32   {"text"}: ipc-search's memories, max(scales) of them
//   synthetic/queries.jsonl|.f32 {"text"}: ipc-search's queries
//   locomo/<conv>/turns.jsonl|.f32      {"id","text"}: the turns as locomo-recall adds them
//   locomo/<conv>/questions.jsonl|.f32  {"text","category","evidence"}: corrected evidence
#pragma once

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/locomo_data.h"
#include "bench/synthetic_text.h"
#include "plugins/hash-embedder/hash_embedder.h"

namespace memos::bench::peers {

static_assert(std::endian::native == std::endian::little, "the .f32 files are little-endian");

struct PeerData {
  std::vector<std::size_t> scales;  // ascending
  std::uint64_t seed = 0;
  SyntheticWorkload synthetic;  // max(scales) memories
  std::vector<locomo::Conversation> conversations;
};

namespace detail {

inline std::ofstream open_output(const std::filesystem::path& path, std::ios::openmode mode = {}) {
  std::ofstream out(path, std::ios::out | std::ios::trunc | mode);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return out;
}

inline void close_checked(std::ofstream& out, const std::filesystem::path& path) {
  out.close();
  if (!out) throw std::runtime_error("writing " + path.string() + " failed");
}

// `lines` as JSON lines at `stem`.jsonl, their texts' vectors at `stem`.f32.
inline void write_set(const std::filesystem::path& stem, const std::vector<nlohmann::json>& lines,
                      const embed::HashEmbedder& embedder) {
  std::filesystem::path jsonl = stem.string() + ".jsonl", f32 = stem.string() + ".f32";
  std::ofstream texts = open_output(jsonl);
  std::ofstream vectors = open_output(f32, std::ios::binary);
  std::vector<float> vector(embedder.dimension());
  for (const nlohmann::json& line : lines) {
    texts << line.dump() << '\n';
    embedder.embed(line.at("text").get<std::string>(), vector);
    vectors.write(reinterpret_cast<const char*>(vector.data()),
                  static_cast<std::streamsize>(vector.size() * sizeof(float)));
  }
  close_checked(texts, jsonl);
  close_checked(vectors, f32);
}

inline std::vector<nlohmann::json> text_lines(const std::vector<std::string>& texts) {
  std::vector<nlohmann::json> lines;
  lines.reserve(texts.size());
  for (const std::string& text : texts) lines.push_back({{"text", text}});
  return lines;
}

}  // namespace detail

// Writes `data` under `dir` (made if missing). Throws std::runtime_error
// when a file cannot be written.
inline void write_peer_data(const std::filesystem::path& dir, const PeerData& data,
                            const embed::HashEmbedder& embedder) {
  namespace fs = std::filesystem;
  fs::create_directories(dir / "synthetic");
  std::vector<std::string> memories;
  memories.reserve(data.synthetic.memories.size());
  for (const SyntheticMemory& memory : data.synthetic.memories) memories.push_back(memory.text);
  detail::write_set(dir / "synthetic" / "items", detail::text_lines(memories), embedder);
  detail::write_set(dir / "synthetic" / "queries", detail::text_lines(data.synthetic.queries),
                    embedder);

  nlohmann::json conversations = nlohmann::json::array();
  for (const locomo::Conversation& conv : data.conversations) {
    fs::path folder = dir / "locomo" / conv.sample_id;
    fs::create_directories(folder);
    std::vector<nlohmann::json> turns, questions;
    for (const locomo::Turn& turn : conv.turns)
      turns.push_back({{"id", turn.dia_id}, {"text", turn.text}});
    for (const locomo::Question& q : conv.questions)
      questions.push_back({{"text", q.text}, {"category", q.category}, {"evidence", q.evidence}});
    detail::write_set(folder / "turns", turns, embedder);
    detail::write_set(folder / "questions", questions, embedder);
    conversations.push_back(conv.sample_id);
  }

  nlohmann::json meta = {{"embedder", embed::HashEmbedder::kName},
                         {"dim", embedder.dimension()},
                         {"scales", data.scales},
                         {"seed", data.seed},
                         {"conversations", conversations}};
  std::ofstream out = detail::open_output(dir / "meta.json");
  out << meta.dump() << '\n';
  detail::close_checked(out, dir / "meta.json");
}

}  // namespace memos::bench::peers
