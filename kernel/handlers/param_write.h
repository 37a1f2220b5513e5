// param_write.h — what every maker of a parametric item shares (an upload,
// a control vector, a distillation job): the checks of a new one, its
// record, and its write through the one item path (item_write.h).
#pragma once

#include <string>
#include <vector>

#include "kernel/handlers/request_context.h"
#include "kernel/plugin_executor.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel {

// An adapter's name: what policies and --adapter write (policy.h), 1..64
// of A-Z a-z 0-9 . _ -, not starting with . or -. Errors: bad_request.
Status check_adapter_name(const std::string& name);
// A scale in [-16, 16]. Errors: bad_request.
Status check_scale(float scale);
// What a new parametric item needs, whatever makes it: an executor to
// check it, somewhere to keep it, the tier, and sound names. Errors:
// unavailable, permission_denied, bad_request.
Status check_new_param(const Services& s, const RequestContext& ctx, const std::string& cube,
                       const std::string& name, float scale, const std::string& description);
// The item's text when the maker gives none: what a search for it finds.
std::string describe(const std::string& name, const AdapterFacts& f, const std::string& model);
// The parametric part of an item the executor checked (`facts`), kept in
// blob `ref.digest`.
store::Parametric parametric_item(const AdapterFacts& facts, const AdapterRef& ref,
                                  const std::string& name, float scale, std::string origin);
// Writes `p` as the cube's adapter of its name (a new item, or a new
// version of the one of that name), from `sources`, and answers `ctx` with
// the item (or the error). Any thread.
void commit_param(const Services& s, const RequestContext& ctx, std::string cube,
                  store::Parametric p, std::string text, std::vector<store::ItemId> sources);

}  // namespace memos::kernel
