#include "kernel/request_handler.h"

#include <capnp/message.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include "ipc/message.h"
#include "kernel/access_log.h"
#include "kernel/cube_archives.h"
#include "kernel/generation_handler.h"
#include "kernel/plugin_manager.h"
#include "kernel/request_checks.h"
#include "kernel/search.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

using store::Errc;
using store::Status;

constexpr std::uint32_t kDefaultK = 10;
constexpr std::size_t kMaxIdempotencyKeyBytes = 128;

Status list_cubes(const store::Store& st, std::uint32_t tenant, std::vector<store::Cube>* out) {
  std::optional<store::ReadTxn> txn;
  Status s = st.begin_read(&txn);
  return s.ok() ? txn->list_cubes(tenant, out) : s;
}

}  // namespace

Frame RequestHandler::error_frame(std::uint64_t id, wire::ErrorCode code,
                                  const std::string& message, bool retryable) {
  return kernel::error_frame(id, code, message, retryable);
}

RequestHandler::RequestHandler(Services services)
    : s_(std::move(services)),
      archives_(std::make_unique<CubeArchives>(s_)),
      generation_(std::make_unique<GenerationHandler>(s_, s_.executor, s_.activations)) {}

RequestHandler::~RequestHandler() = default;

void RequestHandler::connection_closed(std::uint64_t connection) {
  archives_->connection_closed(connection);
}

void RequestHandler::handle(std::uint32_t tenant, std::uint64_t connection,
                            wire::Request::Reader request, Reply reply) {
  const std::uint64_t id = request.getId();
  idempotency_key_ = request.getIdempotencyKey();
  operation_ = static_cast<std::uint16_t>(request.which());
  if (idempotency_key_.size() > kMaxIdempotencyKeyBytes) {
    return reply(kernel::error_frame(
        id, wire::ErrorCode::TOO_LARGE,
        "idempotency key is longer than " + std::to_string(kMaxIdempotencyKeyBytes) + " bytes",
        false));
  }
  auto name_of = [](capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); };
  switch (request.which()) {
    case wire::Request::STATUS:
      return status(tenant, id, std::move(reply));
    case wire::Request::CUBE_CREATE:
      return cube_create(tenant, id, name_of(request.getCubeCreate().getName()),
                         name_of(request.getCubeCreate().getRetriever()),
                         name_of(request.getCubeCreate().getLanguage()), std::move(reply));
    case wire::Request::CUBE_LIST:
      return cube_list(tenant, id, std::move(reply));
    case wire::Request::CUBE_SHOW:
      return cube_show(tenant, id, name_of(request.getCubeShow().getName()), std::move(reply));
    case wire::Request::CUBE_REMOVE: {
      auto r = request.getCubeRemove();
      return cube_remove(tenant, id, name_of(r.getName()), r.getForce(), std::move(reply));
    }
    case wire::Request::ADD:
      return add(tenant, id, request.getAdd(), std::move(reply));
    case wire::Request::GET: {
      auto r = request.getGet();
      return get(tenant, id, name_of(r.getCube()), r.getItemId(), r.getVersion(), std::move(reply));
    }
    case wire::Request::UPDATE:
      return update(tenant, id, request.getUpdate(), std::move(reply));
    case wire::Request::REMOVE: {
      auto r = request.getRemove();
      return remove(tenant, id, name_of(r.getCube()), r.getItemId(), std::move(reply));
    }
    case wire::Request::HISTORY: {
      auto r = request.getHistory();
      return history(tenant, id, name_of(r.getCube()), r.getItemId(), std::move(reply));
    }
    case wire::Request::SEARCH:
      return search(tenant, id, request.getSearch(), std::move(reply));
    case wire::Request::SET_STATE:
      return set_state(tenant, id, request.getSetState(), std::move(reply));
    case wire::Request::ROLLBACK:
      return rollback(tenant, id, request.getRollback(), std::move(reply));
    case wire::Request::DIFF:
      return diff(tenant, id, request.getDiff(), std::move(reply));
    case wire::Request::SNAPSHOT_CREATE: {
      auto r = request.getSnapshotCreate();
      return snapshot_create(tenant, id, name_of(r.getCube()), name_of(r.getTag()),
                             std::move(reply));
    }
    case wire::Request::SNAPSHOT_LIST:
      return snapshot_list(tenant, id, name_of(request.getSnapshotList().getName()),
                           std::move(reply));
    case wire::Request::EXPORT_CHUNK: {
      auto r = request.getExportChunk();
      auto cursor = r.getCursor();
      return archives_->export_chunk(
          tenant, id, name_of(r.getCube()),
          std::string(reinterpret_cast<const char*>(cursor.begin()), cursor.size()),
          std::move(reply));
    }
    case wire::Request::IMPORT_BEGIN:
      return archives_->import_begin(tenant, connection, id,
                                     name_of(request.getImportBegin().getName()), std::move(reply));
    case wire::Request::IMPORT_CHUNK: {
      auto r = request.getImportChunk();
      auto data = r.getData();
      return archives_->import_chunk(
          tenant, connection, id, r.getSession(),
          std::string(reinterpret_cast<const char*>(data.begin()), data.size()), std::move(reply));
    }
    case wire::Request::PLUGIN_LIST:
      return plugin_list(id, std::move(reply));
    case wire::Request::PLUGIN_INFO:
      return plugin_info(id, name_of(request.getPluginInfo()), std::move(reply));
    case wire::Request::PLUGIN_RELOAD:
      return plugin_reload(id, name_of(request.getPluginReload()), std::move(reply));
    case wire::Request::IMPORT_FINISH:
      return archives_->import_finish(tenant, connection, id, request.getImportFinish(),
                                      std::move(reply));
    case wire::Request::SNAPSHOT_DIFF: {
      auto r = request.getSnapshotDiff();
      return snapshot_diff(tenant, id, name_of(r.getCube()), name_of(r.getFromTag()),
                           name_of(r.getToTag()), std::move(reply));
    }
    case wire::Request::CHAT:
      return generation_->chat(tenant, id, request.getChat(), std::move(reply));
    case wire::Request::KV_PREFILL:
      return generation_->prefill(tenant, id, request.getKvPrefill(), std::move(reply));
    case wire::Request::KV_LIST:
      return generation_->list(tenant, id, name_of(request.getKvList().getName()),
                               std::move(reply));
    case wire::Request::KV_REMOVE: {
      auto r = request.getKvRemove();
      return generation_->remove(tenant, id, name_of(r.getCube()), r.getItemId(), std::move(reply));
    }
    case wire::Request::KV_STATS:
      return generation_->stats(tenant, id, std::move(reply));
  }
  reply(bad_request(id, "unknown operation (is the client newer than this memosd?)"));
}

