#include "kernel/handlers/param_write.h"

#include <cmath>
#include <utility>

#include "kernel/handlers/item_write.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"
#include "policies/policy.h"

namespace memos::kernel {
namespace {

constexpr float kMaxScale = 16;

}  // namespace

Status check_adapter_name(const std::string& name) {
  std::string why;
  // A name is what "NAME[:SCALE]" reads before its scale: no ':' in it.
  if (name.find(':') != std::string::npos || !policies::parse_adapter_choice(name, &why)) {
    return Status::bad_request("'" + name.substr(0, 80) +
                               "' is not an adapter name (1..64 of A-Z a-z 0-9 . _ -, not "
                               "starting with . or -)");
  }
  return {};
}

Status check_scale(float scale) {
  if (!std::isfinite(scale) || std::fabs(scale) > kMaxScale) {
    return Status::bad_request("an adapter's scale must be a number in [-16, 16]");
  }
  return {};
}

Status check_new_param(const Services& s, const RequestContext& ctx, const std::string& cube,
                       const std::string& name, float scale, const std::string& description) {
  if (!s.executor) {
    return Status::unavailable(
        "no model executor: a parametric item is checked against the executor's model (set "
        "executor.model)",
        false);
  }
  if (!s.blobs) return Status::unavailable("this memosd has no blob store", false);
  for (const Status& st : {check_tier(*ctx.policy, store::Tier::parametric), check_cube_text(cube),
                           check_adapter_name(name), check_scale(scale)}) {
    if (!st.ok()) return st;
  }
  return description.empty() ? Status{} : check_text(description, s.config.store);
}

std::string describe(const std::string& name, const AdapterFacts& f, const std::string& model) {
  if (f.kind == "cvec") {
    return "control vector " + name + ": " + std::to_string(f.tensors) + " layers, for " + model;
  }
  std::string text = "LoRA adapter " + name + ": rank " + std::to_string(f.rank) + ", " +
                     std::to_string(f.tensors) + " matrices, for " + model;
  if (!f.name.empty() && f.name != name) text += " (" + f.name + ")";
  return text;
}

store::Parametric parametric_item(const AdapterFacts& facts, const AdapterRef& ref,
                                  const std::string& name, float scale, std::string origin) {
  store::Parametric p;
  p.kind = facts.kind;
  p.name = name;
  p.blob = ref.digest;
  p.size = ref.size;
  p.scale = scale;
  p.base_model = facts.base_model;
  p.architecture = facts.architecture;
  p.tensors = facts.tensors;
  p.rank = facts.rank;
  p.alpha = facts.alpha;
  p.origin = std::move(origin);
  return p;
}

void commit_param(const Services& s, const RequestContext& ctx, std::string cube,
                  store::Parametric p, std::string text, std::vector<store::ItemId> sources) {
  ItemWrite w;
  w.cube = std::move(cube);
  const store::TenantId writer = ctx.tenant;
  w.apply = [p = std::move(p), text = std::move(text), writer, sources = std::move(sources)](
                store::WriteTxn& txn, const store::Cube& c, store::Item* written, store::Item*) {
    store::Provenance by;
    by.writer = writer;
    by.sources = sources;
    bool created = false;
    return txn.put_param(c.id, p, text, by, now_ms(), written, &created);
  };
  commit_item_write(s, ctx, std::move(w));
}

}  // namespace memos::kernel
