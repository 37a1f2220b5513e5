// sdk/archive_stream.cpp — Client::export_cube and Client::import_cube:
// a cube archive (memos(7), ARCHIVES) streamed over as many requests as it
// takes, each one an ordinary Impl::call, so a cube of any size moves
// without one message holding it. Blocking only: the caller's write and
// read callbacks pace the stream.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "memos/client.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

using sdk::decode_cube;
using sdk::text;
using sdk::wrong_reply;

Result<std::uint64_t> Client::export_cube(const std::string& cube,
                                          const std::function<bool(std::string_view)>& write) {
  struct Chunk {
    std::string data, cursor;
    bool done = false;
  };
  std::string cursor;
  std::uint64_t total = 0;
  for (;;) {
    auto r = impl_
                 ->call<Chunk>(
                     [&](wire::Request::Builder req) {
                       auto x = req.initExportChunk();
                       x.setCube(text(cube));
                       x.setCursor(capnp::Data::Reader(
                           reinterpret_cast<const kj::byte*>(cursor.data()), cursor.size()));
                     },
                     [](const wire::Response::Reader& resp) -> Result<Chunk> {
                       if (!resp.isArchiveChunk()) return wrong_reply<Chunk>();
                       auto c = resp.getArchiveChunk();
                       auto data = c.getData(), next = c.getCursor();
                       return Chunk{
                           std::string(reinterpret_cast<const char*>(data.begin()), data.size()),
                           std::string(reinterpret_cast<const char*>(next.begin()), next.size()),
                           c.getDone()};
                     })
                 .get();
    if (!r) return r.error();
    if (!write(r->data)) return Error{ErrorCode::bad_request, "stopped by the writer", false};
    total += r->data.size();
    if (r->done) return total;
    cursor = std::move(r->cursor);
  }
}

Result<Cube> Client::import_cube(const std::function<std::size_t(char*, std::size_t)>& read,
                                 const std::string& name) {
  auto session = impl_
                     ->call<std::uint64_t>(
                         [&](wire::Request::Builder r) { r.initImportBegin().setName(text(name)); },
                         [](const wire::Response::Reader& r) -> Result<std::uint64_t> {
                           if (!r.isImportSession()) return wrong_reply<std::uint64_t>();
                           return r.getImportSession();
                         })
                     .get();
  if (!session) return session.error();
  std::string buffer(1 << 20, '\0');
  for (;;) {
    std::size_t n = read(buffer.data(), buffer.size());
    if (n == 0) break;
    auto sent = impl_
                    ->call<std::uint64_t>(
                        [&](wire::Request::Builder r) {
                          auto x = r.initImportChunk();
                          x.setSession(*session);
                          x.setData(capnp::Data::Reader(
                              reinterpret_cast<const kj::byte*>(buffer.data()), n));
                        },
                        [](const wire::Response::Reader& r) -> Result<std::uint64_t> {
                          if (!r.isImportProgress()) return wrong_reply<std::uint64_t>();
                          return r.getImportProgress();
                        })
                    .get();
    if (!sent) return sent.error();
  }
  return impl_
      ->call<Cube>([&](wire::Request::Builder r) { r.setImportFinish(*session); }, decode_cube)
      .get();
}

}  // namespace memos