void RequestHandler::status(std::uint32_t tenant, std::uint64_t id, Reply reply) {
  s_.run_on_worker([this, tenant, id, reply = std::move(reply)] {
    std::vector<store::Cube> cubes;
    if (Status s = list_cubes(s_.store, tenant, &cubes); !s.ok()) return reply(status_error(id, s));
    auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - s_.stats.started);
    reply(response(id, [&](wire::Response::Builder r) {
      auto st = r.initStatus();
      st.setVersion(MEMOS_VERSION);
      st.setPid(static_cast<std::uint32_t>(getpid()));
      st.setUptimeMs(uptime.count());
      st.setTenantUid(tenant);
      st.setCubes(static_cast<std::uint32_t>(cubes.size()));
      st.setConnections(s_.stats.connections.load());
      st.setRequestsServed(s_.stats.requests_served.load());
      st.setDataDir(text(s_.stats.data_dir));
      st.setSocket(text(s_.stats.socket_path));
      auto plugins = s_.plugins.states();
      auto list = st.initPlugins(static_cast<unsigned>(plugins.size()));
      for (unsigned i = 0; i < plugins.size(); ++i) set_plugin(list[i], plugins[i]);
    }));
  });
}

void RequestHandler::cube_create(std::uint32_t tenant, std::uint64_t id, std::string name,
                                 std::string retriever, std::string language, Reply reply) {
  if (std::string err = check_cube_name(name); !err.empty()) return reply(bad_request(id, err));
  if (retriever.empty()) retriever = s_.config.search.default_mode;
  if (!is_search_mode(retriever)) {
    return reply(bad_request(
        id, "retriever '" + retriever.substr(0, 64) + "' is unknown (dense, lexical or hybrid)"));
  }
  if (std::string err = check_language(language); !err.empty()) return reply(bad_request(id, err));
  auto created = std::make_shared<store::Cube>();
  std::uint32_t dim = s_.config.search.embedding_dim;
  std::string model = s_.indexes.embedder_model();
  s_.commits.submit({
      [=](store::WriteTxn& txn) {
        return txn.create_cube(tenant, name, model, dim, now_ms(), created.get(), retriever,
                               language);
      },
      [this, id, created, reply](const Status& s) {
        if (!s.ok()) return reply(status_error(id, s));
        if (std::string err = s_.indexes.open(*created); !err.empty())
          spdlog::error("opening the indexes of cube {}: {}", created->name, err);
        reply(response(id, [&](wire::Response::Builder r) { set_cube(r.initCube(), *created); }));
      },
  });
}

void RequestHandler::cube_list(std::uint32_t tenant, std::uint64_t id, Reply reply) {
  s_.run_on_worker([this, tenant, id, reply = std::move(reply)] {
    std::vector<store::Cube> cubes;
    if (Status s = list_cubes(s_.store, tenant, &cubes); !s.ok()) return reply(status_error(id, s));
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initCubes(static_cast<unsigned>(cubes.size()));
      for (unsigned i = 0; i < cubes.size(); ++i) set_cube(list[i], cubes[i]);
    }));
  });
}

