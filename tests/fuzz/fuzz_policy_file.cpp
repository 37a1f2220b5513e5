// fuzz_policy_file — a tenant policy file (memos-policy(5)) through
// parse_policy(), as memosd, memosd --check-policy and memctl policy check
// read it.
//
// Checked: any bytes get a verdict and no exception escapes; every
// diagnostic says where, starting with the file's name; a policy is usable
// exactly when no diagnostic is an error; and a usable policy, shown as
// TOML (memctl policy show), reads back to the same peers, owner, role and
// bounds.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "policies/policy_file.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

const std::string kPath = "tenants.d/fuzz.toml";

// A fixed directory: names resolve the same on every machine.
class Directory final : public memos::policies::UserDirectory {
 public:
  std::optional<std::uint32_t> user(const std::string& name, std::string*) const override {
    static const std::map<std::string, std::uint32_t> users{
        {"alice", 1001}, {"bob", 1002}, {"memos-ops", 990}};
    auto it = users.find(name);
    return it == users.end() ? std::nullopt : std::optional<std::uint32_t>(it->second);
  }
  std::optional<std::vector<std::uint32_t>> group(const std::string& name,
                                                  std::string*) const override {
    if (name == "memos-admins") return std::vector<std::uint32_t>{990, 1001};
    if (name == "empty") return std::vector<std::uint32_t>{};
    return std::nullopt;
  }
  std::string user_name(std::uint32_t) const override { return ""; }
};

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_policy_file: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    // The shipped samples, every key, and the mistakes the tests make.
    emit("default.toml", memos::fuzz::read_source_file("dist/tenants.d/default.toml"));
    emit("research.toml", memos::fuzz::read_source_file("dist/tenants.d/research.toml"));
    emit("ops.toml", memos::fuzz::read_source_file("dist/tenants.d/ops.toml"));
    emit("every_key.toml",
         "tenant = \"t\"\nallow = true\nrole = \"admin\"\nuids = [5]\nusers = [\"alice\"]\n"
         "groups = [\"memos-admins\"]\nowner = \"alice\"\nweight = 3\nmax_inflight = 9\n"
         "max_cubes = 1\nmax_items = 2\nmax_item_bytes = 3\nmax_plaintext_mb = 4\n"
         "max_blob_mb = 5\n[activation]\nmax_mb = 6\n[parametric]\nmax_mb = 7\n"
         "[rates]\nwrites_per_s = 1.5\nwrites_burst = 3\nsearches_per_s = 2\n"
         "chats_per_min = 30\nchats_burst = 2\n[use]\ntiers = [\"plaintext\"]\n"
         "retrievers = [\"r\"]\nembedders = []\nexecutors = [\"e\"]\nrouters = [\"x\"]\n"
         "executor_model = \"/m.gguf\"\n[retention]\nttl_s = 60\npurge_delay_s = 0\n"
         "[scheduler]\nworking_set_tokens = 512\n[router]\ntokens_per_day = 1000\n"
         "ms_per_query = 2.5\nlambda = 0.3\ndefault_tier = \"low\"\n");
    emit("mistakes.toml", "max_itemz = 5\nweight = 0\nrole = \"root\"\nusers = [\"alcie\"]\n");
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Directory users;
  std::string text(reinterpret_cast<const char*>(data), size);
  memos::policies::TenantPolicy policy;
  std::vector<memos::policies::Diagnostic> diagnostics;
  bool ok = memos::policies::parse_policy(text, kPath, users, &policy, &diagnostics);
  for (const auto& d : diagnostics) {
    if (d.where.rfind(kPath, 0) != 0) fail("a diagnostic that does not name the file", d.text());
  }
  if (ok == memos::policies::has_errors(diagnostics)) fail("a verdict against its diagnostics", "");
  if (!ok) return 0;
  std::string shown = memos::policies::to_toml(policy);
  memos::policies::TenantPolicy back;
  std::vector<memos::policies::Diagnostic> again;
  if (!memos::policies::parse_policy(shown, kPath, users, &back, &again)) {
    std::string all;
    for (const auto& d : again) all += d.text() + "\n";
    fail("a policy shown does not read back", all + shown);
  }
  bool same =
      back.tenant == policy.tenant && back.allow == policy.allow && back.role == policy.role &&
      back.uids == policy.uids && back.owner == policy.owner && back.weight == policy.weight &&
      back.max_inflight == policy.max_inflight && back.max_cubes == policy.max_cubes &&
      back.max_items == policy.max_items && back.max_item_bytes == policy.max_item_bytes &&
      back.max_plaintext_mb == policy.max_plaintext_mb &&
      back.activation_max_mb == policy.activation_max_mb && back.retrievers == policy.retrievers &&
      back.executors == policy.executors && back.scheduler == policy.scheduler;
  if (!same) fail("a policy shown reads back different", shown);
  return 0;
}
