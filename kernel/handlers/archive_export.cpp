// archive_export.cpp — CubeArchives::export_chunk: a cube's archive, a
// chunk per request, resumed from an opaque cursor (archives.h).
//
// Two passes over the cube as it was at the first chunk (its head version
// then, `pinned`): the plaintext items' versions in key order, then the
// parametric items' versions in id order, each adapter file streamed in
// pieces just before the first version that names it. The cursor says
// where the export stands, mid-file included, so a chunk never holds more
// than about one budget of bytes whatever the size of an adapter.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/archives.h"
#include "memcube/archive.h"
#include "memcube/blob_store.h"
#include "memcube/le_bytes.h"

namespace memos::kernel {
namespace {

using store::Errc;
using store::get_le;
using store::put_le;

constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::uint8_t kCursorFormat = 2;

enum class Pass : std::uint8_t { plaintext = 0, parametric = 1 };

// Where an export stands between chunks; opaque to the client.
struct ExportCursor {
  std::uint64_t cube = 0;
  std::uint64_t pinned = 0;  // the head version the export shows
  store::ArchiveWriter::State writer;
  Pass pass = Pass::plaintext;
  // Pass 1: the last parametric version sent, and how much of the next
  // version's file went out already (`blob_sent` bytes of `blob`).
  store::ItemId item = 0;
  std::uint32_t version = 0;
  std::uint64_t blob_sent = 0;
  store::BlobId blob{};
  std::string position;  // pass 0: of the last version sent
};

constexpr std::size_t kCursorFixed = 1 + 8 + 8 + 4 + 8 + 8 + 8 + 1 + 8 + 4 + 8 + 32;
constexpr std::size_t kPositionBytes = 12;  // scan_versions' position

std::string encode_cursor(const ExportCursor& c) {
  std::string out(1, static_cast<char>(kCursorFormat));
  put_le(&out, c.cube, 8);
  put_le(&out, c.pinned, 8);
  put_le(&out, c.writer.crc, 4);
  put_le(&out, c.writer.versions, 8);
  put_le(&out, c.writer.snapshots, 8);
  put_le(&out, c.writer.blobs, 8);
  out.push_back(static_cast<char>(c.pass));
  put_le(&out, c.item, 8);
  put_le(&out, c.version, 4);
  put_le(&out, c.blob_sent, 8);
  out.append(c.blob.begin(), c.blob.end());
  out += c.position;
  return out;
}

bool decode_cursor(std::string_view s, ExportCursor* c) {
  if (s.size() != kCursorFixed && s.size() != kCursorFixed + kPositionBytes) return false;
  if (static_cast<std::uint8_t>(s[0]) != kCursorFormat) return false;
  c->cube = get_le(s, 1, 8);
  c->pinned = get_le(s, 9, 8);
  c->writer.crc = static_cast<std::uint32_t>(get_le(s, 17, 4));
  c->writer.versions = get_le(s, 21, 8);
  c->writer.snapshots = get_le(s, 29, 8);
  c->writer.blobs = get_le(s, 37, 8);
  const auto pass = static_cast<std::uint8_t>(s[45]);
  if (pass > 1) return false;
  c->pass = static_cast<Pass>(pass);
  c->item = get_le(s, 46, 8);
  c->version = static_cast<std::uint32_t>(get_le(s, 54, 4));
  c->blob_sent = get_le(s, 58, 8);
  std::copy_n(s.data() + 66, c->blob.size(), c->blob.begin());
  c->position = std::string(s.substr(kCursorFixed));
  return true;
}

// One chunk's work: what it appends to `out`, within `budget` bytes (one
// frame may run past it).
class ChunkWriter {
 public:
  ChunkWriter(const store::ReadTxn& txn, store::BlobStore* blobs, const store::Cube& cube,
              ExportCursor& cursor, std::size_t budget, std::string& out)
      : txn_(txn),
        blobs_(blobs),
        cube_(cube),
        cursor_(cursor),
        budget_(budget),
        out_(out),
        writer_(cursor.writer) {}