void RequestHandler::cube_show(std::uint32_t tenant, std::uint64_t id, std::string name,
                               Reply reply) {
  s_.run_on_worker([this, tenant, id, name = std::move(name), reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, name, &txn, &cube, id, reply)) return;
    std::string indexes = s_.indexes.describe(cube);
    reply(response(id, [&](wire::Response::Builder r) {
      auto b = r.initCube();
      set_cube(b, cube);
      b.setIndexes(indexes);
    }));
  });
}

void RequestHandler::cube_remove(std::uint32_t tenant, std::uint64_t id, std::string name,
                                 bool force, Reply reply) {
  auto removed = std::make_shared<store::Cube>();
  s_.commits.submit({
      [=](store::WriteTxn& txn) { return txn.remove_cube(tenant, name, force, removed.get()); },
      [this, id, removed, reply](const Status& s) {
        if (!s.ok()) return reply(status_error(id, s));
        s_.indexes.drop(removed->id);
        reply(response(id, [](wire::Response::Builder r) { r.setCubeRemoved(); }));
      },
  });
}

// Every item write follows one path: checks and embedding on a worker, the
// change in the commit queue, then (after the commit) the index, then the
// reply. `prepare` runs on the worker inside a read snapshot and returns the
// text to embed (the item's text after the change); `apply` runs in the write
// transaction and must leave the written version in `written`.
namespace {

struct ItemChange {
  std::uint32_t tenant;
  std::uint64_t request_id;
  std::string cube;
  // With a key, a retry of the same write returns the first outcome.
  std::string idempotency_key;
  std::uint16_t operation = 0;
  // Worker thread: checks; returns the text the item will hold, or fails
  // with a reply (returning nullopt).
  std::function<std::optional<std::string>(const store::ReadTxn&, const store::Cube&, const Reply&)>
      prepare;
  // Writer thread, inside the transaction.
  std::function<Status(store::WriteTxn&, const store::Cube&, store::Item* written,
                       store::Item* superseded)>
      apply;
};

std::shared_ptr<ItemChange> new_change(std::uint32_t tenant, std::uint64_t request_id,
                                       std::string cube, const std::string& idempotency_key,
                                       std::uint16_t operation) {
  auto c = std::make_shared<ItemChange>();
  c->tenant = tenant;
  c->request_id = request_id;
  c->cube = std::move(cube);
  c->idempotency_key = idempotency_key;
  c->operation = operation;
  return c;
}

void commit_item_change(const Services& s_, std::shared_ptr<ItemChange> c, Reply reply) {
  s_.run_on_worker([&s_, c, reply = std::move(reply)] {
    const std::uint64_t id = c->request_id;
    store::Cube cube;
    std::optional<std::string> text;
    {
      std::optional<store::ReadTxn> txn;
      if (!open_cube(s_.store, c->tenant, c->cube, &txn, &cube, id, reply)) return;
      // A retry whose first attempt committed is answered from the record
      // before anything else: the checks below would judge the item as the
      // first attempt left it (a retried remove would find it deleted).
      // The same snapshot serves both, so a key not seen here is checked
      // again in the write transaction.
      if (!c->idempotency_key.empty()) {
        store::IdempotencyRecord done;
        Status s = txn->find_idempotency(c->tenant, c->idempotency_key, &done);
        if (s.ok()) {
          if (done.operation != c->operation || done.cube != cube.id) {
            return reply(status_error(
                id, {store::Errc::conflict, "idempotency key was used for another write"}));
          }
          store::Item first;
          s = txn->get_item(done.cube, done.item, done.version, &first);
          return reply(s.ok() ? item_response(id, first) : status_error(id, s));
        }
        if (s.code != store::Errc::not_found) return reply(status_error(id, s));
      }
      text = c->prepare(*txn, cube, reply);
      if (!text) return;
    }
    auto vector = std::make_shared<std::vector<float>>();
    if (std::string err = s_.indexes.embed(*text, cube.dimension, vector.get()); !err.empty()) {
      return reply(kernel::error_frame(id, wire::ErrorCode::UNAVAILABLE, err, true));
    }
    auto written = std::make_shared<store::Item>();
    auto superseded = std::make_shared<store::Item>();
    auto replayed = std::make_shared<bool>(false);
    s_.commits.submit({
        [c, cube, written, superseded, replayed](store::WriteTxn& txn) -> Status {
          // The cube may have been removed (or replaced) since it was read.
          store::Cube current;
          Status s = txn.reader().find_cube(c->tenant, c->cube, &current);
          if (!s.ok()) return s;
          if (current.id != cube.id) return {store::Errc::not_found, "cube was replaced; retry"};
          if (c->idempotency_key.empty())
            return c->apply(txn, cube, written.get(), superseded.get());
          store::IdempotencyRecord done;
          s = txn.reader().find_idempotency(c->tenant, c->idempotency_key, &done);
          if (s.ok()) {
            // A retry: answer with what the first attempt wrote.
            if (done.operation != c->operation || done.cube != cube.id) {
              return {store::Errc::conflict, "idempotency key was used for another write"};
            }
            *replayed = true;
            return txn.reader().get_item(done.cube, done.item, done.version, written.get());
          }
          if (s.code != store::Errc::not_found) return s;
          if ((s = c->apply(txn, cube, written.get(), superseded.get())); !s.ok()) return s;
          return txn.put_idempotency(
              c->tenant, c->idempotency_key,
              {c->operation, cube.id, written->id, written->version, written->recorded_at_ms});
        },
        [&s_, id, cube, text = std::move(*text), vector, written, superseded, replayed,
         reply](const Status& s) {
          if (!s.ok()) return reply(status_error(id, s));
          // A replayed outcome may be older than the item's head: leave the
          // index, which follows the head, alone.
          if (*replayed) return reply(item_response(id, *written));
          // Another write may have changed the text between the snapshot
          // and the commit: the index must hold what was committed.
          if (!written->deleted() && written->text != text) {
            if (std::string err = s_.indexes.embed(written->text, cube.dimension, vector.get());
                !err.empty()) {
              // Committed, but the vector would be stale: index no vector
              // rather than a wrong one (IndexSet logs and rebuilds later).
              spdlog::error("embedding item {}: {}", written->id, err);
              vector->clear();
            }
          }
          s_.indexes.apply(cube, *written, *vector,
                           superseded->id != 0 ? superseded.get() : nullptr);
          // Answer once the change is searchable (after the group's flush).
          s_.indexes.defer([reply, id, written] { reply(item_response(id, *written)); });
        },
    });
  });
}

// Checks every field a client may set on an item; false after replying.
bool check_fields(const Services& s_, std::uint64_t id, const std::string* text,
                  const std::vector<std::string>* tags, const std::vector<store::MetaEntry>* meta,
                  const Reply& reply) {
  CheckFailure f;
  if (text) f = check_text(*text, s_.config.store);
  if (!f.failed() && tags) f = check_tags(*tags, s_.config.store);
  if (!f.failed() && meta) f = check_meta(*meta, s_.config.store);
  if (f.failed()) reply(check_error(id, f));
  return !f.failed();
}

}  // namespace

