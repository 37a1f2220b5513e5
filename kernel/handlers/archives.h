// archives.h — export and import of whole cubes as archive streams:
// exportChunk, importBegin, importChunk, importFinish.
//
// Archives carry the plaintext and parametric tiers: adapters travel with
// their files, so a cube moves whole to another machine (an adapter is
// still bound to its base model there). Activation states stay out: they
// belong to one model and are cheap to make again.
//
// Export runs on a worker (archive_export.cpp): each request returns the
// next ~1 MiB of the archive and an opaque cursor, pinned to the cube's
// head version at the first chunk, so a cube larger than memory, and an
// adapter larger than a chunk, stream out consistently.
//
// Import is a session per connection: chunks are parsed and written into a
// hidden staging cube (".import-N": no client can name, list, read or
// write it; find_client_cube) in the writer thread, one chunk at a time.
// Finishing checks the trailer and writes the snapshots; a worker indexes
// the staging cube (so a large import never stalls other tenants' writes);
// then one transaction renames it into place. A truncated, corrupt,
// oversized (store.max_import_mb) or hostile archive leaves no cube behind.
// Imported items get fresh ids and are recorded as the importing tenant's:
// an archive's ids and uids are not trusted. An adapter's file goes to the
// blob store piece by piece as it comes (checked against its digest, and
// against store.max_adapter_mb) and counts against parametric.max_mb. A session whose connection
// closes is abandoned and its staging cube removed; staging cubes left by a
// crash are removed at start.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ipc/schema/memos.capnp.h"
#include "kernel/handlers/dispatch_table.h"
#include "kernel/services.h"
#include "kernel/status.h"

namespace memos::kernel {

class CubeArchives {
 public:
  explicit CubeArchives(const Services& services) : s_(services) {}

  // Serves exportChunk, importBegin, importChunk and importFinish from
  // `table`; this object must outlive it.
  void add_handlers(DispatchTable& table);
  // Loop thread: abandons the connection's import sessions.
  void connection_closed(std::uint64_t connection);

  // Start-up, before serving: removes staging cubes a crash left behind.
  static store::Status remove_stale_staging(store::Store& store, std::size_t* removed);

 private:
  struct Session;
  // Loop thread. Each answers exactly once.
  void export_chunk(const RequestContext& ctx, wire::ExportChunk::Reader args);
  void import_begin(const RequestContext& ctx, wire::ImportBegin::Reader args);
  void import_chunk(const RequestContext& ctx, wire::ImportChunk::Reader args);
  void import_finish(const RequestContext& ctx, std::uint64_t session);
  // Marks the request's session busy with a chunk and hands it out.
  // Errors: not_found (no such session on this connection), bad_request (a
  // chunk is still in the writer).
  Status claim(const RequestContext& ctx, std::uint64_t session, std::shared_ptr<Session>* out);
  // Worker: builds the staging cube's collections; returns the items indexed.
  std::size_t index_staged(const store::Cube& staged);
  // The last step of an import: answers `ctx`.
  void rename_staged(const RequestContext& ctx, std::shared_ptr<Session> session,
                     std::shared_ptr<store::Cube> staged, std::string name, std::size_t items);
  // Ends a session and removes its staging cube and any collections.
  void abandon(const std::shared_ptr<Session>& session);

  const Services& s_;
  std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::uint64_t next_session_ = 1;
};

}  // namespace memos::kernel
