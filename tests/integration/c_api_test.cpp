// The C API (memos.h, libmemos.so) against a real memosd: the calls and
// their results field by field, pipelined sends, every error path it adds
// (NULL arguments, enums out of range, routes that do not parse: refused
// before anything is sent), the daemon's errors with their messages,
// hostile input, streamed archives through C callbacks, closing with
// requests in flight, and the C example (sdk/examples/remember.c) run.
// test_c_api_symbols checks that libmemos.so exports memos_* alone.
#define BOOST_TEST_MODULE c_api
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "memos/memos.h"
#include "tests/support/memosd_process.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;

namespace {

// A memosd of the test's own and a C client on it.
struct CDaemon {
  CDaemon() : process(MEMOS_MEMOSD, dir.path(), {}) {
    BOOST_REQUIRE_MESSAGE(process.start(std::chrono::seconds(20)), process.log());
    memos_client_options options;
    memos_client_options_init(&options);
    BOOST_TEST(options.max_staleness_ms == 0u);  // reads see every acknowledged write
    options.wait_searchable = 1;
    options.max_staleness_ms = 250;  // a single memosd is always current
    memos_error err{};
    BOOST_REQUIRE_EQUAL(memos_connect(process.socket().c_str(), &options, &client, &err), MEMOS_OK);
  }
  ~CDaemon() { memos_close(client); }
  TempDir dir;
  MemosdProcess process;
  memos_client* client = nullptr;
};

// The error's message, freed.
std::string take(memos_error& err) {
  std::string m = err.message != nullptr ? err.message : "";
  memos_free(err.message);
  err.message = nullptr;
  return m;
}

std::string str(memos_str s) {
  return std::string(s.ptr, s.len);
}

// Adds `text` with `tags` and returns the item (freed by the caller).
memos_item* add(memos_client* c, const char* cube, const char* text,
                std::vector<const char*> tags = {}) {
  memos_new_item item;
  memos_new_item_init(&item);
  item.text = text;
  item.tags = tags.data();
  item.n_tags = tags.size();
  memos_item* out = nullptr;
  memos_error err{};
  int rc = memos_add(c, cube, &item, &out, &err);
  BOOST_REQUIRE_MESSAGE(rc == MEMOS_OK, "add: " + take(err));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(items_are_written_read_and_versioned) {
  CDaemon d;
  memos_error err{};
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(
      memos_cube_create(d.client, "notes", MEMOS_MODE_LEXICAL, nullptr, &cube, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(str(cube->name), "notes");
  BOOST_CHECK_EQUAL(cube->default_retriever, MEMOS_MODE_LEXICAL);
  BOOST_CHECK_EQUAL(cube->name.ptr[cube->name.len], '\0');
  memos_free(cube);

  const char* tags[] = {"travel", "plans"};
  memos_pair meta[] = {{"source", "c_api_test"}};
  memos_new_item item;
  memos_new_item_init(&item);
  item.text = "Caroline flies to Lisbon in May";
  item.tags = tags;
  item.n_tags = 2;
  item.meta = meta;
  item.n_meta = 1;
  item.importance = 0.75f;
  memos_item* added = nullptr;
  BOOST_REQUIRE_EQUAL(memos_add(d.client, "notes", &item, &added, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(added->version, 1u);
  BOOST_CHECK_EQUAL(str(added->text), "Caroline flies to Lisbon in May");
  BOOST_REQUIRE_EQUAL(added->n_tags, 2u);
  BOOST_CHECK_EQUAL(str(added->tags[0]), "travel");
  BOOST_REQUIRE_EQUAL(added->n_meta, 1u);
  BOOST_CHECK_EQUAL(str(added->meta[0].key), "source");
  BOOST_CHECK_EQUAL(str(added->meta[0].value), "c_api_test");
  BOOST_CHECK_CLOSE(added->importance, 0.75f, 1e-4);
  BOOST_CHECK_EQUAL(added->tier, MEMOS_TIER_PLAINTEXT);
  BOOST_CHECK_EQUAL(added->state, MEMOS_STATE_ACTIVE);
  BOOST_CHECK(added->param == nullptr);
  const std::uint64_t id = added->id;
  memos_free(added);

  // The id's text form round-trips.
  char text[MEMOS_ID_TEXT_SIZE];
  memos_format_id(id, text);
  std::uint64_t parsed = 0;
  BOOST_CHECK_EQUAL(memos_parse_id(text, &parsed), MEMOS_OK);
  BOOST_CHECK_EQUAL(parsed, id);
  BOOST_CHECK_EQUAL(memos_parse_id("not an id!", &parsed), MEMOS_BAD_REQUEST);

  memos_item_change change;
  memos_item_change_init(&change);
  change.text = "Caroline flies to Porto in June";
  change.set_tags = 1;  // and clears the tags
  memos_item* updated = nullptr;
  BOOST_REQUIRE_EQUAL(memos_update(d.client, "notes", id, &change, &updated, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(updated->version, 2u);
  BOOST_CHECK_EQUAL(updated->n_tags, 0u);
  BOOST_CHECK_EQUAL(updated->n_meta, 1u);  // not set: kept
  memos_free(updated);

  memos_item* got = nullptr;
  BOOST_REQUIRE_EQUAL(memos_get(d.client, "notes", id, 1, &got, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(str(got->text), "Caroline flies to Lisbon in May");
  memos_free(got);

  memos_item_diff* diff = nullptr;
  BOOST_REQUIRE_EQUAL(memos_diff(d.client, "notes", id, 1, 0, &diff, &err), MEMOS_OK);
  BOOST_CHECK(diff->text_changed);
  BOOST_CHECK_EQUAL(diff->n_tags_removed, 2u);
  BOOST_CHECK_EQUAL(diff->to.version, 2u);
  memos_free(diff);

  memos_item* state = nullptr;
  BOOST_REQUIRE_EQUAL(memos_set_state(d.client, "notes", id, MEMOS_STATE_FROZEN, &state, &err),
                      MEMOS_OK);
  BOOST_CHECK_EQUAL(state->state, MEMOS_STATE_FROZEN);
  memos_free(state);
  BOOST_CHECK_EQUAL(memos_remove(d.client, "notes", id, nullptr, &state, &err), MEMOS_CONFLICT);
  BOOST_CHECK(!take(err).empty());
  BOOST_REQUIRE_EQUAL(memos_set_state(d.client, "notes", id, MEMOS_STATE_ACTIVE, &state, &err),
                      MEMOS_OK);
  memos_free(state);
  BOOST_REQUIRE_EQUAL(memos_remove(d.client, "notes", id, nullptr, &state, &err), MEMOS_OK);
  BOOST_CHECK(state->deleted);
  memos_free(state);
  BOOST_CHECK_EQUAL(memos_get(d.client, "notes", id, 0, &got, &err), MEMOS_NOT_FOUND);
  take(err);
  BOOST_REQUIRE_EQUAL(memos_rollback(d.client, "notes", id, 2, &got, &err), MEMOS_OK);
  BOOST_CHECK(!got->deleted);
  memos_free(got);

  memos_items* history = nullptr;
  BOOST_REQUIRE_EQUAL(memos_history(d.client, "notes", id, &history, &err), MEMOS_OK);
  BOOST_REQUIRE_EQUAL(history->count, 6u);  // add, update, frozen, active, tombstone, rollback
  BOOST_CHECK_EQUAL(history->data[0].version, 1u);
  BOOST_CHECK(history->data[4].deleted);
  memos_free(history);
}

BOOST_AUTO_TEST_CASE(search_filters_explains_and_routes) {
  CDaemon d;
  memos_error err{};
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(d.client, "s", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  memos_free(add(d.client, "s", "the blue heron nests by the river", {"birds"}));
  memos_free(add(d.client, "s", "the red fox hunts by the river", {"mammals"}));
  memos_free(add(d.client, "s", "tax forms are due in April"));

  memos_search_options options;
  memos_search_options_init(&options);
  BOOST_CHECK_EQUAL(options.k, 10u);
  BOOST_CHECK_EQUAL(options.mode, -1);
  options.mode = MEMOS_MODE_HYBRID;
  options.explain = 1;
  memos_hits* hits = nullptr;
  BOOST_REQUIRE_EQUAL(memos_search(d.client, "s", "river", &options, &hits, &err), MEMOS_OK);
  BOOST_REQUIRE_GE(hits->count, 2u);
  BOOST_CHECK_EQUAL(str(hits->data[0].cube), "s");
  BOOST_CHECK_GT(hits->data[0].n_ranks, 0u);
  memos_free(hits);

  const char* birds[] = {"birds"};
  options.tags = birds;
  options.n_tags = 1;
  BOOST_REQUIRE_EQUAL(memos_search(d.client, "s", "river", &options, &hits, &err), MEMOS_OK);
  BOOST_REQUIRE_EQUAL(hits->count, 1u);
  BOOST_CHECK_EQUAL(str(hits->data[0].item.text), "the blue heron nests by the river");
  memos_free(hits);

  memos_search_options routed;
  memos_search_options_init(&routed);
  routed.routing.budget = "mid";
  routed.routing.route = "retrieve=high";
  memos_routed_search* r = nullptr;
  BOOST_REQUIRE_EQUAL(
      memos_search_routed(d.client, "s", "where does the heron nest", &routed, &r, &err), MEMOS_OK);
  BOOST_CHECK_GT(r->n_hits, 0u);
  BOOST_CHECK_GT(r->n_context, 0u);
  BOOST_REQUIRE_GT(r->n_modules, 0u);
  BOOST_CHECK_EQUAL(r->modules[0].module, MEMOS_MODULE_RETRIEVE);
  BOOST_CHECK_EQUAL(r->modules[0].tier, MEMOS_COST_HIGH);
  memos_free(r);

  // A search answers nothing: a route naming answer is refused here, and
  // a route that does not parse, before anything is sent.
  routed.routing.route = "answer=low";
  BOOST_CHECK_EQUAL(memos_search_routed(d.client, "s", "q", &routed, &r, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("answer"), std::string::npos);
  routed.routing.route = "retrieve=ultra";
  BOOST_CHECK_EQUAL(memos_search_routed(d.client, "s", "q", &routed, &r, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("retrieve=ultra"), std::string::npos);
  routed.routing.route = nullptr;
  routed.routing.budget = "cheap";
  BOOST_CHECK_EQUAL(memos_search_routed(d.client, "s", "q", &routed, &r, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("cheap"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(sends_pipeline_and_complete_in_any_order) {
  CDaemon d;
  memos_error err{};
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(d.client, "p", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  constexpr int kAdds = 200;
  std::vector<std::string> texts;
  std::vector<memos_pending*> pending(kAdds);
  for (int i = 0; i < kAdds; ++i) texts.push_back("memory number " + std::to_string(i));
  for (int i = 0; i < kAdds; ++i) {
    memos_new_item item;
    memos_new_item_init(&item);
    item.text = texts[i].c_str();
    BOOST_REQUIRE_EQUAL(memos_add_send(d.client, "p", &item, &pending[i], &err), MEMOS_OK);
  }
  // Waited on last first: each pending holds its own reply.
  for (int i = kAdds - 1; i >= 0; --i) {
    memos_item* item = nullptr;
    BOOST_REQUIRE_EQUAL(memos_wait(pending[i], &item, &err), MEMOS_OK);
    BOOST_CHECK_EQUAL(str(item->text), texts[i]);
    memos_free(item);
  }
  BOOST_CHECK_EQUAL(memos_in_flight(d.client), 0u);

  // A pending freed unwaited is dropped; one ready is said so.
  memos_pending* dropped = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_list_send(d.client, &dropped, &err), MEMOS_OK);
  memos_free(dropped);
  memos_pending* listed = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_list_send(d.client, &listed, &err), MEMOS_OK);
  for (int i = 0; i < 2000 && !memos_ready(listed); ++i) usleep(1000);
  BOOST_CHECK(memos_ready(listed));
  memos_cubes* cubes = nullptr;
  BOOST_REQUIRE_EQUAL(memos_wait(listed, &cubes, &err), MEMOS_OK);
  BOOST_REQUIRE_EQUAL(cubes->count, 1u);
  BOOST_CHECK_EQUAL(cubes->data[0].live_items, static_cast<std::uint64_t>(kAdds));
  memos_free(cubes);
}

BOOST_AUTO_TEST_CASE(errors_carry_the_code_message_and_retryability) {
  // No daemon: connect_failed, retryable, with a message.
  memos_client* none = nullptr;
  memos_error err{};
  BOOST_CHECK_EQUAL(memos_connect("/nonexistent/memosd.sock", nullptr, &none, &err),
                    MEMOS_CONNECT_FAILED);
  BOOST_CHECK(err.retryable);
  BOOST_CHECK(!take(err).empty());
  BOOST_CHECK_EQUAL(std::string(memos_strerror(MEMOS_NOT_FOUND)), "notFound");
  BOOST_CHECK_EQUAL(std::string(memos_strerror(MEMOS_OK)), "ok");
  BOOST_CHECK_EQUAL(std::string(memos_strerror(9999)), "unknown");
  BOOST_CHECK_EQUAL(std::string(memos_version()).substr(0, 2), "1.");

  CDaemon d;
  memos_item* item = nullptr;
  BOOST_CHECK_EQUAL(memos_get(d.client, "nosuch", 1, 0, &item, &err), MEMOS_NOT_FOUND);
  BOOST_CHECK(!err.retryable);
  BOOST_CHECK_NE(take(err).find("nosuch"), std::string::npos);
  // err may be NULL.
  BOOST_CHECK_EQUAL(memos_get(d.client, "nosuch", 1, 0, &item, nullptr), MEMOS_NOT_FOUND);

  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(d.client, "e", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  BOOST_CHECK_EQUAL(memos_cube_create(d.client, "e", -1, nullptr, &cube, &err),
                    MEMOS_ALREADY_EXISTS);
  take(err);

  // The API's own refusals, nothing sent: NULLs, enums out of range.
  BOOST_CHECK_EQUAL(memos_get(nullptr, "e", 1, 0, &item, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("client"), std::string::npos);
  BOOST_CHECK_EQUAL(memos_add(d.client, "e", nullptr, &item, &err), MEMOS_BAD_REQUEST);
  take(err);
  memos_new_item bad;
  memos_new_item_init(&bad);
  bad.text = "x";
  bad.n_tags = 3;  // and tags NULL
  BOOST_CHECK_EQUAL(memos_add(d.client, "e", &bad, &item, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("item.tags"), std::string::npos);
  BOOST_CHECK_EQUAL(memos_set_state(d.client, "e", 1, 42, &item, &err), MEMOS_BAD_REQUEST);
  take(err);
  BOOST_CHECK_EQUAL(memos_cube_create(d.client, "f", 7, nullptr, &cube, &err), MEMOS_BAD_REQUEST);
  take(err);
  memos_search_options options;
  memos_search_options_init(&options);
  int tiers[] = {MEMOS_TIER_PLAINTEXT, -3};
  options.tiers = tiers;
  options.n_tiers = 2;
  memos_hits* hits = nullptr;
  BOOST_CHECK_EQUAL(memos_search(d.client, "e", "q", &options, &hits, &err), MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("options.tiers"), std::string::npos);
  BOOST_CHECK_EQUAL(memos_wait(nullptr, nullptr, &err), MEMOS_BAD_REQUEST);
  take(err);
  BOOST_CHECK_EQUAL(memos_in_flight(d.client), 0u);

  // Hostile input reaches memosd and is refused there: invalid UTF-8, an
  // oversized text, an empty one.
  memos_new_item hostile;
  memos_new_item_init(&hostile);
  hostile.text = "caf\xc3(";
  BOOST_CHECK_EQUAL(memos_add(d.client, "e", &hostile, &item, &err), MEMOS_BAD_REQUEST);
  take(err);
  std::string huge(8u << 20, 'a');
  hostile.text = huge.c_str();
  BOOST_CHECK_EQUAL(memos_add(d.client, "e", &hostile, &item, &err), MEMOS_TOO_LARGE);
  take(err);
  hostile.text = nullptr;
  BOOST_CHECK_EQUAL(memos_add(d.client, "e", &hostile, &item, &err), MEMOS_BAD_REQUEST);
  take(err);
  // Nothing was written by any of them.
  BOOST_REQUIRE_EQUAL(memos_cube_show(d.client, "e", &cube, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(cube->live_items, 0u);
  memos_free(cube);

  // No executor: chat is unavailable, and says to configure one.
  memos_chat_reply* reply = nullptr;
  BOOST_CHECK_EQUAL(memos_chat(d.client, "e", "hello", nullptr, &reply, &err), MEMOS_UNAVAILABLE);
  BOOST_CHECK(!take(err).empty());
}

BOOST_AUTO_TEST_CASE(closing_fails_what_is_in_flight) {
  CDaemon d;
  memos_error err{};
  memos_pending* pending[50];
  for (auto& p : pending) BOOST_REQUIRE_EQUAL(memos_status_get_send(d.client, &p, &err), MEMOS_OK);
  memos_close(d.client);
  d.client = nullptr;
  int lost = 0;
  for (auto* p : pending) {
    memos_status* status = nullptr;
    int rc = memos_wait(p, &status, &err);
    if (rc == MEMOS_OK) {
      memos_free(status);
    } else {
      BOOST_CHECK_EQUAL(rc, MEMOS_CONNECTION_LOST);
      BOOST_CHECK(err.retryable);
      take(err);
      ++lost;
    }
  }
  BOOST_TEST_MESSAGE(lost << " of 50 lost");
}

namespace {
int append(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
  return 0;
}
int refuse(void*, const char*, size_t) {
  return 1;
}
struct Reader {
  const std::string* archive;
  size_t at = 0;
};
size_t read_archive(void* ctx, char* buf, size_t cap) {
  auto* r = static_cast<Reader*>(ctx);
  size_t n = std::min(cap, r->archive->size() - r->at);
  std::memcpy(buf, r->archive->data() + r->at, n);
  r->at += n;
  return n;
}
}  // namespace

BOOST_AUTO_TEST_CASE(archives_stream_through_callbacks_and_snapshots_diff) {
  CDaemon d;
  memos_error err{};
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(d.client, "a", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  memos_free(add(d.client, "a", "first memory"));
  memos_snapshot* snap = nullptr;
  BOOST_REQUIRE_EQUAL(memos_snapshot_create(d.client, "a", "before", &snap, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(str(snap->tag), "before");
  BOOST_CHECK_EQUAL(snap->live_items, 1u);
  memos_free(snap);
  memos_free(add(d.client, "a", "second memory"));
  memos_snapshot_changes* changes = nullptr;
  BOOST_REQUIRE_EQUAL(memos_snapshot_diff(d.client, "a", "before", nullptr, &changes, &err),
                      MEMOS_OK);
  BOOST_REQUIRE_EQUAL(changes->count, 1u);
  BOOST_CHECK_EQUAL(changes->data[0].kind, MEMOS_CHANGE_ADDED);
  BOOST_CHECK_EQUAL(str(changes->data[0].text), "second memory");
  memos_free(changes);

  std::string archive;
  std::uint64_t bytes = 0;
  BOOST_REQUIRE_EQUAL(memos_export_cube(d.client, "a", append, &archive, &bytes, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(bytes, archive.size());
  BOOST_CHECK_EQUAL(memos_export_cube(d.client, "a", refuse, nullptr, &bytes, &err),
                    MEMOS_BAD_REQUEST);
  BOOST_CHECK_NE(take(err).find("stopped by the writer"), std::string::npos);

  Reader reader{&archive};
  BOOST_REQUIRE_EQUAL(memos_import_cube(d.client, read_archive, &reader, "copy", &cube, &err),
                      MEMOS_OK);
  BOOST_CHECK_EQUAL(str(cube->name), "copy");
  BOOST_CHECK_EQUAL(cube->live_items, 2u);
  memos_free(cube);
  // A truncated archive is refused and leaves nothing behind.
  std::string truncated = archive.substr(0, archive.size() / 2);
  Reader half{&truncated};
  BOOST_CHECK_EQUAL(memos_import_cube(d.client, read_archive, &half, "broken", &cube, &err),
                    MEMOS_BAD_REQUEST);
  take(err);
  BOOST_CHECK_EQUAL(memos_cube_show(d.client, "broken", &cube, &err), MEMOS_NOT_FOUND);
  take(err);
}

BOOST_AUTO_TEST_CASE(the_daemon_tenants_plugins_and_scheduler_report) {
  CDaemon d;
  memos_error err{};
  memos_status* status = nullptr;
  BOOST_REQUIRE_EQUAL(memos_status_get(d.client, &status, &err), MEMOS_OK);
  BOOST_CHECK_GT(status->pid, 0u);
  BOOST_CHECK_EQUAL(status->tenant_uid, getuid());
  BOOST_CHECK_GT(status->n_plugins, 0u);
  memos_free(status);
  memos_plugins* plugins = nullptr;
  BOOST_REQUIRE_EQUAL(memos_plugin_list(d.client, &plugins, &err), MEMOS_OK);
  BOOST_REQUIRE_GT(plugins->count, 0u);
  memos_plugin_info* plugin = nullptr;
  BOOST_REQUIRE_EQUAL(memos_plugin_info_get(d.client, plugins->data[0].name.ptr, &plugin, &err),
                      MEMOS_OK);
  BOOST_CHECK_EQUAL(str(plugin->name), str(plugins->data[0].name));
  memos_free(plugin);
  memos_free(plugins);
  memos_policy_info* policy = nullptr;
  BOOST_REQUIRE_EQUAL(memos_policy_show(d.client, nullptr, &policy, &err), MEMOS_OK);
  BOOST_CHECK_GT(policy->text.len, 0u);
  memos_free(policy);
  memos_cube* cube = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cube_create(d.client, "t", -1, nullptr, &cube, &err), MEMOS_OK);
  memos_free(cube);
  memos_item* item = add(d.client, "t", "a memory to explain");
  const std::uint64_t id = item->id;
  memos_free(item);
  memos_tenant_usage* usage = nullptr;
  BOOST_REQUIRE_EQUAL(memos_tenant_usage_get(d.client, nullptr, &usage, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(usage->cubes, 1u);
  BOOST_CHECK_EQUAL(usage->items, 1u);
  memos_free(usage);
  memos_kv_stats* kv = nullptr;
  BOOST_REQUIRE_EQUAL(memos_kv_stats_get(d.client, &kv, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(kv->model.len, 0u);  // no executor
  memos_free(kv);
  memos_explanation* why = nullptr;
  BOOST_REQUIRE_EQUAL(memos_explain(d.client, "t", id, &why, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(why->item.id, id);
  BOOST_CHECK_GE(why->strength, 1.0);
  memos_free(why);
  memos_sched_pass* pass = nullptr;
  BOOST_REQUIRE_EQUAL(memos_sched_run(d.client, &pass, &err), MEMOS_OK);
  BOOST_CHECK_GT(pass->at_ms, 0);
  memos_free(pass);
  memos_cluster_status* cluster = nullptr;
  BOOST_REQUIRE_EQUAL(memos_cluster_status_get(d.client, &cluster, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(cluster->enabled, 0);  // one node
  BOOST_CHECK_EQUAL(cluster->n_nodes, 0u);
  BOOST_CHECK_EQUAL(cluster->bucket.name.len, 0u);
  BOOST_CHECK_EQUAL(cluster->bucket.blobs, 0u);
  BOOST_CHECK_EQUAL(cluster->compaction.snapshot_node.len, 0u);  // since 1.1
  BOOST_CHECK_EQUAL(cluster->compaction.n_floor, 0u);
  BOOST_CHECK_EQUAL(cluster->n_node_policies, 0u);  // since 1.2
  BOOST_CHECK_EQUAL(cluster->policies_differ, 0);
  BOOST_CHECK_EQUAL(cluster->log.leader.len, 0u);  // since 1.3
  BOOST_CHECK_EQUAL(cluster->log.n_replicas, 0u);
  memos_free(cluster);
  cluster = nullptr;
  // One node has no log to step down.
  BOOST_CHECK_EQUAL(memos_cluster_step_down(d.client, &cluster, &err), MEMOS_CONFLICT);
  BOOST_CHECK(cluster == nullptr);
  BOOST_CHECK(take(err).find("one node") != std::string::npos);
  memos_sched_status* sched = nullptr;
  BOOST_REQUIRE_EQUAL(memos_sched_status_get(d.client, nullptr, &sched, &err), MEMOS_OK);
  BOOST_CHECK_GE(sched->passes, 1u);
  memos_free(sched);
  memos_sched_decisions* log = nullptr;
  BOOST_REQUIRE_EQUAL(memos_sched_log(d.client, nullptr, 0, &log, &err), MEMOS_OK);
  memos_free(log);
  memos_jobs* jobs = nullptr;
  BOOST_REQUIRE_EQUAL(memos_job_list(d.client, &jobs, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(jobs->count, 0u);
  memos_free(jobs);
  memos_activations* kvs = nullptr;
  BOOST_REQUIRE_EQUAL(memos_kv_list(d.client, "t", &kvs, &err), MEMOS_OK);
  BOOST_CHECK_EQUAL(kvs->count, 0u);
  memos_free(kvs);
  memos_str* metrics = nullptr;
  if (geteuid() == 0) {
    BOOST_REQUIRE_EQUAL(memos_metrics(d.client, &metrics, &err), MEMOS_OK);
    BOOST_CHECK_NE(std::string(metrics->ptr).find("memosd_requests_total"), std::string::npos);
    memos_free(metrics);
  }
  char* socket = memos_default_socket();
  BOOST_REQUIRE(socket != nullptr);
  BOOST_CHECK_GT(std::strlen(socket), 0u);
  memos_free(socket);
  BOOST_REQUIRE_EQUAL(memos_cube_remove(d.client, "t", 1, &err), MEMOS_OK);
}

BOOST_AUTO_TEST_CASE(the_c_example_runs) {
  CDaemon d;
  std::string out, errs;
  int rc = run_command({"/usr/bin/env", "MEMOS_SOCKET=" + d.process.socket(), MEMOS_REMEMBER,
                        "demo", "Melanie paints sunsets on weekends", "what does Melanie paint"},
                       &out, &errs);
  BOOST_REQUIRE_MESSAGE(rc == 0, errs);
  BOOST_CHECK_NE(out.find("added "), std::string::npos);
  BOOST_CHECK_NE(out.find("Melanie paints sunsets on weekends"), std::string::npos);
}