void RequestHandler::add(std::uint32_t tenant, std::uint64_t id, wire::AddItem::Reader args,
                         Reply reply) {
  auto draft = std::make_shared<store::ItemDraft>();
  draft->text = args.getText();
  draft->tags = copy_texts(args.getTags());
  draft->meta = copy_meta(args.getMeta());
  draft->importance = args.getImportance();
  draft->valid_from_ms = args.getValidFromMs();
  draft->valid_to_ms = args.getValidToMs();
  draft->provenance.writer = tenant;
  draft->provenance.session = args.getSessionId();
  for (auto source : args.getSources()) draft->provenance.sources.push_back(source);
  const std::int64_t ttl_ms = args.getTtlMs();
  const std::uint64_t supersedes = args.getSupersedes();
  if (args.getTier() != wire::Tier::PLAINTEXT) {
    return reply(bad_request(id, "only plaintext items can be added so far"));
  }
  if (!(draft->importance >= 0 && draft->importance <= 1)) {
    return reply(bad_request(id, "importance must be between 0 and 1"));
  }
  if (ttl_ms < 0) return reply(bad_request(id, "ttl must not be negative"));
  if (draft->valid_from_ms < 0 || draft->valid_to_ms < 0) {
    return reply(bad_request(id, "valid times must not be negative"));
  }
  if (draft->provenance.session.size() > s_.config.store.max_tag_bytes ||
      draft->provenance.sources.size() > s_.config.store.max_tags) {
    return reply(kernel::error_frame(id, wire::ErrorCode::TOO_LARGE,
                                     "session id or source list longer than the tag limits",
                                     false));
  }
  auto c = new_change(tenant, id, args.getCube(), idempotency_key_, operation_);
  c->prepare = [this, id, draft](const store::ReadTxn&, const store::Cube&,
                                 const Reply& r) -> std::optional<std::string> {
    if (!check_fields(s_, id, &draft->text, &draft->tags, &draft->meta, r)) return std::nullopt;
    if (!is_valid_utf8(draft->provenance.session)) {
      r(bad_request(id, "session id is not valid UTF-8"));
      return std::nullopt;
    }
    return draft->text;
  };
  c->apply = [draft, ttl_ms, supersedes](store::WriteTxn& txn, const store::Cube& cube,
                                         store::Item* out, store::Item* superseded) {
    std::int64_t now = now_ms();
    draft->expires_at_ms = ttl_ms > 0 ? now + ttl_ms : 0;
    return txn.add_item(cube.id, *draft, supersedes, now, out, superseded);
  };
  commit_item_change(s_, std::move(c), std::move(reply));
}

