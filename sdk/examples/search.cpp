// search: rank a cube's memories for a query in each search mode.
//
//   search CUBE QUERY [K]
//
// The socket is $MEMOS_SOCKET, else memosd's default. What a score means
// depends on the mode (memos/types.h, Hit): dense is cosine similarity,
// lexical is BM25, hybrid is reciprocal-rank fusion of the two.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memos/client.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: search CUBE QUERY [K]\n");
    return 2;
  }
  std::string cube = argv[1], query = argv[2];
  auto connected = memos::Client::connect();
  if (!connected) {
    std::fprintf(stderr, "search: %s\n", connected.error().message.c_str());
    return 1;
  }
  std::unique_ptr<memos::Client> client = std::move(*connected);

  for (memos::SearchMode mode :
       {memos::SearchMode::dense, memos::SearchMode::lexical, memos::SearchMode::hybrid}) {
    memos::SearchOptions options;
    options.k = argc > 3 ? static_cast<std::uint32_t>(std::atoi(argv[3])) : 3;
    options.mode = mode;  // unset: the cube's default mode
    // Writes are searchable within milliseconds of being answered; `fresh`
    // waits for every write answered before this search.
    options.fresh = true;
    // Filters apply inside the search, e.g. options.tags = {"health"}.
    memos::Result<std::vector<memos::Hit>> hits = client->search(cube, query, options);
    if (!hits) {
      std::fprintf(stderr, "search: %s (%s)\n", hits.error().message.c_str(),
                   memos::to_string(hits.error().code));
      return 1;
    }
    std::printf("%s: %zu hits\n", memos::to_string(mode), hits->size());
    for (const memos::Hit& hit : *hits) {
      std::printf("  %.3f  %s  %s\n", hit.score, memos::format_id(hit.item.id).c_str(),
                  hit.item.text.c_str());
    }
  }
  return 0;
}
