// The C API's generation calls against a real memosd with a model executor
// (a tiny model made by memos-mkmodel): a streamed chat's pieces through a
// C callback add up to the reply's text, a chat stores its block's state
// and the next restores it, and the activation items are listed, prefilled
// and removed through memos_kv_*.
#define BOOST_TEST_MODULE c_api_chat
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "memos/memos.h"
#include "tests/support/memosd_process.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;

namespace {

std::string str(memos_str s) {
  return std::string(s.ptr, s.len);
}

struct Pieces {
  std::string text;
  int count = 0;
};

void on_piece(void* ctx, const memos_chat_piece* piece) {
  auto* p = static_cast<Pieces*>(ctx);
  p->text += str(piece->text);
  ++p->count;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chats_stream_store_and_restore_through_the_c_api) {
  TempDir dir;
  const std::string model = dir.path() + "/tiny.gguf";
  std::string out, errs;
  BOOST_REQUIRE_MESSAGE(run_command({MEMOS_MKMODEL, "--out", model, "--vocab", MEMOS_TEST_VOCAB,
                                     "--preset", "tiny", "--seed", "1"},
                                    &out, &errs) == 0,
                        errs);
  const std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[executor]\nmodel = \"" << model
                      << "\"\nthreads = 2\nbatch = 32\n[scheduler]\nenabled = false\n"
                         "[activation]\nchunk_tokens = 16\n";
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_REQUIRE_MESSAGE(daemon.start(std::chrono::seconds(60)), daemon.log());

  memos_client* c = nullptr;
  memos_error err{};
  memos_client_options options;
  memos_client_options_init(&options);
  options.wait_searchable = 1;
  BOOST_REQUIRE_EQUAL(memos_connect(daemon.socket().c_str(), &options, &c, &err), MEMOS_OK);
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(c, "m", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  std::vector<std::uint64_t> ids;
  for (const char* text : {"Maya swims at the pool every Saturday morning before breakfast.",
                           "Maya's cat is called Pimenta and sleeps on the bookshelf.",
                           "Maya works as a structural engineer on bridge inspections."}) {
    memos_new_item item;
    memos_new_item_init(&item);
    item.text = text;
    memos_item* added = nullptr;
    BOOST_REQUIRE_EQUAL(memos_add(c, "m", &item, &added, &err), MEMOS_OK);
    ids.push_back(added->id);
    memos_free(added);
  }

  memos_chat_options chat;
  memos_chat_options_init(&chat);
  BOOST_CHECK_EQUAL(chat.k, 5u);
  BOOST_CHECK_EQUAL(chat.max_tokens, 128u);
  chat.ids = ids.data();
  chat.n_ids = ids.size();
  chat.max_tokens = 16;
  chat.activate = 1;
  Pieces pieces;
  memos_chat_reply* reply = nullptr;
  BOOST_REQUIRE_EQUAL(memos_chat_stream(c, "m", "What does Maya do on Saturdays?", &chat, on_piece,
                                        &pieces, &reply, &err),
                      MEMOS_OK);
  BOOST_CHECK_GT(pieces.count, 0);
  BOOST_CHECK_EQUAL(pieces.text, str(reply->text));
  BOOST_CHECK_EQUAL(reply->n_memories, ids.size());
  BOOST_CHECK(reply->stored);
  BOOST_CHECK_GT(reply->generated_tokens, 0u);
  const std::uint64_t stored = reply->activation;
  memos_free(reply);

  // The same block again: its state is restored, not decoded.
  BOOST_REQUIRE_EQUAL(memos_chat(c, "m", "Where does Maya's cat sleep?", &chat, &reply, &err),
                      MEMOS_OK);
  BOOST_CHECK(reply->restored);
  BOOST_CHECK_EQUAL(reply->activation, stored);
  BOOST_CHECK_GT(reply->reused_tokens, 0u);
  memos_free(reply);

  memos_activations* states = nullptr;
  BOOST_REQUIRE_EQUAL(memos_kv_list(c, "m", &states, &err), MEMOS_OK);
  BOOST_REQUIRE_EQUAL(states->count, 1u);
  BOOST_CHECK_EQUAL(states->data[0].id, stored);
  BOOST_CHECK_EQUAL(states->data[0].n_sources, ids.size());
  memos_free(states);
  memos_activation* removed = nullptr;
  BOOST_REQUIRE_EQUAL(memos_kv_remove(c, "m", stored, &removed, &err), MEMOS_OK);
  memos_free(removed);
  BOOST_REQUIRE_EQUAL(memos_kv_prefill(c, "m", ids.data(), ids.size(), 0, &removed, &err),
                      MEMOS_OK);
  BOOST_CHECK_GT(removed->tokens, 0u);
  memos_free(removed);
  BOOST_CHECK_EQUAL(memos_kv_prefill(c, "m", nullptr, 3, 0, &removed, &err), MEMOS_BAD_REQUEST);
  memos_free(err.message);

  memos_kv_stats* stats = nullptr;
  BOOST_REQUIRE_EQUAL(memos_kv_stats_get(c, &stats, &err), MEMOS_OK);
  BOOST_CHECK_GT(stats->model.len, 0u);
  memos_free(stats);
  memos_close(c);
}