void RequestHandler::update(std::uint32_t tenant, std::uint64_t id, wire::UpdateItem::Reader args,
                            Reply reply) {
  auto patch = std::make_shared<store::ItemPatch>();
  const std::uint64_t item = args.getItemId();
  if (item == 0) return reply(bad_request(id, "item id 0 does not exist"));
  patch->text = std::string(args.getText());
  if (args.getReplaceTags()) patch->tags = copy_texts(args.getTags());
  if (args.getReplaceMeta()) patch->meta = copy_meta(args.getMeta());
  patch->writer = tenant;
  patch->session = args.getSessionId();
  auto c = new_change(tenant, id, args.getCube(), idempotency_key_, operation_);
  c->prepare = [this, id, patch](const store::ReadTxn&, const store::Cube&,
                                 const Reply& r) -> std::optional<std::string> {
    if (!check_fields(s_, id, &*patch->text, patch->tags ? &*patch->tags : nullptr,
                      patch->meta ? &*patch->meta : nullptr, r)) {
      return std::nullopt;
    }
    return *patch->text;
  };
  c->apply = [patch, item](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                           store::Item*) {
    return txn.update_item(cube.id, item, *patch, now_ms(), out);
  };
  commit_item_change(s_, std::move(c), std::move(reply));
}

// The current text of an item (what set_state and remove leave in place).
static std::optional<std::string> head_text(const store::ReadTxn& txn, const store::Cube& cube,
                                            std::uint64_t item, std::uint32_t version,
                                            std::uint64_t request_id, const Reply& reply) {
  store::Item found;
  Status s = txn.get_item(cube.id, item, version, &found);
  if (!s.ok()) {
    reply(status_error(request_id, s));
    return std::nullopt;
  }
  return found.text;
}

void RequestHandler::remove(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                            std::uint64_t item, Reply reply) {
  auto c = new_change(tenant, id, std::move(cube_name), idempotency_key_, operation_);
  c->prepare = [item, id](const store::ReadTxn& txn, const store::Cube& cube, const Reply& r) {
    return head_text(txn, cube, item, 0, id, r);
  };
  c->apply = [tenant, item](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                            store::Item*) {
    return txn.remove_item(cube.id, item, tenant, now_ms(), out);
  };
  commit_item_change(s_, std::move(c), std::move(reply));
}

void RequestHandler::set_state(std::uint32_t tenant, std::uint64_t id, wire::SetState::Reader args,
                               Reply reply) {
  const std::uint64_t item = args.getItemId();
  auto state = static_cast<unsigned>(args.getState());
  if (state > static_cast<unsigned>(store::State::frozen)) {
    return reply(bad_request(id, "the state must be active, archived or frozen"));
  }
  auto c = new_change(tenant, id, args.getCube(), idempotency_key_, operation_);
  c->prepare = [item, id](const store::ReadTxn& txn, const store::Cube& cube, const Reply& r) {
    return head_text(txn, cube, item, 0, id, r);
  };
  c->apply = [tenant, item, state](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                                   store::Item*) {
    return txn.set_state(cube.id, item, static_cast<store::State>(state), tenant, now_ms(), out);
  };
  commit_item_change(s_, std::move(c), std::move(reply));
}

void RequestHandler::rollback(std::uint32_t tenant, std::uint64_t id, wire::Rollback::Reader args,
                              Reply reply) {
  const std::uint64_t item = args.getItemId();
  const std::uint32_t version = args.getVersion();
  if (version == 0) return reply(bad_request(id, "versions are counted from 1"));
  auto c = new_change(tenant, id, args.getCube(), idempotency_key_, operation_);
  c->prepare = [item, version, id](const store::ReadTxn& txn, const store::Cube& cube,
                                   const Reply& r) {
    return head_text(txn, cube, item, version, id, r);
  };
  c->apply = [tenant, item, version](store::WriteTxn& txn, const store::Cube& cube,
                                     store::Item* out, store::Item*) {
    return txn.rollback_item(cube.id, item, version, tenant, now_ms(), out);
  };
  commit_item_change(s_, std::move(c), std::move(reply));
}

void RequestHandler::diff(std::uint32_t tenant, std::uint64_t id, wire::DiffVersions::Reader args,
                          Reply reply) {
  std::string cube_name = args.getCube();
  const std::uint64_t item = args.getItemId();
  const std::uint32_t from = args.getFromVersion(), to = args.getToVersion();
  if (from == 0) return reply(bad_request(id, "versions are counted from 1"));
  s_.run_on_worker([=, this, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    std::vector<store::Item> versions;
    Status s = txn->history(cube.id, item, &versions);
    if (!s.ok()) return reply(status_error(id, s));
    std::uint32_t last = to == 0 ? versions.back().version : to;
    if (from > versions.size() || last > versions.size()) {
      return reply(status_error(id, {store::Errc::not_found,
                                     "item has " + std::to_string(versions.size()) + " versions"}));
    }
    const store::Item& a = versions[from - 1];
    const store::Item& b = versions[last - 1];
    reply(response(id, [&](wire::Response::Builder r) {
      auto d = r.initDiff();
      set_item(d.initFrom(), a);
      set_item(d.initTo(), b);
      d.setTextChanged(a.text != b.text);
      auto missing_from = [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
        std::vector<std::string> out;
        for (const auto& t : x) {
          if (std::find(y.begin(), y.end(), t) == y.end()) out.push_back(t);
        }
        return out;
      };
      auto added = missing_from(b.tags, a.tags), removed = missing_from(a.tags, b.tags);
      auto ta = d.initTagsAdded(static_cast<unsigned>(added.size()));
      for (unsigned i = 0; i < added.size(); ++i) ta.set(i, text(added[i]));
      auto tr = d.initTagsRemoved(static_cast<unsigned>(removed.size()));
      for (unsigned i = 0; i < removed.size(); ++i) tr.set(i, text(removed[i]));
      std::map<std::string, std::pair<const std::string*, const std::string*>> keys;
      for (const auto& m : a.meta) keys[m.key].first = &m.value;
      for (const auto& m : b.meta) keys[m.key].second = &m.value;
      std::erase_if(keys, [](const auto& kv) {
        return kv.second.first && kv.second.second && *kv.second.first == *kv.second.second;
      });
      auto mc = d.initMetaChanges(static_cast<unsigned>(keys.size()));
      unsigned i = 0;
      for (const auto& [key, values] : keys) {
        mc[i].setKey(text(key));
        mc[i].setHadBefore(values.first != nullptr);
        mc[i].setHasAfter(values.second != nullptr);
        if (values.first) mc[i].setBefore(text(*values.first));
        if (values.second) mc[i].setAfter(text(*values.second));
        ++i;
      }
      d.setStateChanged(a.state != b.state);
      d.setValidityChanged(a.valid_from_ms != b.valid_from_ms || a.valid_to_ms != b.valid_to_ms);
    }));
  });
}

