// The exact-text index (store.h): table `text_hashes`, which finds a cube's
// live items by the hash of their text, so an add can tell a duplicate
// without reading the cube. Kept in step with the heads by put_item (every
// add, update, state change, rollback, removal and TTL expiry), import_item,
// retention's purge (a purged item is a tombstone: it has no row) and
// remove_cube; built from the heads when a schema 2 store is opened.
#include <lmdb.h>

#include <string>

#include "memcube/blob_store.h"
#include "memcube/lmdb_util.h"
#include "memcube/record_codec.h"
#include "memcube/store.h"
#include "memcube/store_tables.h"

namespace memos::store {
namespace {

// 16 bytes of the text's SHA-256: a collision is astronomically unlikely,
// and a candidate's text is compared anyway, so a hash never decides alone.
constexpr std::size_t kTextHashBytes = 16;

// cube + the text's hash: the prefix of every row of items with that text.
std::string text_prefix(CubeId cube, std::string_view text) {
  std::string k = u64_key(cube);
  const BlobId digest = sha256(text);
  k.append(reinterpret_cast<const char*>(digest.data()), kTextHashBytes);
  return k;
}

std::string text_key(CubeId cube, std::string_view text, ItemId id) {
  std::string k = text_prefix(cube, text);
  put_be(k, id, 8);
  return k;
}

// The heads an add is compared with: every one not deleted (active,
// archived or frozen), as the cube's live count counts them.
bool indexed(const Item& head) {
  return !head.deleted();
}

}  // namespace

Status ReadTxn::find_live_text(CubeId cube, std::string_view text, ItemId* out) const {
  const std::string prefix = text_prefix(cube, text);
  Cursor cursor(txn_, tables().text_hashes);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  *out = 0;
  Status s = cursor.scan_prefix(prefix, [&](std::string_view k, std::string_view) -> Status {
    if (k.size() != prefix.size() + 8) return {Errc::corrupt, "text index key has a bad length"};
    const ItemId id = get_be(k.data() + prefix.size(), 8);
    Item head;
    Status h = get_item(cube, id, 0, &head);
    if (h.code == Errc::not_found) return {};  // cannot be (kept in step); never a duplicate
    if (!h.ok()) return h;
    if (*out == 0 && head.text == text) *out = id;
    return {};
  });
  if (!s.ok()) return s;
  if (*out == 0) return {Errc::not_found, "no live item holds this text"};
  return {};
}

Status WriteTxn::reindex_text(CubeId cube, const Item* previous, const Item& head) {
  const bool was = previous && indexed(*previous), is = indexed(head);
  if (was && is && previous->text == head.text) return {};
  if (was) {
    Status s =
        del_row(tables().text_hashes, text_key(cube, previous->text, previous->id), "text index");
    if (!s.ok()) return s;
  }
  if (!is) return {};
  return put_row(tables().text_hashes, text_key(cube, head.text, head.id), "", "text index");
}

Status Store::build_text_index(MDB_txn* txn, const Tables& tables) {
  Cursor cursor(txn, tables.items);
  if (cursor.open_rc()) return from_mdb(cursor.open_rc(), "cursor");
  return cursor.scan_prefix("", [&](std::string_view k, std::string_view v) -> Status {
    if (k.size() != 16) return {Errc::corrupt, "item key has a bad length"};
    Item head;
    if (Status d = decode_item(v, &head); !d.ok()) return d;
    if (!indexed(head)) return {};
    return put_row(txn, tables.text_hashes, text_key(get_be(k.data(), 8), head.text, head.id), "",
                   "building the text index");
  });
}

}  // namespace memos::store
