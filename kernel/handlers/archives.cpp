#include "kernel/handlers/archives.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/param_write.h"
#include "kernel/index_set.h"
#include "kernel/policy_use.h"
#include "kernel/quota.h"
#include "kernel/request_checks.h"
#include "memcube/archive.h"
#include "memcube/blob_store.h"

namespace memos::kernel {
namespace {

using store::Errc;

constexpr std::size_t kMaxSessionsPerConnection = 4;
constexpr std::string_view kStagingPrefix = ".import-";
// A cube's version counter advances once per item version written: no real
// cube comes near 2^48, and a crafted archive's counter must leave room
// before it wraps (snapshots and diffs order by it).
constexpr std::uint64_t kMaxHeadVersion = std::uint64_t{1} << 48;

// Archive problems are the client's input being wrong, not a daemon fault.
Status import_error(const store::Status& s) {
  if (s.code == Errc::corrupt) return Status::bad_request(s.message);
  return Status::from(s);
}

}  // namespace

// The parse state of an import; a value, so a chunk works on a copy that is
// kept only once its transaction commits (and can be re-run if the writer
// has to retry after growing the map).
struct ImportState {
  explicit ImportState(std::size_t max_frame) : reader(max_frame) {}
  store::ArchiveReader reader;
  std::optional<store::ArchiveManifest> manifest;
  store::CubeId cube = 0;
  std::vector<store::Item> current;  // versions of the item being read
  std::vector<store::Snapshot> snapshots;
  std::uint64_t versions = 0;
  std::uint64_t bytes = 0;  // of the archive so far (store.max_import_mb bounds it)
  // The archive's item ids and the fresh ones they were given here, so the
  // items' sources (earlier items: ids ascend) point within the new cube.
  std::unordered_map<store::ItemId, store::ItemId> ids;
  // The statistics announced for the next item (its strength).
  std::optional<std::pair<store::ItemId, store::AccessStats>> access;
  // The adapter file being received, or received whole for the version
  // that follows. Shared by the copies: a chunk run again writes the same
  // pieces, which the upload skips (blob_store.h).
  std::shared_ptr<store::BlobUpload> blob;
};

struct CubeArchives::Session {
  std::uint64_t id;
  std::uint32_t tenant;
  std::uint64_t connection;
  std::string target;   // empty: the archive's own name
  std::string staging;  // ".import-<id>"
  ImportState state;
  bool busy = false;  // a chunk is in the writer
};

namespace {

// Writes the buffered versions of one item under a fresh id, its sources
// pointed at the new ids (a source outside the archive does not exist here
// and is dropped). An adapter's file, put in the blob store as it came, is
// checked to be there still: garbage collection spares an unreferenced file
// for store.blob_gc_grace_s, and a client may pause longer between chunks.
store::Status flush_item(ImportState& work, store::WriteTxn& txn, const store::BlobStore* blobs) {
  if (work.current.empty()) return {};
  for (const store::Item& v : work.current) {
    if (v.param && (!blobs || !blobs->contains(v.param->blob))) {
      return {Errc::conflict, "adapter '" + v.param->name +
                                  "''s file was collected while the import paused; import again"};
    }
  }
  const store::ItemId archive_id = work.current.front().id;
  // Plaintext and parametric items are ordered apart (archive.h): an id
  // that came twice would tie sources to the wrong item.
  if (work.ids.contains(archive_id)) return {Errc::corrupt, "archive has two items of one id"};
  for (store::Item& v : work.current) {
    std::vector<store::ItemId> sources;
    for (store::ItemId source : v.provenance.sources) {
      if (auto it = work.ids.find(source); it != work.ids.end()) sources.push_back(it->second);
    }
    v.provenance.sources = std::move(sources);
  }
  store::Status s = txn.import_item(work.cube, &work.current, now_ms());
  if (s.ok()) work.ids[archive_id] = work.current.front().id;
  if (s.ok() && work.access && work.access->first == archive_id)
    s = txn.put_access_stats(work.cube, work.current.front().id, work.access->second);
  work.access.reset();
  work.current.clear();
  return s;
}

// An adapter's record as an archive gives it: sound names and numbers (the
// file itself was checked against its digest; the executor checks it
// against its model when a chat first loads it).
store::Status check_imported_param(const store::Parametric& p, std::string* why) {
  store::BlobId model_digest;
  if (p.kind != "lora" && p.kind != "cvec") {
    *why = "an adapter of an unknown kind";
  } else if (Status st = check_adapter_name(p.name); !st.ok()) {
    *why = st.message;
  } else if (!check_scale(p.scale).ok() || !std::isfinite(p.alpha)) {
    *why = "an adapter with an impossible scale or alpha";
  } else if (p.size == 0 || !store::from_hex(p.base_model, &model_digest) ||
             p.architecture.size() > 64 || p.origin.size() > 256) {
    *why = "an adapter record that makes no sense";
  } else {
    return {};
  }
  return {Errc::corrupt, "archive holds " + *why};
}

// Where and for whom an import writes, and within which bounds.
struct ImportTarget {
  std::uint32_t tenant;
  const std::string& staging;
  const policies::TenantPolicy& policy;
  const StoreConfig& limits;
  store::BlobStore* blobs;
  const std::string& model;  // the embedder's, at `dimension`
  std::uint32_t dimension;
};

// Writes what the reader hands over into the staging cube, within `txn`.
// What an archive says about who wrote it is not trusted: every version and
// snapshot is recorded as the importing tenant's.
// Archives hold texts, not vectors: the cube is embedded by this daemon's
// embedder, whichever embedded it where it was exported. Adapter files go
// to the blob store as they come, each before the versions that reference
// it are written; the tenant's policy must allow each tier imported.
store::ArchiveReader::Sink import_sink(ImportState& work, store::WriteTxn& txn,
                                       const ImportTarget& to) {
  auto flush = [&work, &txn, &to]() { return flush_item(work, txn, to.blobs); };
  auto bad = [](const std::string& why) { return store::Status{Errc::corrupt, "archive " + why}; };
  return {
      [&work, &txn, &to, bad](const store::ArchiveManifest& m) -> store::Status {
        if (m.dimension < 16 || m.dimension > 4096) return bad("has an impossible dimension");
        if (m.head_version > kMaxHeadVersion) return bad("has an impossible head version");
        if (!m.default_retriever.empty() && !parse_search_mode(m.default_retriever))
          return bad("names an unknown retriever");
        if (!check_language(m.language).ok()) return bad("names an unknown language");
        work.manifest = m;
        store::Cube cube;
        store::Status s = txn.create_cube(
            to.tenant, to.staging, to.model, to.dimension, m.created_at_ms, &cube,
            m.default_retriever.empty() ? to_string(SearchMode::dense) : m.default_retriever,
            m.language);
        work.cube = cube.id;
        return s;
      },
      [&work, &to, flush, bad](store::Item item) -> store::Status {
        // Ids from the future would run ahead of every id issued later.
        auto horizon = static_cast<std::uint64_t>(now_ms() + 86'400'000) << 16;
        if (item.id == 0 || item.id > horizon) return bad("has an impossible item id");
        // The reader hands over plaintext and parametric versions only.
        if (Status st = check_tier(to.policy, item.tier); !st.ok())
          return {Errc::permission_denied, st.message};
        if (item.tier == store::Tier::parametric) {
          std::string why;
          if (store::Status s = check_imported_param(*item.param, &why); !s.ok()) return s;
          // The reader saw the file come whole just before, or named by
          // the item's previous version, whose upload finished then.
          if (work.blob && item.param->blob == work.blob->id() && !work.blob->finished()) {
            return bad("holds an adapter whose file did not arrive whole");
          }
          work.blob.reset();
        }
        if (item.cube_version == 0 || item.cube_version > work.manifest->head_version)
          return bad("has an item version outside its cube's versions");
        item.provenance.writer = to.tenant;
        for (const Status& f : {check_text(item.text, to.limits), check_tags(item.tags, to.limits),
                                check_meta(item.meta, to.limits),
                                check_session(item.provenance.session, to.limits)}) {
          if (!f.ok()) return bad("item: " + f.message);
        }
        if (!work.current.empty() && work.current.back().id != item.id) {
          if (store::Status s = flush(); !s.ok()) return s;
        }
        work.current.push_back(std::move(item));
        ++work.versions;
        return {};
      },
      [&work, &to, flush, bad](store::Snapshot snap) -> store::Status {
        if (!check_snapshot_tag(snap.tag).ok()) return bad("has a bad snapshot tag");
        if (snap.cube_version > work.manifest->head_version)
          return bad("has a snapshot past its cube's head version");
        snap.created_by = to.tenant;
        if (store::Status s = flush(); !s.ok()) return s;
        work.snapshots.push_back(std::move(snap));
        return {};
      },
      // Ahead of the item's versions: the item before it is complete.
      [&work, flush](store::ItemId item, const store::AccessStats& stats) -> store::Status {
        if (store::Status s = flush(); !s.ok()) return s;
        work.access = {item, stats};
        return {};
      },
      // Ahead of the version that names it: the item before it may be
      // complete, and its file must be in place before it is referenced.
      [&work, &to, bad](const store::BlobPiece& piece) -> store::Status {
        if (piece.offset == 0) {
          if (!to.blobs) return bad("holds adapters, and this memosd keeps no blob store");
          if (piece.total > (to.limits.max_adapter_mb << 20)) {
            return bad("holds an adapter larger than store.max_adapter_mb (" +
                       std::to_string(to.limits.max_adapter_mb) + " MiB)");
          }
          std::unique_ptr<store::BlobUpload> upload;
          if (store::Status s = to.blobs->begin_upload(piece.digest, piece.total, &upload); !s.ok())
            return s;
          work.blob = std::move(upload);
        }
        if (store::Status s = work.blob->write(piece.offset, piece.bytes); !s.ok()) return s;
        if (piece.offset + piece.bytes.size() < piece.total) return {};
        return work.blob->finish();
      },
  };
}

}  // namespace

void CubeArchives::import_begin(const RequestContext& ctx, wire::ImportBegin::Reader args) {
  std::string name = exact(args.getName());
  if (!name.empty()) {
    if (Status st = check_cube_name(name); !st.ok()) return ctx.fail(st);
  }
  std::lock_guard lock(mutex_);
  std::size_t open = 0;
  for (const auto& [sid, session] : sessions_) open += session->connection == ctx.connection;
  if (open >= kMaxSessionsPerConnection) {
    return ctx.fail({Code::busy, "too many imports open on this connection", true});
  }
  std::uint64_t sid = next_session_++;
  auto session =
      std::make_shared<Session>(Session{sid, ctx.tenant, ctx.connection, std::move(name),
                                        std::string(kStagingPrefix) + std::to_string(sid),
                                        ImportState(s_.config.ipc.max_message_bytes)});
  sessions_.emplace(sid, session);
  ctx.respond([&](wire::Response::Builder r) { r.setImportSession(sid); });
}

Status CubeArchives::claim(const RequestContext& ctx, std::uint64_t session,
                           std::shared_ptr<Session>* out) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(session);
  // Sessions belong to their connection: another one cannot drive them.
  if (it == sessions_.end() || it->second->tenant != ctx.tenant ||
      it->second->connection != ctx.connection) {
    return Status::not_found("no such import session on this connection");
  }
  if (it->second->busy)
    return Status::bad_request("send the next chunk after the previous one is answered");
  it->second->busy = true;
  *out = it->second;
  return {};
}

