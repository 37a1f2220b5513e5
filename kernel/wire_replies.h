// wire_replies.h — building replies: Cap'n Proto responses from store
// values, and error replies from a Status. Shared by the request handlers.
#pragma once

#include <capnp/common.h>
#include <kj/array.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/status.h"
#include "kernel/store_vocabulary.h"
#include "memcube/store.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

using memos::SearchMode;
using memos::State;
using memos::Tier;

using Frame = std::shared_ptr<kj::Array<capnp::word>>;
// Thread-safe. Called exactly once per request with `last` set (its
// answer), after any number of partial replies (Response.partial) without.
using Reply = std::function<void(Frame frame, bool last)>;

std::int64_t now_ms();
capnp::Text::Reader text(const std::string& s);

// A response with `id`, filled in by `fill`.
Frame response(std::uint64_t id, const std::function<void(wire::Response::Builder)>& fill);
// An error reply carrying `status` (which must not be ok).
Frame error_frame(std::uint64_t id, const Status& status);
Frame item_response(std::uint64_t id, const store::Item& item);
// About what `item` adds to a reply (its texts and lists, and the fixed
// fields): what handlers count against RequestContext::reply_budget().
std::size_t reply_bytes(const store::Item& item);

void set_item(wire::Item::Builder b, const store::Item& item);
void set_access(wire::Item::Builder b, const store::AccessStats& stats);
void set_cube(wire::Cube::Builder b, const store::Cube& cube);
void set_snapshot(wire::Snapshot::Builder b, const store::Snapshot& snap);
void set_activation(wire::Activation::Builder b, const store::Activation& a,
                    const std::string& cube);
// What a plugin's reply shows: `full` to an admin (RequestContext::admin);
// `public_view` leaves out what is the host's business, not a tenant's:
// library and manifest paths, settings (model paths), and why it failed.
enum class PluginView { full, public_view };
void set_plugin(wire::PluginInfo::Builder b, const struct PluginRecord& plugin, PluginView view);

// Finds the tenant's cube by the name a client gave. Names starting with
// '.' are memosd's own (an import's staging cube, ".import-N"), which no
// client may create (check_cube_name), so no client finds, reads or writes
// one either. Errors: not_found, and the store's.
store::Status find_client_cube(const store::ReadTxn& txn, std::uint32_t tenant,
                               std::string_view name, store::Cube* cube);
// Whether a client sees the cube (cube lists leave out memosd's own).
bool visible_to_clients(const store::Cube& cube);
// Whether a cube name is one of memosd's own: the one rule both of the
// above apply.
bool is_memosds_own(std::string_view cube_name);

// The mode a cube's searches use unless the client names one; dense for
// cubes made before modes existed.
SearchMode default_mode(const store::Cube& cube);

// A client's text, whole: capnp's conversions stop at an embedded NUL, which
// would silently cut "c2\0zzz" to "c2". Checks then refuse the NUL.
std::string exact(capnp::Text::Reader text);
std::string_view exact_view(capnp::Text::Reader text);
std::vector<std::string> copy_texts(capnp::List<capnp::Text>::Reader list);
std::vector<store::MetaEntry> copy_meta(capnp::List<wire::MetaEntry>::Reader list);

}  // namespace memos::kernel
