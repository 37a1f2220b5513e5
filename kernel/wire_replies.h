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
// Thread-safe; called exactly once per request.
using Reply = std::function<void(Frame)>;

std::int64_t now_ms();
capnp::Text::Reader text(const std::string& s);

// A response with `id`, filled in by `fill`.
Frame response(std::uint64_t id, const std::function<void(wire::Response::Builder)>& fill);
// An error reply carrying `status` (which must not be ok).
Frame error_frame(std::uint64_t id, const Status& status);
Frame item_response(std::uint64_t id, const store::Item& item);

void set_item(wire::Item::Builder b, const store::Item& item);
void set_access(wire::Item::Builder b, const store::AccessStats& stats);
void set_cube(wire::Cube::Builder b, const store::Cube& cube);
void set_snapshot(wire::Snapshot::Builder b, const store::Snapshot& snap);
void set_plugin(wire::PluginInfo::Builder b, const struct PluginRecord& plugin);

// Opens a read transaction and finds the tenant's cube (another tenant's
// is not_found). Errors: not_found, internal (store errors).
Status open_cube(const store::Store& st, std::uint32_t tenant, const std::string& name,
                 std::optional<store::ReadTxn>* txn, store::Cube* cube);
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