void CubeArchives::import_chunk(const RequestContext& ctx, wire::ImportChunk::Reader args) {
  std::shared_ptr<Session> session;
  if (Status st = claim(ctx, args.getSession(), &session); !st.ok()) return ctx.fail(st);
  auto data = args.getData();
  const std::uint64_t limit = s_.config.store.max_import_mb << 20;
  if (session->state.bytes + data.size() > limit) {
    abandon(session);
    return ctx.fail(Status::too_large("the archive is larger than store.max_import_mb (" +
                                      std::to_string(s_.config.store.max_import_mb) + " MiB)"));
  }
  auto bytes =
      std::make_shared<std::string>(reinterpret_cast<const char*>(data.begin()), data.size());
  auto result = std::make_shared<std::optional<ImportState>>();
  s_.commits.submit({
      .apply =
          [this, session, bytes, result, ctx](store::WriteTxn& txn) {
            ImportState work = session->state;
            work.bytes += bytes->size();
            // An import counts against the tenant's bounds as adds do (the
            // staging cube is one of its cubes from the first chunk).
            store::Status s = within_quota(txn, session->tenant, *ctx.policy, [&] {
              return work.reader.feed(
                  *bytes, import_sink(work, txn,
                                      {session->tenant, session->staging, *ctx.policy,
                                       s_.config.store, s_.blobs, s_.indexes.embedder_model(),
                                       s_.config.search.embedding_dim}));
            });
            if (s.ok()) *result = std::move(work);
            return s;
          },
      .done =
          [this, session, result, ctx](const store::Status& s) {
            if (!s.ok()) {
              abandon(session);
              return ctx.fail(import_error(s));
            }
            std::uint64_t versions = (*result)->versions;
            {
              std::lock_guard lock(mutex_);
              session->state = std::move(**result);
              session->busy = false;
            }
            ctx.respond([&](wire::Response::Builder r) { r.setImportProgress(versions); });
          },
      .shard = s_.store.shard_of(session->tenant),
  });
}