void RequestHandler::get(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                         std::uint64_t item, std::uint32_t version, Reply reply) {
  s_.run_on_worker([=, this, cube_name = std::move(cube_name), reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    store::Item found;
    store::AccessStats stats;
    Status s = txn->get_item(cube.id, item, version, &found);
    if (s.ok()) s = txn->access_stats(cube.id, item, &stats);
    if (!s.ok()) return reply(status_error(id, s));
    s_.access.record(cube.id, item, now_ms());
    reply(response(id, [&](wire::Response::Builder r) {
      auto b = r.initItem();
      set_item(b, found);
      set_access(b, stats);
    }));
  });
}

void RequestHandler::history(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                             std::uint64_t item, Reply reply) {
  s_.run_on_worker([=, this, cube_name = std::move(cube_name), reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    std::vector<store::Item> versions;
    Status s = txn->history(cube.id, item, &versions);
    if (!s.ok()) return reply(status_error(id, s));
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initHistory(static_cast<unsigned>(versions.size()));
      for (unsigned i = 0; i < versions.size(); ++i) set_item(list[i], versions[i]);
    }));
  });
}

namespace {

// Reads a Search request's conditions into `q`; returns "" or why they are
// not acceptable (a bad request).
std::string read_search(wire::Search::Reader args, const Config& config, SearchQuery* q,
                        std::vector<std::string>* cube_names, CheckFailure* too_large) {
  cube_names->push_back(args.getCube());
  for (auto c : args.getCubes()) {
    std::string name = c;
    if (std::find(cube_names->begin(), cube_names->end(), name) == cube_names->end())
      cube_names->push_back(std::move(name));
  }
  if (cube_names->size() > 64) return "at most 64 cubes in one search";
  for (const auto& name : *cube_names) {
    if (std::string err = check_cube_name(name); !err.empty()) return err;
  }
  q->text = args.getQuery();
  q->mode = args.getMode();
  if (!q->mode.empty() && !is_search_mode(q->mode))
    return "mode '" + q->mode.substr(0, 32) + "' is unknown (dense, lexical or hybrid)";
  auto& f = q->filter;
  f.all_tags = copy_texts(args.getTags());
  f.any_tags = copy_texts(args.getAnyTags());
  f.meta = copy_meta(args.getMeta());
  *too_large = check_text(q->text, config.store);
  if (!too_large->failed()) *too_large = check_tags(f.all_tags, config.store);
  if (!too_large->failed()) *too_large = check_tags(f.any_tags, config.store);
  if (!too_large->failed()) *too_large = check_meta(f.meta, config.store);
  if (too_large->failed()) return too_large->reason;
  for (auto t : args.getTiers()) {
    switch (t) {
      case wire::Tier::PLAINTEXT:
        f.tiers.push_back("plaintext");
        break;
      case wire::Tier::ACTIVATION:
        f.tiers.push_back("activation");
        break;
      case wire::Tier::PARAMETRIC:
        f.tiers.push_back("parametric");
        break;
      default:
        return "unknown tier in the filter";
    }
  }
  for (auto st : args.getStates()) {
    switch (st) {
      case wire::State::ACTIVE:
        f.states.push_back("active");
        break;
      case wire::State::ARCHIVED:
        f.states.push_back("archived");
        break;
      case wire::State::FROZEN:
        f.states.push_back("frozen");
        break;
      case wire::State::DELETED:
        return "deleted items are never searched (see history)";
      default:
        return "unknown state in the filter";
    }
  }
  if (f.states.empty()) f.states.push_back("active");
  if (args.getIncludeArchived() &&
      std::find(f.states.begin(), f.states.end(), "archived") == f.states.end()) {
    f.states.push_back("archived");
  }
  f.as_of_ms = args.getAsOfMs();
  f.recorded_from_ms = args.getRecordedSinceMs();
  f.recorded_to_ms = args.getRecordedUntilMs();
  f.valid_from_ms = args.getValidSinceMs();
  f.valid_to_ms = args.getValidUntilMs();
  for (std::int64_t t :
       {f.as_of_ms, f.recorded_from_ms, f.recorded_to_ms, f.valid_from_ms, f.valid_to_ms}) {
    if (t < 0) return "times must not be negative";
  }
  if (f.recorded_to_ms != 0 && f.recorded_from_ms >= f.recorded_to_ms)
    return "the recorded time range is empty (since must come before until)";
  if (f.valid_to_ms != 0 && f.valid_from_ms >= f.valid_to_ms)
    return "the valid time range is empty (since must come before until)";
  const float weights[] = {args.getRecencyWeight(), args.getImportanceWeight()};
  for (float w : weights) {
    if (!std::isfinite(w) || w < 0 || w > 100) return "weights must be between 0 and 100";
  }
  float mmr = args.getMmrLambda();
  if (!std::isfinite(mmr) || mmr < 0) return "mmr lambda must be 0 or more";
  set_search_defaults(config.search, q);
  if (weights[0] != 0) q->fusion.recency_weight = weights[0];
  if (weights[1] != 0) q->fusion.importance_weight = weights[1];
  if (mmr != 0) q->fusion.mmr_lambda = mmr;
  return "";
}

}  // namespace

