#include "kernel/request_handler.h"

#include <capnp/message.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "ipc/message.h"
#include "kernel/request_checks.h"

namespace memos::kernel {
namespace {

using store::Errc;
using store::Status;

constexpr std::uint32_t kDefaultK = 10;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

template <class Fill>
Frame response(std::uint64_t id, Fill&& fill) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<wire::Response>();
  r.setId(id);
  fill(r);
  return std::make_shared<kj::Array<capnp::word>>(ipc::encode_frame(message));
}

Frame status_error(std::uint64_t id, const Status& s) {
  wire::ErrorCode code = wire::ErrorCode::INTERNAL;
  bool retryable = false;
  switch (s.code) {
    case Errc::ok:
    case Errc::corrupt:
    case Errc::io:
      break;
    case Errc::not_found:
      code = wire::ErrorCode::NOT_FOUND;
      break;
    case Errc::already_exists:
      code = wire::ErrorCode::ALREADY_EXISTS;
      break;
    case Errc::conflict:
      code = wire::ErrorCode::CONFLICT;
      break;
    case Errc::storage_full:
      code = wire::ErrorCode::STORAGE_FULL;
      retryable = true;
      break;
    case Errc::unavailable:
      code = wire::ErrorCode::UNAVAILABLE;
      retryable = true;
      break;
  }
  return RequestHandler::error_frame(id, code, s.message, retryable);
}

Frame check_error(std::uint64_t id, const CheckFailure& f) {
  return RequestHandler::error_frame(
      id, f.too_large ? wire::ErrorCode::TOO_LARGE : wire::ErrorCode::BAD_REQUEST, f.reason, false);
}

Frame bad_request(std::uint64_t id, const std::string& message) {
  return RequestHandler::error_frame(id, wire::ErrorCode::BAD_REQUEST, message, false);
}

void set_item(wire::Item::Builder b, const store::Item& item) {
  b.setId(item.id);
  b.setVersion(item.version);
  b.setText(text(item.text));
  auto tags = b.initTags(static_cast<unsigned>(item.tags.size()));
  for (unsigned i = 0; i < item.tags.size(); ++i) tags.set(i, text(item.tags[i]));
  auto meta = b.initMeta(static_cast<unsigned>(item.meta.size()));
  for (unsigned i = 0; i < item.meta.size(); ++i) {
    meta[i].setKey(text(item.meta[i].key));
    meta[i].setValue(text(item.meta[i].value));
  }
  b.setCreatedAtMs(item.created_at_ms);
  b.setUpdatedAtMs(item.updated_at_ms);
  b.setDeleted(item.deleted);
}

void set_cube(wire::Cube::Builder b, const store::Cube& cube) {
  b.setId(cube.id);
  b.setName(text(cube.name));
  b.setOwnerUid(cube.owner);
  b.setCreatedAtMs(cube.created_at_ms);
  b.setEmbedder(text(cube.embedder));
  b.setDimension(cube.dimension);
  b.setLiveItems(cube.live_items);
}

Frame item_response(std::uint64_t id, const store::Item& item) {
  return response(id, [&](wire::Response::Builder r) { set_item(r.initItem(), item); });
}

std::vector<std::string> copy_texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.emplace_back(t.cStr(), t.size());
  return out;
}

std::vector<store::MetaEntry> copy_meta(capnp::List<wire::MetaEntry>::Reader list) {
  std::vector<store::MetaEntry> out;
  out.reserve(list.size());
  for (auto m : list) {
    out.push_back({std::string(m.getKey().cStr(), m.getKey().size()),
                   std::string(m.getValue().cStr(), m.getValue().size())});
  }
  return out;
}

Status list_cubes(const store::Store& st, std::uint32_t tenant, std::vector<store::Cube>* out) {
  std::optional<store::ReadTxn> txn;
  Status s = st.begin_read(&txn);
  return s.ok() ? txn->list_cubes(tenant, out) : s;
}