  // Errors: corrupt, io, conflict (an adapter's file went away or changed
  // during the export), internal (an adapter's file is damaged).
  Status plaintext(bool* done);
  Status parametric(bool* done);
  void finish(const std::vector<store::Snapshot>& snapshots);
  const store::ArchiveWriter::State& state() const { return writer_.state(); }
  store::ArchiveWriter& writer() { return writer_; }

 private:
  bool full() const { return out_.size() >= budget_; }
  // Sends the rest of `item`'s file from cursor_.blob_sent; `sent` says
  // whether all of it went.
  Status send_blob(const store::Item& item, bool* sent);

  const store::ReadTxn& txn_;
  store::BlobStore* blobs_;
  const store::Cube& cube_;
  ExportCursor& cursor_;
  std::size_t budget_;
  std::string& out_;
  store::ArchiveWriter writer_;
};

Status ChunkWriter::plaintext(bool* done) {
  store::Status st_access;
  store::Status st = txn_.scan_versions(
      cube_.id, cursor_.position, cursor_.pinned,
      [&](const store::Item& item) {
        // The adapters follow in the second pass.
        if (item.tier == store::Tier::parametric) return true;
        // An item's strength travels with it (scheduler/strength.h).
        if (item.version == 1) {
          store::AccessStats stats;
          if (st_access = txn_.access_stats(cube_.id, item.id, &stats); !st_access.ok())
            return false;
          if (!(stats == store::AccessStats{})) writer_.access(item.id, stats, &out_);
        }
        writer_.version(item, &out_);
        return !full();
      },
      &cursor_.position, done);
  if (st.ok()) st = st_access;
  return Status::from(st);
}

Status ChunkWriter::send_blob(const store::Item& item, bool* sent) {
  const store::Parametric& p = *item.param;
  if (cursor_.blob_sent == 0) {
    // Checked before its first byte goes: a damaged file is this daemon's
    // fault, said here, not an import's puzzle later.
    std::uint64_t size = 0;
    store::Status s = blobs_ ? blobs_->make_local(p.blob, p.size)
                             : store::Status{Errc::not_found, "no blob store"};
    if (s.ok()) s = blobs_->check(p.blob, &size);
    if (s.code == Errc::not_found) {
      return Status::conflict("adapter '" + p.name + "' lost its file during the export");
    }
    if (!s.ok() || size != p.size) {
      return Status::internal("adapter '" + p.name + "' version " + std::to_string(item.version) +
                              ": its file is damaged (" +
                              (s.ok() ? std::string("size differs") : s.message) + ")");
    }
    cursor_.blob = p.blob;
  } else if (cursor_.blob != p.blob) {
    return Status::conflict("the cube changed during the export");
  }
  std::string bytes;
  while (cursor_.blob_sent < p.size) {
    if (full()) {
      *sent = false;
      return {};
    }
    const auto piece =
        static_cast<std::size_t>(std::min<std::uint64_t>(budget_, p.size - cursor_.blob_sent));
    if (store::Status s = blobs_->read_at(p.blob, cursor_.blob_sent, piece, &bytes); !s.ok()) {
      return s.code == Errc::not_found
                 ? Status::conflict("adapter '" + p.name + "' lost its file during the export")
                 : Status::from(s);
    }
    if (bytes.size() != piece) {
      return Status::conflict("adapter '" + p.name + "''s file changed during the export");
    }
    writer_.blob_piece({p.blob, cursor_.blob_sent, p.size, bytes}, &out_);
    cursor_.blob_sent += piece;
  }
  *sent = true;
  return {};
}

Status ChunkWriter::parametric(bool* done) {
  *done = false;
  std::vector<store::ItemId> ids;
  if (store::Status s = txn_.param_items(cube_.id, &ids); !s.ok()) return Status::from(s);
  auto first = std::lower_bound(ids.begin(), ids.end(), cursor_.item);
  for (auto id = first; id != ids.end(); ++id) {
    std::vector<store::Item> versions;
    store::Status s = txn_.history(cube_.id, *id, &versions);
    if (s.code == Errc::not_found) continue;  // purged since the export began
    if (!s.ok()) return Status::from(s);
    for (std::size_t i = 0; i < versions.size(); ++i) {
      const store::Item& v = versions[i];
      if (v.cube_version > cursor_.pinned) break;  // later than the export shows
      if (*id == cursor_.item && v.version <= cursor_.version) continue;
      if (full()) return {};
      if (!v.param) return Status::internal("a parametric item's version has no adapter");
      // A version naming its predecessor's file does not carry it again.
      if (i == 0 || versions[i - 1].param->blob != v.param->blob) {
        bool sent = false;
        if (Status st = send_blob(v, &sent); !st.ok() || !sent) return st;
      }
      writer_.version(v, &out_);
      cursor_.item = *id;
      cursor_.version = v.version;
      cursor_.blob_sent = 0;
      cursor_.blob = {};
    }
  }
  *done = true;
  return {};
}

void ChunkWriter::finish(const std::vector<store::Snapshot>& snapshots) {
  for (const auto& snap : snapshots) {
    if (snap.cube_version <= cursor_.pinned) writer_.snapshot(snap, &out_);
  }
  writer_.trailer(&out_);
}

}  // namespace

void CubeArchives::export_chunk(const RequestContext& ctx, wire::ExportChunk::Reader args) {
  std::string cube_name = exact(args.getCube());
  auto cursor_data = args.getCursor();
  std::string cursor_bytes(reinterpret_cast<const char*>(cursor_data.begin()), cursor_data.size());
  s_.run_on_worker([this, ctx, cube_name = std::move(cube_name),
                    cursor_bytes = std::move(cursor_bytes)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s_, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    ExportCursor cursor;
    std::string out;
    if (cursor_bytes.empty()) {
      cursor.cube = cube.id;
      cursor.pinned = cube.head_version;
    } else if (!decode_cursor(cursor_bytes, &cursor)) {
      return ctx.fail(Status::bad_request("bad export cursor"));
    } else if (cursor.cube != cube.id) {
      return ctx.fail(Status::conflict("the cube was replaced during the export"));
    }
    const std::size_t budget = std::min(kChunkBytes, s_.config.ipc.max_message_bytes / 4);
    ChunkWriter chunk(*txn, s_.blobs, cube, cursor, budget, out);
    if (cursor_bytes.empty()) {
      chunk.writer().header(&out);
      chunk.writer().manifest(
          {cube.name, cube.embedder, cube.dimension, cube.created_at_ms, cursor.pinned, now_ms(),
           cube.live_items, cube.default_retriever, cube.language},
          &out);
    }
    bool done = false;
    Status st;
    if (cursor.pass == Pass::plaintext) {
      st = chunk.plaintext(&done);
      if (st.ok() && done) cursor.pass = Pass::parametric;
    }
    if (st.ok() && cursor.pass == Pass::parametric) st = chunk.parametric(&done);
    if (st.ok() && done) {
      std::vector<store::Snapshot> snapshots;
      st = Status::from(txn->list_snapshots(cube.id, &snapshots));
      if (st.ok()) chunk.finish(snapshots);
    }
    if (!st.ok()) return ctx.fail(st);
    cursor.writer = chunk.state();
    std::string next = encode_cursor(cursor);
    ctx.respond([&](wire::Response::Builder r) {
      auto reply = r.initArchiveChunk();
      reply.setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(out.data()), out.size()));
      reply.setCursor(
          capnp::Data::Reader(reinterpret_cast<const kj::byte*>(next.data()), next.size()));
      reply.setDone(done);
    });
  });
}

}  // namespace memos::kernel