// An import ends in three steps, so that no tenant's writes wait on it:
// the writer completes the staging cube (the last items, the snapshots); a
// worker indexes it while it is still invisible to clients (embedding a
// large cube takes seconds); then the writer renames it into place.
void CubeArchives::import_finish(const RequestContext& ctx, std::uint64_t session_id) {
  std::shared_ptr<Session> session;
  if (Status st = claim(ctx, session_id, &session); !st.ok()) return ctx.fail(st);
  auto staged = std::make_shared<store::Cube>();
  auto name = std::make_shared<std::string>();
  s_.commits.submit({
      .apply = [this, session, staged, name, ctx](store::WriteTxn& txn) -> store::Status {
        ImportState work = session->state;
        store::Status s = work.reader.finish();
        if (!s.ok()) return s;
        // The last item's versions are still buffered.
        s = within_quota(txn, session->tenant, *ctx.policy,
                         [&] { return flush_item(work, txn, s_.blobs); });
        if (!s.ok()) return s;
        if ((s = txn.finish_import(work.cube, work.manifest->head_version, work.snapshots));
            !s.ok()) {
          return s;
        }
        *name = session->target.empty() ? work.manifest->cube_name : session->target;
        if (Status bad = check_cube_name(*name); !bad.ok()) {
          return {Errc::corrupt, "archive names its cube badly: " + bad.message};
        }
        // A name already taken fails now, before the indexing.
        store::Cube taken;
        if ((s = txn.reader().find_cube(session->tenant, *name, &taken)).ok()) {
          return {Errc::already_exists, "cube '" + *name + "' already exists"};
        }
        return txn.reader().find_cube(session->tenant, session->staging, staged.get());
      },
      .done =
          [this, session, staged, name, ctx](const store::Status& s) {
            if (!s.ok()) {
              abandon(session);
              return ctx.fail(import_error(s));
            }
            s_.run_on_worker([this, session, staged, name, ctx] {
              std::size_t items = index_staged(*staged);
              rename_staged(ctx, session, staged, *name, items);
            });
          },
      .shard = s_.store.shard_of(session->tenant),
  });
}

