#include "memcube/change_summary.h"

#include <map>

#include "memcube/record_codec.h"

namespace memos::store {
namespace {

// Keys of `cubes` are the cube id and those of `items` the cube id then the
// item id, each 8 bytes big-endian (lmdb_util.h's u64_key and item_key).
std::uint64_t be64(std::string_view key, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = at; i < at + 8; ++i) v = (v << 8) | static_cast<unsigned char>(key[i]);
  return v;
}

}  // namespace

Status summarize_changes(const ChangeSet& changes, std::vector<CubeChange>* out) {
  out->clear();
  std::map<CubeId, std::size_t> at;  // cube -> its entry in *out
  auto entry = [&](CubeId cube) -> CubeChange& {
    auto [it, fresh] = at.try_emplace(cube, out->size());
    if (fresh) {
      out->emplace_back();
      out->back().cube = cube;
    }
    return (*out)[it->second];
  };
  for (const Change& c : changes.changes()) {
    if (c.table == TableId::cubes && c.key.size() == 8) {
      CubeChange& e = entry(be64(c.key, 0));
      if (c.kind == ChangeKind::put) {
        Cube cube;
        if (Status s = decode_cube(c.value, &cube); !s.ok()) {
          return {Errc::corrupt, "cube row: " + s.message};
        }
        e.written = true;
      } else if (c.kind == ChangeKind::erase) {
        e.removed = true;
        e.written = false;
        e.heads.clear();
        e.purged.clear();
      }
    } else if (c.table == TableId::items && c.key.size() == 16) {
      CubeChange& e = entry(be64(c.key, 0));
      if (c.kind == ChangeKind::put) {
        Item item;
        if (Status s = decode_item(c.value, &item); !s.ok()) {
          return {Errc::corrupt, "item row: " + s.message};
        }
        e.heads.push_back(std::move(item));
      } else if (c.kind == ChangeKind::erase) {
        e.purged.push_back(be64(c.key, 8));
      }
    }
  }
  return {};
}

}  // namespace memos::store