// Opens a read transaction and finds the tenant's cube, or fails with a reply.
bool open_cube(const store::Store& st, std::uint32_t tenant, const std::string& name,
               std::optional<store::ReadTxn>* txn, store::Cube* cube, std::uint64_t id,
               const Reply& reply) {
  Status s = st.begin_read(txn);
  if (s.ok()) s = (*txn)->find_cube(tenant, name, cube);
  if (!s.ok()) {
    reply(status_error(id, s));
    return false;
  }
  return true;
}

}  // namespace

Frame RequestHandler::error_frame(std::uint64_t id, wire::ErrorCode code,
                                  const std::string& message, bool retryable) {
  return response(id, [&](wire::Response::Builder r) {
    auto e = r.initError();
    e.setCode(code);
    e.setMessage(text(message));
    e.setRetryable(retryable);
  });
}

void RequestHandler::handle(std::uint32_t tenant, wire::Request::Reader request, Reply reply) {
  const std::uint64_t id = request.getId();
  auto name_of = [](capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); };
  switch (request.which()) {
    case wire::Request::STATUS:
      return status(tenant, id, std::move(reply));
    case wire::Request::CUBE_CREATE:
      return cube_create(tenant, id, name_of(request.getCubeCreate().getName()), std::move(reply));
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
    }));
  });
}

