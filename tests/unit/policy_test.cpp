// Tenant policy files (policies/): every key read into the policy, every
// mistake reported at its file:line:column, hostile files refused without
// harm, and a folder read whole or refused whole.
#define BOOST_TEST_MODULE policy
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "policies/policy_file.h"
#include "policies/policy_set.h"
#include "tests/support/memosd_process.h"

using memos::policies::Diagnostic;
using memos::policies::PolicySet;
using memos::policies::Role;
using memos::policies::TenantPolicy;
using memos::testing::TempDir;

namespace {

// Users and groups without an NSS lookup: the tests decide who exists.
class FakeDirectory final : public memos::policies::UserDirectory {
 public:
  std::map<std::string, std::uint32_t> users{
      {"alice", 1001}, {"bob", 1002}, {"carol", 1003}, {"memos-ops", 990}};
  std::map<std::string, std::vector<std::uint32_t>> groups{
      {"research", {1001, 1002}}, {"empty", {}}, {"memos-admins", {990, 1003}}};

  std::optional<std::uint32_t> user(const std::string& name, std::string*) const override {
    auto it = users.find(name);
    if (it == users.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::vector<std::uint32_t>> group(const std::string& name,
                                                  std::string*) const override {
    auto it = groups.find(name);
    if (it == groups.end()) return std::nullopt;
    return it->second;
  }
  std::string user_name(std::uint32_t uid) const override {
    for (const auto& [name, id] : users) {
      if (id == uid) return name;
    }
    return "";
  }
};

struct Parsed {
  bool ok = false;
  TenantPolicy policy;
  std::vector<Diagnostic> diagnostics;

  // Every diagnostic's text, one a line (what a test failure shows).
  std::string all() const {
    std::string out;
    for (const auto& d : diagnostics) out += d.text() + "\n";
    return out;
  }
  bool says(const std::string& text) const { return all().find(text) != std::string::npos; }
};

bool is_admin(const TenantPolicy& p) {
  return p.role == Role::admin;
}

Parsed parse(const std::string& text, const std::string& path = "tenants.d/alice.toml") {
  FakeDirectory users;
  Parsed p;
  p.ok = memos::policies::parse_policy(text, path, users, &p.policy, &p.diagnostics);
  return p;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_key_is_read_into_the_policy) {
  Parsed p = parse(R"(tenant = "research"
allow = true
role = "admin"
uids = [2001]
users = ["alice"]
groups = ["research"]
owner = "alice"
weight = 300
max_inflight = 64
max_cubes = 10
max_items = 1000
max_item_bytes = 65536
max_plaintext_mb = 100
max_blob_mb = 200
[activation]
max_mb = 512
[parametric]
max_mb = 0
adapters = ["style", "tone:-0.5"]
distill_after = 50
stable_after_s = 600
distill_name = "facts"
[rates]
writes_per_s = 50
writes_burst = 100
searches_per_s = 20.5
chats_per_min = 30
[use]
tiers = ["plaintext", "activation"]
retrievers = ["faiss-dense", "xapian-lexical"]
embedders = ["hash-v1"]
executors = ["llama-executor"]
routers = []
executor_model = "/srv/models/small.gguf"
executor_device = "gpu"
[retention]
ttl_s = 86400
purge_delay_s = 3600
[scheduler]
working_set_tokens = 512
strength_gain = 0.5
time_unit = "hours"
forgetting = "archive"
archive_below = 0.1
archive_after_s = 7200
[router]
tokens_per_day = 200000
ms_per_query = 2.5
lambda = 1
default_tier = "low"
)");
  BOOST_TEST_REQUIRE(p.ok, p.all());
  const TenantPolicy& t = p.policy;
  BOOST_TEST(t.tenant == "research");
  BOOST_TEST(is_admin(t));
  BOOST_TEST((t.uids == std::vector<std::uint32_t>{1001, 1002, 2001}));
  BOOST_TEST(t.owner.value() == 1001u);
  BOOST_TEST(t.weight == 300u);
  BOOST_TEST(t.max_inflight.value() == 64u);
  BOOST_TEST(t.max_cubes.value() == 10u);
  BOOST_TEST(t.max_items.value() == 1000u);
  BOOST_TEST(t.max_item_bytes.value() == 65536u);
  BOOST_TEST(t.max_plaintext_mb.value() == 100u);
  BOOST_TEST(t.max_blob_mb.value() == 200u);
  BOOST_TEST(t.activation_max_mb.value() == 512u);
  BOOST_TEST(t.parametric_max_mb.value() == 0u);  // a real bound: none
  BOOST_TEST((t.default_adapters ==
              std::vector<memos::policies::AdapterChoice>{{"style", 0}, {"tone", -0.5f}}));
  BOOST_TEST(t.distill_after.value() == 50u);
  BOOST_TEST(t.stable_after_s == 600u);
  BOOST_TEST(t.distill_name == "facts");
  BOOST_TEST(t.writes->per_second == 50.0);
  BOOST_TEST(t.writes->burst == 100.0);
  BOOST_TEST(t.searches->per_second == 20.5);
  BOOST_TEST(t.searches->burst == 21.0);  // a second's worth, rounded up
  BOOST_TEST(t.chats->per_second == 0.5);
  BOOST_TEST(t.chats->burst == 30.0);  // a minute's worth
  BOOST_TEST(t.tiers.plaintext);
  BOOST_TEST(t.tiers.activation);
  BOOST_TEST(!t.tiers.parametric);
  BOOST_TEST((*t.retrievers == std::vector<std::string>{"faiss-dense", "xapian-lexical"}));
  BOOST_TEST((*t.embedders == std::vector<std::string>{"hash-v1"}));
  BOOST_TEST(t.routers->empty());
  BOOST_TEST(*t.executor_model == "/srv/models/small.gguf");
  BOOST_TEST(*t.executor_device == "gpu");
  BOOST_TEST(t.retention_ttl_s.value() == 86400u);
  BOOST_TEST(t.retention_purge_delay_s.value() == 3600u);
  BOOST_TEST(t.scheduler.working_set_tokens.value() == 512u);
  BOOST_TEST(t.scheduler.strength_gain.value() == 0.5);
  BOOST_TEST(t.scheduler.time_unit_s.value() == 3600u);
  BOOST_TEST((t.scheduler.forgetting.value() == memos::policies::Forgetting::archive));
  BOOST_TEST(t.scheduler.archive_below.value() == 0.1);
  BOOST_TEST(t.scheduler.archive_after_s.value() == 7200u);
  BOOST_TEST(!t.scheduler.enabled);  // memosd.conf's
  const auto resolved = memos::policies::resolve({}, t.scheduler);
  BOOST_TEST(resolved.working_set_tokens == 512u);
  BOOST_TEST(resolved.search_recall_weight == 0.25);  // the default
  BOOST_TEST(t.router.tokens_per_day.value() == 200000u);
  BOOST_TEST(t.router.ms_per_query.value() == 2.5);
  BOOST_TEST(t.router.lambda.value() == 1.0);
  BOOST_TEST(t.router.default_tier.value() == "low");
}

BOOST_AUTO_TEST_CASE(an_empty_file_is_a_tenant_named_after_it_with_no_bounds) {
  Parsed p = parse("", "tenants.d/ops-team.toml");
  BOOST_TEST_REQUIRE(p.ok, p.all());
  BOOST_TEST(p.policy.tenant == "ops-team");
  BOOST_TEST(p.policy.allow);
  BOOST_TEST(!is_admin(p.policy));
  BOOST_TEST(p.policy.uids.empty());
  BOOST_TEST(!p.policy.owner);
  BOOST_TEST(!p.policy.max_items);
  BOOST_TEST(!p.policy.retrievers);
  BOOST_TEST(p.policy.weight == 100u);

  Parsed bad_name = parse("", "tenants.d/has space.toml");
  BOOST_TEST(!bad_name.ok);
  BOOST_TEST(bad_name.says("name the tenant with tenant = \"NAME\""), bad_name.all());
}

BOOST_AUTO_TEST_CASE(mistakes_are_named_at_their_line_and_column) {
  Parsed unknown = parse("max_items = 10\nmax_itemz = 5\n");
  BOOST_TEST(!unknown.ok);
  BOOST_TEST(unknown.says("tenants.d/alice.toml:2:1: unknown key 'max_itemz'"), unknown.all());

  Parsed nested = parse("[rates]\nwrites_per_s = 1\nreads_per_s = 2\n");
  BOOST_TEST(nested.says("tenants.d/alice.toml:3:1: unknown key 'rates.reads_per_s'"),
             nested.all());

  Parsed type = parse("max_items = \"many\"\n");
  BOOST_TEST(type.says("tenants.d/alice.toml:1:13: max_items: expected an integer"), type.all());

  Parsed range = parse("weight = 0\n");
  BOOST_TEST(range.says("alice.toml:1:10: weight: 0 is out of range (1 to 10000)"), range.all());

  Parsed negative = parse("max_cubes = -1\n");
  BOOST_TEST(negative.says("max_cubes: -1 is out of range"), negative.all());

  Parsed role = parse("role = \"root\"\n");
  BOOST_TEST(role.says("role: expected \"member\" or \"admin\""), role.all());

  Parsed tier = parse("[use]\ntiers = [\"plaintext\", \"cache\"]\n");
  BOOST_TEST(tier.says("alice.toml:2:23: use.tiers: unknown tier 'cache'"), tier.all());

  Parsed device = parse("[use]\nexecutor_device = \"cuda\"\n");
  BOOST_TEST(device.says("use.executor_device: must be \"cpu\" or \"gpu\""), device.all());
  Parsed long_device = parse("[use]\nexecutor_device = \"" + std::string(100, 'g') + "\"\n");
  BOOST_TEST(long_device.says("use.executor_device: longer than 8 bytes"), long_device.all());

  Parsed table = parse("rates = 5\n");
  BOOST_TEST(table.says("rates: expected a table ([rates])"), table.all());

  Parsed burst = parse("[rates]\nchats_burst = 3\n");
  BOOST_TEST(burst.says("rates.chats_burst needs chats_per_min"), burst.all());

  Parsed adapter = parse("[parametric]\nadapters = [\"ok\", \"bad:2x\"]\n");
  BOOST_TEST(adapter.says("parametric.adapters: '2x' is not a scale"), adapter.all());
  Parsed adapter_name = parse("[parametric]\nadapters = [\".hidden\"]\n");
  BOOST_TEST(adapter_name.says("is not an adapter name"), adapter_name.all());
  Parsed zero = parse("[parametric]\nadapters = [\"a:0\"]\n");
  BOOST_TEST(zero.says("not 0"), zero.all());
  Parsed nine =
      parse("[parametric]\nadapters = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]\n");
  BOOST_TEST(nine.says("more than 8 entries"), nine.all());
  Parsed not_text = parse("[parametric]\nadapters = [1]\n");
  BOOST_TEST(!not_text.ok);
  Parsed never = parse("[parametric]\ndistill_after = 0\n");
  BOOST_TEST(never.says("parametric.distill_after"), never.all());
  Parsed huge = parse("[parametric]\ndistill_after = 10001\n");
  BOOST_TEST(huge.says("parametric.distill_after"), huge.all());
  Parsed bad_name = parse("[parametric]\ndistill_name = \"a:b\"\n");
  BOOST_TEST(bad_name.says("parametric.distill_name: 'a:b' is not an adapter name"),
             bad_name.all());
  Parsed unstable = parse("[parametric]\nstable_after_s = -1\n");
  BOOST_TEST(unstable.says("parametric.stable_after_s"), unstable.all());

  Parsed nan = parse("[rates]\nwrites_per_s = nan\n");
  BOOST_TEST(nan.says("rates.writes_per_s: nan is out of range"), nan.all());

  Parsed syntax = parse("max_items = = 3\n");
  BOOST_TEST(!syntax.ok);
  BOOST_TEST(syntax.says("tenants.d/alice.toml:1:"), syntax.all());

  // Every error of the file at once, not only the first.
  Parsed several = parse("weight = 0\nmax_items = true\nbogus = 1\n");
  BOOST_TEST(several.diagnostics.size() == 3u, several.all());
}

BOOST_AUTO_TEST_CASE(peers_are_resolved_and_one_owner_keeps_their_memory) {
  Parsed one = parse("users = [\"bob\"]\n");
  BOOST_TEST_REQUIRE(one.ok, one.all());
  BOOST_TEST(one.policy.owner.value() == 1002u);  // one uid: its own memory

  Parsed several = parse("groups = [\"research\"]\n");
  BOOST_TEST(!several.ok);
  BOOST_TEST(several.says("covers 2 uids: name the one whose memory they share with owner"),
             several.all());

  Parsed outsider = parse("groups = [\"research\"]\nowner = \"carol\"\n");
  BOOST_TEST(outsider.says("owner: uid 1003 is not one of the peers this policy covers"),
             outsider.all());

  Parsed by_uid = parse("uids = [5, 6]\nowner = 6\n");
  BOOST_TEST_REQUIRE(by_uid.ok, by_uid.all());
  BOOST_TEST(by_uid.policy.owner.value() == 6u);

  Parsed nobody = parse("users = [\"alcie\"]\n");
  BOOST_TEST(nobody.says("alice.toml:1:10: users: no user 'alcie'"), nobody.all());
  Parsed no_group = parse("groups = [\"reserch\"]\n");
  BOOST_TEST(no_group.says("groups: no group 'reserch'"), no_group.all());

  Parsed empty = parse("groups = [\"empty\"]\n");
  BOOST_TEST(empty.ok, empty.all());  // a warning, not an error
  BOOST_TEST(empty.says("warning: groups: 'empty' has no members"), empty.all());

  Parsed no_uid = parse("uids = [4294967295]\n");  // (uid_t)-1 is no one
  BOOST_TEST(!no_uid.ok);
}

BOOST_AUTO_TEST_CASE(default_toml_names_no_peers_and_makes_no_admins) {
  Parsed ok = parse("allow = false\n", "tenants.d/default.toml");
  BOOST_TEST_REQUIRE(ok.ok, ok.all());
  BOOST_TEST(ok.policy.is_default);
  BOOST_TEST(!ok.policy.allow);
  BOOST_TEST(ok.policy.tenant.empty());

  Parsed peers = parse("uids = [1]\n", "tenants.d/default.toml");
  BOOST_TEST(peers.says("default.toml:1:8: uids: default.toml covers the peers no other file"),
             peers.all());
  Parsed admin = parse("role = \"admin\"\n", "tenants.d/default.toml");
  BOOST_TEST(admin.says("would make every user an administrator"), admin.all());
}

BOOST_AUTO_TEST_CASE(hostile_files_are_refused_without_harm) {
  Parsed huge = parse(std::string(memos::policies::kMaxPolicyFileBytes + 1, '#'));
  BOOST_TEST(huge.says("larger than a policy file may be (1 MiB)"), huge.all());

  // Nesting past what toml++ allows is a parse error, not a stack overflow.
  Parsed deep = parse("x = " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  BOOST_TEST(!deep.ok);

  // The scheduler's keys are checked one by one.
  BOOST_TEST(
      parse("[scheduler]\npromote_after = 3\n").says("unknown key 'scheduler.promote_after'"));
  BOOST_TEST(parse("[scheduler]\ntime_unit = \"fortnights\"\n")
                 .says("scheduler.time_unit: 'fortnights' is not seconds, minutes, hours or days"));
  BOOST_TEST(parse("[scheduler]\nforgetting = \"delete\"\n")
                 .says("scheduler.forgetting: 'delete' is not off or archive"));
  BOOST_TEST(
      parse("[scheduler]\narchive_below = 1\n").says("scheduler.archive_below: 1 is out of range"));
  BOOST_TEST(parse("[scheduler]\nstrength_gain = -1\n")
                 .says("scheduler.strength_gain: -1 is out of range"));
  BOOST_TEST(parse("[scheduler]\nstrength_gain = nan\n").says("scheduler.strength_gain"));
  BOOST_TEST(parse("[scheduler]\nworking_set_tokens = 99999999\n").says("out of range"));
  BOOST_TEST(
      parse("[scheduler]\nenabled = \"yes\"\n").says("scheduler.enabled: expected true or false"));
  BOOST_TEST(parse("scheduler = 3\n").says("scheduler"));

  // So are the router's.
  BOOST_TEST(parse("[router]\ntiers = [\"cheap\"]\n").says("unknown key 'router.tiers'"));
  BOOST_TEST(parse("[router]\ntokens_per_day = -1\n").says("router.tokens_per_day"));
  BOOST_TEST(parse("[router]\ntokens_per_day = 1e300\n").says("router.tokens_per_day"));
  BOOST_TEST(parse("[router]\nms_per_query = 0\n").says("router.ms_per_query: 0 is out of range"));
  BOOST_TEST(parse("[router]\nlambda = nan\n").says("router.lambda"));
  BOOST_TEST(parse("[router]\nlambda = 101\n").says("router.lambda: 101 is out of range"));
  BOOST_TEST(parse("[router]\ndefault_tier = \"auto\"\n")
                 .says("router.default_tier: 'auto' is not low, mid or high"));
  BOOST_TEST(parse("[router]\ndefault_tier = \"" + std::string(5000, 'x') + "\"\n")
                 .says("router.default_tier"));
  BOOST_TEST(parse("router = [1]\n").says("router"));

  Parsed many_uids = parse("uids = [" + [] {
    std::string s;
    for (int i = 0; i < 70000; ++i) s += std::to_string(i) + ",";
    return s;
  }() + "]\n");
  BOOST_TEST(many_uids.says("uids: more than 65536 entries"), many_uids.all());

  Parsed slash = parse("[use]\nretrievers = [\"../../lib/evil\"]\n");
  BOOST_TEST(slash.says("is not a name"), slash.all());

  Parsed nul = parse(std::string("tenant = \"a\\u0000b\"\n"));
  BOOST_TEST(!nul.ok);

  Parsed invalid_utf8 = parse("tenant = \"\xff\xfe\"\n");
  BOOST_TEST(!invalid_utf8.ok);

  // Random bytes and random mutations of a good file: always a verdict,
  // never a throw, and every diagnostic says where.
  std::mt19937 rng(20261203);
  const std::string good = "tenant = \"t\"\nuids = [7]\nmax_items = 5\n[rates]\nwrites_per_s = 2\n";
  for (int round = 0; round < 2000; ++round) {
    std::string text = good;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % (text.size() + 1);
      switch (rng() % 3) {
        case 0:
          text.insert(at, 1, static_cast<char>(rng() % 256));
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = static_cast<char>(rng() % 256);
      }
    }
    Parsed p = parse(text, "fuzz.toml");
    for (const auto& d : p.diagnostics) {
      BOOST_TEST_REQUIRE(d.where.rfind("fuzz.toml", 0) == 0u, d.text());
    }
    BOOST_TEST_REQUIRE((p.ok || memos::policies::has_errors(p.diagnostics)));
  }
}

BOOST_AUTO_TEST_CASE(a_policy_shown_as_toml_reads_back_the_same) {
  Parsed p = parse(R"(tenant = "research"
users = ["alice", "bob"]
owner = "bob"
role = "admin"
max_items = 1000
[activation]
max_mb = 64
[parametric]
adapters = ["style:0.25"]
distill_after = 20
distill_name = "auto"
[rates]
chats_per_min = 30
[use]
tiers = ["plaintext"]
executors = ["llama-executor"]
[scheduler]
time_unit = "minutes"
forgetting = "archive"
search_recall_weight = 0.5
)");
  BOOST_TEST_REQUIRE(p.ok, p.all());
  std::string shown = memos::policies::to_toml(p.policy);
  BOOST_TEST(shown.find("# no bound but memosd's configuration:") != std::string::npos, shown);
  Parsed back = parse(shown, "tenants.d/research.toml");
  BOOST_TEST_REQUIRE(back.ok, back.all() + shown);
  const TenantPolicy& a = p.policy;
  const TenantPolicy& b = back.policy;
  BOOST_TEST(a.tenant == b.tenant);
  BOOST_TEST(a.uids == b.uids);
  BOOST_TEST((a.owner == b.owner));
  BOOST_TEST(is_admin(a) == is_admin(b));
  BOOST_TEST((a.max_items == b.max_items));
  BOOST_TEST(!b.max_cubes);
  BOOST_TEST((a.activation_max_mb == b.activation_max_mb));
  BOOST_TEST((a.default_adapters == b.default_adapters));
  BOOST_TEST(b.default_adapters.size() == 1u);
  BOOST_TEST((a.distill_after == b.distill_after));
  BOOST_TEST(b.distill_name == "auto");
  BOOST_TEST(b.stable_after_s == a.stable_after_s);
  BOOST_TEST(a.chats->per_second == b.chats->per_second);
  BOOST_TEST(a.chats->burst == b.chats->burst);
  BOOST_TEST(!b.tiers.activation);
  BOOST_TEST((a.executors == b.executors));
  BOOST_TEST(!b.retrievers);
  BOOST_TEST((a.scheduler == b.scheduler));
  BOOST_TEST(b.scheduler.time_unit_s.value() == 60u);
}

BOOST_AUTO_TEST_CASE(a_folder_is_read_whole_and_says_which_policy_applies) {
  TempDir dir;
  auto folder = std::filesystem::path(dir.path()) / "tenants.d";
  std::filesystem::create_directory(folder);
  write(folder / "default.toml", "max_items = 100\n");
  write(folder / "research.toml", "groups = [\"research\"]\nowner = \"alice\"\nweight = 200\n");
  write(folder / "carol.toml", "users = [\"carol\"]\nrole = \"admin\"\n");
  write(folder / "README", "not a policy\n");
  write(folder / ".research.toml.swp", "x");
  FakeDirectory users;
  std::vector<Diagnostic> diagnostics;
  auto set = PolicySet::load(folder.string(), users, std::nullopt, &diagnostics);
  BOOST_TEST_REQUIRE(set != nullptr);
  BOOST_TEST(diagnostics.size() == 1u);  // README skipped, the swap file unseen
  BOOST_TEST(diagnostics.at(0).text().find("README: warning: skipped: not a .toml file") !=
             std::string::npos);
  BOOST_TEST(set->tenants().size() == 2u);
  BOOST_TEST(set->for_uid(1002)->tenant == "research");
  BOOST_TEST(set->data_uid(1002) == 1001u);  // bob shares alice's memory
  BOOST_TEST(set->data_uid(1001) == 1001u);
  BOOST_TEST(is_admin(*set->for_uid(1003)));
  BOOST_TEST(set->data_uid(1003) == 1003u);
  BOOST_TEST(set->for_uid(4242)->is_default);  // no file claims it
  BOOST_TEST(set->for_uid(4242)->max_items.value() == 100u);
  BOOST_TEST(set->data_uid(4242) == 4242u);
  BOOST_TEST(set->tenant("research")->weight == 200u);
  BOOST_TEST(set->tenant("nobody") == nullptr);

  PolicySet builtin;
  BOOST_TEST(builtin.for_uid(7)->is_default);
  BOOST_TEST(builtin.for_uid(7)->allow);
  BOOST_TEST(builtin.data_uid(7) == 7u);
}

BOOST_AUTO_TEST_CASE(a_sets_digest_follows_what_it_enforces_not_where_it_lies) {
  TempDir dir;
  FakeDirectory users;
  auto folder = [&](const std::string& name) {
    auto path = std::filesystem::path(dir.path()) / name;
    std::filesystem::create_directory(path);
    write(path / "default.toml", "max_items = 100\n");
    write(path / "research.toml", "groups = [\"research\"]\nowner = \"alice\"\n");
    return path;
  };
  auto digest = [&](const std::filesystem::path& path, const FakeDirectory& directory) {
    std::vector<Diagnostic> diagnostics;
    auto set = PolicySet::load(path.string(), directory, std::nullopt, &diagnostics);
    BOOST_TEST_REQUIRE(set != nullptr);
    return set->digest();
  };
  const std::string first = digest(folder("a"), users);
  BOOST_TEST(first.size() == 64u);
  BOOST_TEST(first.find_first_not_of("0123456789abcdef") == std::string::npos);

  // Another folder with the same files, and a file memosd skips: the same.
  auto b = folder("b");
  write(b / "README", "notes\n");
  BOOST_TEST(digest(b, users) == first);
  // One byte more (a comment): another digest, though it enforces the same.
  write(b / "research.toml", "groups = [\"research\"]\nowner = \"alice\"\n#\n");
  BOOST_TEST(digest(b, users) != first);
  // The same bytes under another name are another tenant.
  auto c = folder("c");
  std::filesystem::rename(c / "research.toml", c / "lab.toml");
  BOOST_TEST(digest(c, users) != first);
  // The same files where NSS gives alice another uid: other peers.
  FakeDirectory elsewhere;
  elsewhere.users["alice"] = 2001;
  elsewhere.groups["research"] = {2001, 1002};
  BOOST_TEST(digest(folder("d"), elsewhere) != first);
  // An empty folder admits what the built-in set does, and says so.
  auto empty = std::filesystem::path(dir.path()) / "empty";
  std::filesystem::create_directory(empty);
  BOOST_TEST(digest(empty, users) == PolicySet().digest());
  BOOST_TEST(PolicySet().digest() != first);
}

BOOST_AUTO_TEST_CASE(a_folder_with_any_error_is_refused_whole) {
  TempDir dir;
  FakeDirectory users;
  auto load = [&](const std::filesystem::path& folder, std::optional<std::uint32_t> trusted) {
    std::vector<Diagnostic> diagnostics;
    auto set = PolicySet::load(folder.string(), users, trusted, &diagnostics);
    std::string text;
    for (const auto& d : diagnostics) text += d.text() + "\n";
    return std::pair{set, text};
  };

  auto twice = std::filesystem::path(dir.path()) / "twice";
  std::filesystem::create_directory(twice);
  write(twice / "a.toml", "users = [\"alice\"]\n");
  write(twice / "b.toml", "uids = [1001]\n");
  auto [set, text] = load(twice, std::nullopt);
  BOOST_TEST(set == nullptr);
  BOOST_TEST(text.find("b.toml: uid 1001 (alice) is also claimed by " +
                       (twice / "a.toml").string()) != std::string::npos,
             text);

  auto names = std::filesystem::path(dir.path()) / "names";
  std::filesystem::create_directory(names);
  write(names / "a.toml", "tenant = \"team\"\n");
  write(names / "b.toml", "tenant = \"team\"\n");
  std::tie(set, text) = load(names, std::nullopt);
  BOOST_TEST(set == nullptr);
  BOOST_TEST(text.find("tenant 'team' is also named by") != std::string::npos, text);

  auto one_bad = std::filesystem::path(dir.path()) / "one_bad";
  std::filesystem::create_directory(one_bad);
  write(one_bad / "good.toml", "uids = [5]\n");
  write(one_bad / "bad.toml", "max_items = -3\n");
  std::tie(set, text) = load(one_bad, std::nullopt);
  BOOST_TEST(set == nullptr);
  BOOST_TEST(text.find("bad.toml:1:13: max_items") != std::string::npos, text);

  std::filesystem::create_directory(one_bad / "sub.toml");
  std::tie(set, text) = load(one_bad, std::nullopt);
  BOOST_TEST(text.find("sub.toml: not a regular file") != std::string::npos, text);

  std::tie(set, text) = load(std::filesystem::path(dir.path()) / "missing", std::nullopt);
  BOOST_TEST(set == nullptr);
  BOOST_TEST(text.find("No such file or directory") != std::string::npos, text);

  // Whoever may edit a policy may make themselves an administrator.
  auto loose = std::filesystem::path(dir.path()) / "loose";
  std::filesystem::create_directory(loose);
  write(loose / "a.toml", "uids = [5]\n");
  ::chmod((loose / "a.toml").c_str(), 0666);
  std::tie(set, text) = load(loose, static_cast<std::uint32_t>(::geteuid()));
  BOOST_TEST(set == nullptr);
  BOOST_TEST(text.find("a.toml: writable by its group or others") != std::string::npos, text);
  ::chmod((loose / "a.toml").c_str(), 0644);
  std::tie(set, text) = load(loose, static_cast<std::uint32_t>(::geteuid()));
  BOOST_TEST(set != nullptr, text);
  std::tie(set, text) = load(loose, ::geteuid() + 1);  // owned by someone else
  if (::geteuid() != 0) {
    BOOST_TEST(set == nullptr);
    BOOST_TEST(text.find("not root or memosd's uid") != std::string::npos, text);
  }
}

BOOST_AUTO_TEST_CASE(the_sample_policies_read_as_a_folder) {
  // dist/tenants.d, installed as the samples memos-policy(5) points to,
  // with the users and groups they name.
  FakeDirectory users;
  std::vector<Diagnostic> diagnostics;
  auto set = PolicySet::load(std::string(MEMOS_SOURCE_DIR) + "/dist/tenants.d", users, std::nullopt,
                             &diagnostics);
  std::string text;
  for (const auto& d : diagnostics) text += d.text() + "\n";
  BOOST_TEST_REQUIRE(set != nullptr, text);
  BOOST_TEST(diagnostics.empty(), text);
  BOOST_TEST(set->tenants().size() == 2u);
  BOOST_TEST(set->data_uid(1002) == 1001u);   // bob keeps research's memory under alice
  BOOST_TEST(is_admin(*set->for_uid(1003)));  // carol is in memos-admins
  BOOST_TEST(set->data_uid(1003) == 990u);
  BOOST_TEST(set->default_policy()->max_items.value() == 100000u);
}