void RequestHandler::search(std::uint32_t tenant, std::uint64_t id, wire::Search::Reader args,
                            Reply reply) {
  auto q = std::make_shared<SearchQuery>();
  q->k = args.getK() == 0 ? kDefaultK : args.getK();
  if (q->k > s_.config.search.max_k) {
    return reply(kernel::error_frame(
        id, wire::ErrorCode::TOO_LARGE,
        "k is larger than max_k (" + std::to_string(s_.config.search.max_k) + ")", false));
  }
  std::vector<std::string> cube_names;
  CheckFailure limit;
  if (std::string err = read_search(args, s_.config, q.get(), &cube_names, &limit); !err.empty()) {
    return reply(limit.failed() ? check_error(id, limit) : bad_request(id, err));
  }
  const bool explain = args.getExplain();
  s_.run_on_worker([=, this, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    if (Status s = s_.store.begin_read(&txn); !s.ok()) return reply(status_error(id, s));
    std::map<store::CubeId, std::string> names;
    for (const auto& name : cube_names) {
      store::Cube cube;
      // Only the tenant's own cubes are found: another tenant's is notFound.
      if (Status s = txn->find_cube(tenant, name, &cube); !s.ok())
        return reply(status_error(id, s));
      names[cube.id] = cube.name;
      q->cubes.push_back(std::move(cube));
    }
    if (q->mode.empty()) {
      q->mode = q->cubes.front().default_retriever;
      if (!is_search_mode(q->mode)) q->mode = "dense";  // cubes made before modes existed
    }
    q->filter.now_ms = now_ms();
    std::vector<SearchHit> hits;
    bool retryable = false;
    if (std::string err = run_search(s_.indexes, *txn, *q, &hits, &retryable); !err.empty()) {
      return reply(kernel::error_frame(
          id, retryable ? wire::ErrorCode::UNAVAILABLE : wire::ErrorCode::INTERNAL,
          "search failed: " + err, retryable));
    }
    struct Found {
      store::Item item;
      store::AccessStats stats;
      const SearchHit* hit;
    };
    std::vector<Found> found;
    found.reserve(hits.size());
    const std::int64_t now = now_ms();
    for (const auto& hit : hits) {
      Found f{{}, {}, &hit};
      // The index may be a commit ahead of this snapshot: skip what it lacks.
      if (!txn->get_item(hit.cube, hit.id, 0, &f.item).ok()) continue;
      if (Status s = txn->access_stats(hit.cube, hit.id, &f.stats); !s.ok()) {
        return reply(status_error(id, s));
      }
      s_.access.record(hit.cube, hit.id, now);
      found.push_back(std::move(f));
    }
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initHits(static_cast<unsigned>(found.size()));
      for (unsigned i = 0; i < found.size(); ++i) {
        auto b = list[i].initItem();
        set_item(b, found[i].item);
        set_access(b, found[i].stats);
        list[i].setScore(found[i].hit->score);
        list[i].setCube(names[found[i].hit->cube]);
        if (!explain) continue;
        const auto& ranks = found[i].hit->ranks;
        auto out = list[i].initRanks(static_cast<unsigned>(ranks.size()));
        for (unsigned j = 0; j < ranks.size(); ++j) {
          out[j].setRetriever(ranks[j].retriever);
          out[j].setRank(ranks[j].rank);
          out[j].setScore(ranks[j].score);
        }
      }
    }));
  });
}

