// wire_replies.h — building replies: Cap'n Proto responses from store
// values, and errors from store statuses. Shared by the request handlers.
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
#include "kernel/request_checks.h"
#include "memcube/store.h"

namespace memos::kernel {

using Frame = std::shared_ptr<kj::Array<capnp::word>>;
// Thread-safe; called exactly once per request.
using Reply = std::function<void(Frame)>;

std::int64_t now_ms();
capnp::Text::Reader text(const std::string& s);

// A response with `id`, filled in by `fill`.
Frame response(std::uint64_t id, const std::function<void(wire::Response::Builder)>& fill);
Frame error_frame(std::uint64_t id, wire::ErrorCode code, const std::string& message,
                  bool retryable);
// Maps a store error to the client's code; storage_full and unavailable are
// retryable, corrupt and io are internal.
Frame status_error(std::uint64_t id, const store::Status& s);
Frame check_error(std::uint64_t id, const CheckFailure& f);
Frame bad_request(std::uint64_t id, const std::string& message);
Frame item_response(std::uint64_t id, const store::Item& item);

void set_item(wire::Item::Builder b, const store::Item& item);
void set_access(wire::Item::Builder b, const store::AccessStats& stats);
void set_cube(wire::Cube::Builder b, const store::Cube& cube);
void set_snapshot(wire::Snapshot::Builder b, const store::Snapshot& snap);
void set_plugin(wire::PluginInfo::Builder b, const struct PluginState& plugin);

// Opens a read transaction and finds the tenant's cube; on failure replies
// with the error and returns false.
bool open_cube(const store::Store& st, std::uint32_t tenant, const std::string& name,
               std::optional<store::ReadTxn>* txn, store::Cube* cube, std::uint64_t id,
               const Reply& reply);

std::vector<std::string> copy_texts(capnp::List<capnp::Text>::Reader list);
std::vector<store::MetaEntry> copy_meta(capnp::List<wire::MetaEntry>::Reader list);

}  // namespace memos::kernel
