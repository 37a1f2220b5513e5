// fuzz_router_weights — a router-policy weights file (memos-plugin(7),
// "Routers") through parse_weights(), as the plugin reads it at create(),
// then a route chosen with what it accepted.
//
// Checked: any bytes get a verdict and no exception escapes; accepted
// weights write back to text that reads back to the same text; and a
// choice over them is a route of the weights whose every tier was offered,
// or a refusal with a reason.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "plugins/router-policy/policy_weights.h"
#include "plugins/router-policy/route_policy.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

namespace rp = memos::router_policy;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_router_weights: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    emit("shipped.weights",
         memos::fuzz::read_source_file("plugins/router-policy/router-policy.weights"));
    emit("embedding.weights",
         "memos-router-policy 1\nnote two routes\nembedder hash-v1 2\nfeatures words low_margin\n"
         "route retrieve=low,compress=low ms 0.2 tokens 400\nquality 0.5 0 0.1 0 0\n"
         "route retrieve=mid,compress=mid ms 1 tokens 250\nquality 0.6 0.01 0 0.2 -0.2\n");
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  rp::PolicyWeights w;
  if (!rp::parse_weights(text, &w).empty()) return 0;
  const std::string written = rp::format_weights(w);
  rp::PolicyWeights again;
  if (std::string why = rp::parse_weights(written, &again); !why.empty())
    fail("accepted weights do not read back", why);
  if (rp::format_weights(again) != written) fail("weights do not write back the same", written);
  // Offer every tier the routes name.
  rp::RouteQuery q;
  for (const auto& name : w.features) q.features.emplace_back(name, 1.0f);
  q.vector.assign(w.dimension, 0.5f);
  for (const auto& r : w.routes)
    for (const auto& [module, tier] : r.tiers) q.offered[module].push_back(tier);
  q.lambda = 0.3;
  q.token_budget = 300;
  rp::RouteChoice choice;
  if (std::string why = rp::choose_route(w, q, &choice); !why.empty()) return 0;
  if (choice.ranked.empty()) fail("a choice without a route", "");
  for (const auto& [module, tier] : choice.ranked.front().route->tiers) {
    const auto& offered = q.offered[module];
    if (std::find(offered.begin(), offered.end(), tier) == offered.end())
      fail("a chosen tier was not offered", module + "=" + tier);
  }
  return 0;
}