void RequestHandler::plugin_list(std::uint64_t id, Reply reply) {
  auto plugins = s_.plugins.states();
  reply(response(id, [&](wire::Response::Builder r) {
    auto list = r.initPlugins(static_cast<unsigned>(plugins.size()));
    for (unsigned i = 0; i < plugins.size(); ++i) set_plugin(list[i], plugins[i]);
  }));
}

void RequestHandler::plugin_info(std::uint64_t id, std::string name, Reply reply) {
  for (const auto& p : s_.plugins.states()) {
    if (p.manifest.name == name) {
      return reply(response(id, [&](wire::Response::Builder r) { set_plugin(r.initPlugin(), p); }));
    }
  }
  reply(status_error(id, {Errc::not_found, "no plugin named '" + name + "'"}));
}

void RequestHandler::plugin_reload(std::uint64_t id, std::string name, Reply reply) {
  // Loading runs plugin code (create, describe): off the loop.
  s_.run_on_worker([this, id, name = std::move(name), reply = std::move(reply)] {
    s_.plugins.scan();
    auto states = s_.plugins.states();
    auto it = std::find_if(states.begin(), states.end(),
                           [&](const PluginState& p) { return p.manifest.name == name; });
    if (it == states.end()) {
      return reply(status_error(id, {Errc::not_found, "no plugin named '" + name + "'"}));
    }
    if (name == s_.plugins.embedder_name()) {
      std::string model, error;
      auto embedder = s_.plugins.load_embedder(&model, &error);
      if (!embedder) {
        // The running embedder stays; the manifest on disk is what failed.
        s_.plugins.set_state(name, "loaded", "reload failed: " + error);
        return reply(kernel::error_frame(id, wire::ErrorCode::CONFLICT,
                                         "reload failed, the loaded embedder stays: " + error,
                                         false));
      }
      if (model != s_.indexes.embedder_model()) {
        s_.plugins.set_state(name, "loaded", "reload refused: its model changed");
        return reply(kernel::error_frame(id, wire::ErrorCode::CONFLICT,
                                         "the reloaded embedder has model '" + model + "', not '" +
                                             s_.indexes.embedder_model() +
                                             "': existing cubes would not match; restart instead",
                                         false));
      }
      s_.indexes.set_embedder(std::move(embedder), model);
    }
    for (const auto& p : s_.plugins.states()) {
      if (p.manifest.name == name) {
        return reply(
            response(id, [&](wire::Response::Builder r) { set_plugin(r.initPlugin(), p); }));
      }
    }
  });
}

void RequestHandler::snapshot_create(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                                     std::string tag, Reply reply) {
  if (std::string err = check_cube_name(tag); !err.empty()) {
    return reply(bad_request(id, "snapshot tag " + err.substr(err.find("name") + 5)));
  }
  auto snap = std::make_shared<store::Snapshot>();
  s_.commits.submit({
      [=](store::WriteTxn& txn) {
        store::Cube cube;
        Status s = txn.reader().find_cube(tenant, cube_name, &cube);
        if (!s.ok()) return s;
        return txn.create_snapshot(cube.id, tag, tenant, now_ms(), snap.get());
      },
      [id, snap, reply](const Status& s) {
        if (!s.ok()) return reply(status_error(id, s));
        reply(response(id,
                       [&](wire::Response::Builder r) { set_snapshot(r.initSnapshot(), *snap); }));
      },
  });
}

void RequestHandler::snapshot_list(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                                   Reply reply) {
  s_.run_on_worker([=, this, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    std::vector<store::Snapshot> snaps;
    if (Status s = txn->list_snapshots(cube.id, &snaps); !s.ok()) return reply(status_error(id, s));
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initSnapshots(static_cast<unsigned>(snaps.size()));
      for (unsigned i = 0; i < snaps.size(); ++i) set_snapshot(list[i], snaps[i]);
    }));
  });
}

void RequestHandler::snapshot_diff(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                                   std::string from_tag, std::string to_tag, Reply reply) {
  if (from_tag.empty()) return reply(bad_request(id, "name the snapshot to diff from"));
  s_.run_on_worker([=, this, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    store::Snapshot from, to;
    Status s = txn->find_snapshot(cube.id, from_tag, &from);
    if (s.ok() && !to_tag.empty()) s = txn->find_snapshot(cube.id, to_tag, &to);
    if (to_tag.empty()) to.cube_version = cube.head_version;
    std::vector<store::SnapshotChange> changes;
    if (s.ok()) s = txn->diff_cube_versions(cube.id, from.cube_version, to.cube_version, &changes);
    if (!s.ok()) return reply(status_error(id, s));
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initChanges(static_cast<unsigned>(changes.size()));
      for (unsigned i = 0; i < changes.size(); ++i) {
        list[i].setItemId(changes[i].item);
        list[i].setKind(static_cast<wire::ChangeKind>(changes[i].kind));
        list[i].setFromVersion(changes[i].from_version);
        list[i].setToVersion(changes[i].to_version);
        list[i].setText(text(changes[i].text));
      }
    }));
  });
}

}  // namespace memos::kernel