std::size_t CubeArchives::index_staged(const store::Cube& staged) {
  std::optional<store::ReadTxn> txn;
  std::size_t items = 0;
  Status built = Status::from(s_.store.begin_read(&txn));
  if (built.ok()) built = s_.indexes.build(*txn, staged, &items);
  // The cube is whole in the store; its indexes are rebuilt at the next
  // start (a collection not covering the head version is).
  if (!built.ok()) spdlog::error("indexing imported cube {}: {}", staged.name, built.message);
  return items;
}

void CubeArchives::rename_staged(const RequestContext& ctx, std::shared_ptr<Session> session,
                                 std::shared_ptr<store::Cube> staged, std::string name,
                                 std::size_t items) {
  auto cube = std::make_shared<store::Cube>();
  s_.commits.submit({
      .apply =
          [session, name, cube](store::WriteTxn& txn) {
            return txn.rename_cube(session->tenant, session->staging, name, cube.get());
          },
      .done =
          [this, session, staged, cube, items, ctx](const store::Status& s) {
            if (!s.ok()) {
              // Abandoned while it was indexed (its connection closed), or the
              // name was taken meanwhile: the collections just built go too.
              s_.indexes.drop(staged->id);
              abandon(session);
              return ctx.fail(import_error(s));
            }
            {
              std::lock_guard lock(mutex_);
              sessions_.erase(session->id);
            }
            spdlog::info("imported cube {} ({} items indexed)", cube->name, items);
            ctx.respond([&](wire::Response::Builder r) { set_cube(r.initCube(), *cube); });
          },
      .shard = s_.store.shard_of(session->tenant),
  });
}

