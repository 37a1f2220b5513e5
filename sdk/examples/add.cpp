// add: store a memory in a cube, with tags and metadata, and read it back.
//
//   add CUBE TEXT [TAG...]
//
// The socket is $MEMOS_SOCKET, else memosd's default (memosd(8)). The cube
// is created when missing. The write is answered once durable on disk.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "memos/client.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: add CUBE TEXT [TAG...]\n");
    return 2;
  }
  std::string cube = argv[1];
  auto connected = memos::Client::connect();
  if (!connected) {
    std::fprintf(stderr, "add: %s\n", connected.error().message.c_str());
    return 1;
  }
  std::unique_ptr<memos::Client> client = std::move(*connected);

  // A cube that already exists is fine here; any other error is not.
  auto created = client->cube_create(cube);
  if (!created && created.error().code != memos::ErrorCode::already_exists) {
    std::fprintf(stderr, "add: cube %s: %s\n", cube.c_str(), created.error().message.c_str());
    return 1;
  }

  memos::NewItem item;
  item.text = argv[2];
  for (int i = 3; i < argc; ++i) item.tags.push_back(argv[i]);  // searchable as filters
  item.meta = {{"source", "sdk/examples/add"}};                 // key=value pairs
  item.importance = 0.5f;                                       // 0..1, weighs hybrid search
  // With a key, a retried add (after connection_lost, say) stores nothing
  // twice: it returns what the first one wrote.
  item.idempotency_key = "example-add-" + cube + "-" + item.text;

  memos::Result<memos::Item> added = client->add(cube, item);
  if (!added) {
    // bad_request (an empty or duplicate tag...), too_large, storage_full...
    std::fprintf(stderr, "add: %s (%s)\n", added.error().message.c_str(),
                 memos::to_string(added.error().code));
    return 1;
  }
  // Ids are 64-bit numbers; format_id() gives the text memctl shows.
  std::string id = memos::format_id(added->id);
  std::printf("added %s version %u\n", id.c_str(), added->version);

  auto read = client->get(cube, added->id);
  if (!read) {
    std::fprintf(stderr, "get %s: %s\n", id.c_str(), read.error().message.c_str());
    return 1;
  }
  std::printf("%s: %s\n", id.c_str(), read->text.c_str());
  for (const std::string& tag : read->tags) std::printf("  tag %s\n", tag.c_str());
  for (const memos::MetaEntry& meta : read->meta) {
    std::printf("  meta %s=%s\n", meta.key.c_str(), meta.value.c_str());
  }
  return 0;
}