void RequestHandler::cube_create(std::uint32_t tenant, std::uint64_t id, std::string name,
                                 Reply reply) {
  if (std::string err = check_cube_name(name); !err.empty()) return reply(bad_request(id, err));
  auto created = std::make_shared<store::Cube>();
  std::uint32_t dim = s_.config.search.embedding_dim;
  s_.commits.submit({
      [=](store::WriteTxn& txn) {
        return txn.create_cube(tenant, name, embed::HashEmbedder::kName, dim, now_ms(),
                               created.get());
      },
      [this, id, created, reply](const Status& s) {
        if (!s.ok()) return reply(status_error(id, s));
        s_.indexes.index_for(*created);
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
    reply(response(id, [&](wire::Response::Builder r) { set_cube(r.initCube(), cube); }));
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

// The shared tail of add and update: validation and embedding on a worker,
// then the write in the commit queue, then the index, then the reply.
namespace {

struct ItemWrite {
  std::uint32_t tenant;
  std::uint64_t request_id;
  std::string cube;
  std::uint64_t item_id = 0;  // 0 for add
  std::string text;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::vector<store::MetaEntry>> meta;
};

}  // namespace

static void write_item(const Services& s_, std::shared_ptr<ItemWrite> w, Reply reply) {
  s_.run_on_worker([&s_, w, reply = std::move(reply)] {
    const std::uint64_t id = w->request_id;
    if (auto f = check_text(w->text, s_.config.store); f.failed()) return reply(check_error(id, f));
    if (w->tags) {
      if (auto f = check_tags(*w->tags, s_.config.store); f.failed()) {
        return reply(check_error(id, f));
      }
    }
    if (w->meta) {
      if (auto f = check_meta(*w->meta, s_.config.store); f.failed()) {
        return reply(check_error(id, f));
      }
    }
    store::Cube cube;
    {
      std::optional<store::ReadTxn> txn;
      if (!open_cube(s_.store, w->tenant, w->cube, &txn, &cube, id, reply)) return;
    }
    auto vector =
        std::make_shared<std::vector<float>>(s_.indexes.embedder(cube.dimension)->embed(w->text));
    auto written = std::make_shared<store::Item>();
    s_.commits.submit({
        [w, cube, written](store::WriteTxn& txn) -> Status {
          // The cube may have been removed (or replaced) since it was read.
          store::Cube current;
          Status s = txn.reader().find_cube(w->tenant, w->cube, &current);
          if (!s.ok()) return s;
          if (current.id != cube.id) return {store::Errc::not_found, "cube was replaced; retry"};
          if (w->item_id == 0) {
            return txn.add_item(cube.id, std::move(w->text), std::move(w->tags).value(),
                                std::move(w->meta).value(), now_ms(), written.get());
          }
          return txn.update_item(cube.id, w->item_id, std::move(w->text), std::move(w->tags),
                                 std::move(w->meta), now_ms(), written.get());
        },
        [&s_, id, cube, vector, written, reply](const Status& s) {
          if (!s.ok()) return reply(status_error(id, s));
          s_.indexes.index_for(cube)->upsert(written->id, *vector, written->tags);
          reply(item_response(id, *written));
        },
    });
  });
}

void RequestHandler::add(std::uint32_t tenant, std::uint64_t id, wire::AddItem::Reader args,
                         Reply reply) {
  auto w = std::make_shared<ItemWrite>();
  w->tenant = tenant;
  w->request_id = id;
  w->cube = args.getCube();
  w->text = args.getText();
  w->tags = copy_texts(args.getTags());
  w->meta = copy_meta(args.getMeta());
  write_item(s_, std::move(w), std::move(reply));
}

void RequestHandler::update(std::uint32_t tenant, std::uint64_t id, wire::UpdateItem::Reader args,
                            Reply reply) {
  auto w = std::make_shared<ItemWrite>();
  w->tenant = tenant;
  w->request_id = id;
  w->cube = args.getCube();
  w->item_id = args.getItemId();
  if (w->item_id == 0) return reply(bad_request(id, "item id 0 does not exist"));
  w->text = args.getText();
  if (args.getReplaceTags()) w->tags = copy_texts(args.getTags());
  if (args.getReplaceMeta()) w->meta = copy_meta(args.getMeta());
  write_item(s_, std::move(w), std::move(reply));
}

void RequestHandler::remove(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                            std::uint64_t item, Reply reply) {
  auto tombstone = std::make_shared<store::Item>();
  auto cube = std::make_shared<store::Cube>();
  s_.commits.submit({
      [=](store::WriteTxn& txn) -> Status {
        Status s = txn.reader().find_cube(tenant, cube_name, cube.get());
        if (!s.ok()) return s;
        return txn.remove_item(cube->id, item, now_ms(), tombstone.get());
      },
      [this, id, cube, tombstone, reply](const Status& s) {
        if (!s.ok()) return reply(status_error(id, s));
        s_.indexes.index_for(*cube)->remove(tombstone->id);
        reply(item_response(id, *tombstone));
      },
  });
}

void RequestHandler::get(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                         std::uint64_t item, std::uint32_t version, Reply reply) {
  s_.run_on_worker([=, this, cube_name = std::move(cube_name), reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    store::Item found;
    Status s = txn->get_item(cube.id, item, version, &found);
    if (!s.ok()) return reply(status_error(id, s));
    reply(item_response(id, found));
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

void RequestHandler::search(std::uint32_t tenant, std::uint64_t id, wire::Search::Reader args,
                            Reply reply) {
  std::string cube_name = args.getCube();
  std::string query = args.getQuery();
  std::uint32_t k = args.getK() == 0 ? kDefaultK : args.getK();
  if (k > s_.config.search.max_k) {
    return reply(error_frame(
        id, wire::ErrorCode::TOO_LARGE,
        "k is larger than max_k (" + std::to_string(s_.config.search.max_k) + ")", false));
  }
  std::vector<std::string> tags = copy_texts(args.getTags());
  if (auto f = check_tags(tags, s_.config.store); f.failed()) return reply(check_error(id, f));
  if (auto f = check_text(query, s_.config.store); f.failed()) return reply(check_error(id, f));
  s_.run_on_worker([=, this, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    std::vector<float> vector = s_.indexes.embedder(cube.dimension)->embed(query);
    std::vector<IndexHit> hits;
    try {
      hits = s_.indexes.index_for(cube)->search(vector, k, tags);
    } catch (const std::exception& e) {  // FAISS reports misuse by throwing
      return reply(error_frame(id, wire::ErrorCode::INTERNAL,
                               std::string("search failed: ") + e.what(), false));
    }
    std::vector<std::pair<store::Item, float>> found;
    found.reserve(hits.size());
    for (const auto& hit : hits) {
      store::Item item;
      // The index may be a commit ahead of this snapshot: skip what it lacks.
      if (txn->get_item(cube.id, hit.id, 0, &item).ok())
        found.emplace_back(std::move(item), hit.score);
    }
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initHits(static_cast<unsigned>(found.size()));
      for (unsigned i = 0; i < found.size(); ++i) {
        set_item(list[i].initItem(), found[i].first);
        list[i].setScore(found[i].second);
      }
    }));
  });
}

}  // namespace memos::kernel
