// cube_archives.h — export and import of whole cubes as archive streams.
//
// Export runs on a worker: each request returns the next ~1 MiB of the
// archive and an opaque cursor, pinned to the cube's head version at the
// first chunk, so a cube larger than memory streams out consistently.
//
// Import is a session per connection: chunks are parsed and written into a
// hidden staging cube (".import-N", a name no client can use) in the writer
// thread, one chunk at a time; finishing checks the trailer, writes the
// snapshots and renames the staging cube to its name in one transaction, so
// a truncated, corrupt or hostile archive leaves no cube behind. A session
// whose connection closes is abandoned and its staging cube removed; staging
// cubes left by a crash are removed at start.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kernel/request_handler.h"

namespace memos::kernel {

class CubeArchives {
 public:
  explicit CubeArchives(const Services& services) : s_(services) {}

  // Loop thread. Each replies exactly once.
  void export_chunk(std::uint32_t tenant, std::uint64_t id, std::string cube, std::string cursor,
                    Reply reply);
  void import_begin(std::uint32_t tenant, std::uint64_t connection, std::uint64_t id,
                    std::string name, Reply reply);
  void import_chunk(std::uint32_t tenant, std::uint64_t connection, std::uint64_t id,
                    std::uint64_t session, std::string data, Reply reply);
  void import_finish(std::uint32_t tenant, std::uint64_t connection, std::uint64_t id,
                     std::uint64_t session, Reply reply);
  // Loop thread: abandons the connection's import sessions.
  void connection_closed(std::uint64_t connection);

  // Start-up, before serving: removes staging cubes a crash left behind.
  static store::Status remove_stale_staging(store::Store& store, std::size_t* removed);

 private:
  struct Session;
  std::shared_ptr<Session> find(std::uint32_t tenant, std::uint64_t connection,
                                std::uint64_t session, std::uint64_t id, const Reply& reply);
  void abandon(const std::shared_ptr<Session>& session);

  const Services& s_;
  std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::uint64_t next_session_ = 1;
};

}  // namespace memos::kernel