void CubeArchives::abandon(const std::shared_ptr<Session>& session) {
  {
    std::lock_guard lock(mutex_);
    sessions_.erase(session->id);
  }
  std::uint32_t tenant = session->tenant;
  std::string staging = session->staging;
  auto removed = std::make_shared<store::Cube>();
  s_.commits.submit({
      .apply =
          [tenant, staging, removed](store::WriteTxn& txn) {
            store::Status s = txn.remove_cube(tenant, staging, true, removed.get());
            return s.code == Errc::not_found ? store::Status{} : s;
          },
      .done =
          [this, staging, removed](const store::Status& s) {
            if (!s.ok())
              return spdlog::warn("removing abandoned import {}: {}", staging, s.message);
            if (removed->id != 0) s_.indexes.drop(removed->id);
          },
      .frees_space = true,
      .shard = s_.store.shard_of(tenant),
  });
}

void CubeArchives::connection_closed(std::uint64_t connection) {
  std::vector<std::shared_ptr<Session>> gone;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [sid, session] : sessions_) {
      if (session->connection == connection) gone.push_back(session);
    }
  }
  for (const auto& session : gone) abandon(session);
}

void CubeArchives::add_handlers(DispatchTable& table) {
  using R = wire::Request;
  table.add(R::EXPORT_CHUNK,
            [this](const RequestContext& c, R::Reader r) { export_chunk(c, r.getExportChunk()); });
  table.add(R::IMPORT_BEGIN,
            [this](const RequestContext& c, R::Reader r) { import_begin(c, r.getImportBegin()); });
  table.add(R::IMPORT_CHUNK,
            [this](const RequestContext& c, R::Reader r) { import_chunk(c, r.getImportChunk()); });
  table.add(R::IMPORT_FINISH, [this](const RequestContext& c, R::Reader r) {
    import_finish(c, r.getImportFinish());
  });
}

store::Status CubeArchives::remove_stale_staging(store::Store& store, std::size_t* removed) {
  *removed = 0;
  std::optional<store::WriteTxn> txn;
  store::Status s = store.begin_write(&txn);
  if (!s.ok()) return s;
  std::vector<store::Cube> cubes;
  if ((s = txn->reader().list_all_cubes(&cubes)); !s.ok()) return s;
  for (const auto& cube : cubes) {
    if (!cube.name.starts_with(kStagingPrefix)) continue;
    store::Cube gone;
    if ((s = txn->remove_cube(cube.owner, cube.name, true, &gone)); !s.ok()) return s;
    ++*removed;
  }
  return *removed ? txn->commit() : store::Status{};
}

}  // namespace memos::kernel
