// Tenant policy folders against a real memosd (memos-policy(5)): checked
// by memosd --check-policy and memctl policy check, refused whole at start
// and on a reload, shown and reloaded through memctl; and, with real
// separate uids (root), peers refused by allow = false, one tenant's uids
// sharing its memory, and roles deciding who may reload.
#define BOOST_TEST_MODULE tenant_policy
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::testing::ChildAs;
using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Unprivileged uids without accounts: the kernel needs none.
constexpr std::uint32_t kAlice = 42431;
constexpr std::uint32_t kBob = 42432;
constexpr std::uint32_t kCarol = 42433;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), 0644);
}

// A folder for memosd and its policies that every uid may reach.
struct PolicyDaemon {
  TempDir dir;
  fs::path policies;
  std::unique_ptr<MemosdProcess> process;

  PolicyDaemon() : policies(fs::path(dir.path()) / "tenants.d") {
    ::chmod(dir.path().c_str(), 0755);
    fs::create_directory(policies);
    ::chmod(policies.c_str(), 0755);
  }
  // `config`: memosd.conf's text, if any.
  void start(const std::string& config = "") {
    std::vector<std::string> args{"--policies", policies.string()};
    if (!config.empty()) {
      const fs::path conf = fs::path(dir.path()) / "memosd.conf";
      write(conf, config);
      args.insert(args.end(), {"--config", conf.string()});
    }
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, dir.path(), args);
    BOOST_REQUIRE_MESSAGE(process->start(), process->log());
  }
  std::unique_ptr<memos::Client> connect() {
    auto c = memos::Client::connect(process->socket());
    BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
    return std::move(c.value());
  }
};

std::string expect(bool ok, const std::string& what) {
  return ok ? "" : what + "; ";
}

// What `uid`'s client does, as a report ("" for success).
template <class Body>
std::string as(std::uint32_t uid, const std::string& socket, Body body) {
  ChildAs child(uid, [&] {
    auto c = memos::Client::connect(socket);
    if (!c.ok()) return "uid " + std::to_string(uid) + " cannot connect: " + c.error().message;
    return body(*c.value());
  });
  return child.report();
}

// Polls until `done` or 10 s (a SIGHUP reload runs on a worker).
template <class Done>
bool eventually(Done done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(check_policy_names_every_error_at_its_line_and_column) {
  TempDir dir;
  fs::path folder = fs::path(dir.path()) / "tenants.d";
  fs::create_directory(folder);
  write(folder / "team.toml", "uids = [42437]\nmax_items = 1000\n");
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-policy", folder.string()}, &out, &err) == 0, err);
  BOOST_TEST(out == folder.string() + ": ok (1 tenant)\n");
  BOOST_TEST(run_command({MEMOS_MEMCTL, "policy", "check", folder.string()}, &out, &err) == 0, err);

  write(folder / "bad.toml", "max_items = 10\nmax_itemz = 5\nweight = 0\n");
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-policy", folder.string()}, &out, &err) == 1);
  BOOST_TEST(err.find((folder / "bad.toml").string() + ":2:1: unknown key 'max_itemz'") !=
                 std::string::npos,
             err);
  BOOST_TEST(err.find("bad.toml:3:10: weight: 0 is out of range") != std::string::npos, err);
  BOOST_TEST(out.empty());

  // memctl reads the same files with the same parser, one file or a folder,
  // and says so in JSON for scripts.
  std::string file = (folder / "bad.toml").string();
  BOOST_TEST(run_command({MEMOS_MEMCTL, "policy", "check", file}, &out, &err) == 1);
  BOOST_TEST(err.find(file + ":2:1: unknown key 'max_itemz'") != std::string::npos, err);
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--json", "policy", "check", file}, &out, &err) == 1);
  BOOST_TEST(out.find("\"ok\":false") != std::string::npos, out);
  BOOST_TEST(out.find("\"where\":\"" + file + ":2:1\"") != std::string::npos, out);

  // Two files claiming one uid: both are named.
  fs::remove(folder / "bad.toml");
  write(folder / "other.toml", "uids = [42437]\n");
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-policy", folder.string()}, &out, &err) == 1);
  BOOST_TEST(err.find("team.toml: uid 42437 is also claimed by " +
                      (folder / "other.toml").string()) != std::string::npos,
             err);
}

BOOST_AUTO_TEST_CASE(a_bad_policy_folder_stops_the_start) {
  PolicyDaemon d;
  write(d.policies / "team.toml", "uids = [42437]\nmax_cubes = \"ten\"\n");
  MemosdProcess process(MEMOS_MEMOSD, d.dir.path(), {"--policies", d.policies.string()});
  BOOST_TEST(!process.start(10s));
  BOOST_TEST(
      process.log().find("team.toml:2:13: max_cubes: expected an integer") != std::string::npos,
      process.log());

  // A folder named by --policies must exist: a typo must not admit everyone.
  MemosdProcess missing(MEMOS_MEMOSD, d.dir.path(),
                        {"--policies", (fs::path(d.dir.path()) / "tenant.d").string()});
  BOOST_TEST(!missing.start(10s));
  BOOST_TEST(missing.log().find("tenant.d: No such file or directory") != std::string::npos,
             missing.log());
}

BOOST_AUTO_TEST_CASE(the_operator_shows_and_reloads_policies_and_a_bad_reload_changes_nothing) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "max_items = 5\n");
  write(d.policies / "team.toml", "uids = [42437]\nweight = 300\n");
  d.start();
  auto client = d.connect();

  // memosd's own uid is no file's: the default applies, and it is an admin.
  auto own = client->policy_show();
  BOOST_REQUIRE_MESSAGE(own.ok(), (own.ok() ? "" : own.error().message));
  BOOST_TEST(own->admin);
  BOOST_TEST(own->file == (d.policies / "default.toml").string());
  BOOST_TEST(own->folder == d.policies.string());
  BOOST_TEST(own->tenants == 1u);
  BOOST_TEST(own->stored_under == ::geteuid());
  BOOST_TEST(own->text.find("max_items = 5") != std::string::npos, own->text);

  auto team = client->policy_show("team");
  BOOST_REQUIRE_MESSAGE(team.ok(), (team.ok() ? "" : team.error().message));
  BOOST_TEST(team->text.find("weight = 300") != std::string::npos, team->text);
  BOOST_TEST(team->stored_under == 42437u);
  auto none = client->policy_show("nobody");
  BOOST_TEST((!none.ok() && none.error().code == memos::ErrorCode::not_found));

  // A bad file: the reload is refused with every error, the running
  // policies stay.
  write(d.policies / "team.toml", "uids = [42437]\nweight = -1\n");
  auto refused = client->policy_reload();
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.error().code == memos::ErrorCode::bad_request));
  BOOST_TEST(refused.error().message.find("team.toml:2:10: weight: -1 is out of range") !=
                 std::string::npos,
             refused.error().message);
  team = client->policy_show("team");
  BOOST_TEST((team.ok() && team->text.find("weight = 300") != std::string::npos));

  // A good one applies.
  write(d.policies / "team.toml", "uids = [42437]\nweight = 50\n");
  auto reloaded = client->policy_reload();
  BOOST_REQUIRE_MESSAGE(reloaded.ok(), (reloaded.ok() ? "" : reloaded.error().message));
  team = client->policy_show("team");
  BOOST_TEST((team.ok() && team->text.find("weight = 50") != std::string::npos));

  // SIGHUP re-reads the folder too.
  write(d.policies / "default.toml", "max_items = 9\n");
  ::kill(d.process->pid(), SIGHUP);
  BOOST_TEST(eventually([&] {
    auto p = client->policy_show();
    return p.ok() && p->text.find("max_items = 9") != std::string::npos;
  }));

  // memctl shows it as a user reads it.
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "policy", "show", "team"},
                         &out, &err) == 0,
             err);
  BOOST_TEST(out.find("# tenant team, memory stored under uid 42437") != std::string::npos, out);
  BOOST_TEST(out.find("weight = 50") != std::string::npos, out);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(a_user_no_policy_admits_is_refused_and_told_why,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "allow = false\n");
  write(d.policies / "alice.toml", "uids = [" + std::to_string(kAlice) + "]\n");
  d.start();
  std::string socket = d.process->socket();
  BOOST_TEST(as(kAlice, socket, [](memos::Client& c) {
               return expect(c.cube_create("notes").ok(), "alice is not served");
             }) == "");
  BOOST_TEST(as(kBob, socket, [&](memos::Client& c) {
               auto r = c.cube_create("notes");
               if (r.ok()) return std::string("bob was served");
               std::string out = expect(r.error().code == memos::ErrorCode::permission_denied,
                                        "bob got " + r.error().message);
               out += expect(r.error().message.find("uid " + std::to_string(kBob) +
                                                    " is not admitted") != std::string::npos &&
                                 r.error().message.find("default.toml says allow = false") !=
                                     std::string::npos,
                             "no clear reason: " + r.error().message);
               return out + expect(!r.error().retryable, "the refusal says retry");
             }) == "");
  // Root is always admitted: no policy can lock the operator out.
  auto root = d.connect();
  BOOST_TEST(root->status().ok());

  // A reload that refuses a connected user applies to its next request:
  // alice connects and is served, says so through a file, and waits.
  TempDir meeting;
  ::chmod(meeting.path().c_str(), 0777);
  fs::path connected = fs::path(meeting.path()) / "connected";
  ChildAs alice(kAlice, [&] {
    auto c = memos::Client::connect(socket);
    if (!c.ok()) return std::string("alice cannot connect");
    std::string out = expect(c.value()->cube_list().ok(), "alice is not served before");
    std::ofstream(connected) << "yes";
    for (int i = 0; i < 200; ++i) {
      auto r = c.value()->cube_list();
      if (!r.ok() && r.error().code == memos::ErrorCode::permission_denied) return out;
      std::this_thread::sleep_for(50ms);
    }
    return out + "alice is still served after the reload";
  });
  BOOST_REQUIRE(eventually([&] { return fs::exists(connected); }));
  write(d.policies / "alice.toml", "uids = [" + std::to_string(kAlice) + "]\nallow = false\n");
  auto reloaded = root->policy_reload();
  BOOST_TEST(reloaded.ok(), (reloaded.ok() ? "" : reloaded.error().message));
  BOOST_TEST(alice.report() == "");
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(one_tenants_uids_share_its_memory_and_no_one_else_sees_it,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  PolicyDaemon d;
  write(d.policies / "team.toml", "uids = [" + std::to_string(kAlice) + ", " +
                                      std::to_string(kBob) +
                                      "]\nowner = " + std::to_string(kAlice) + "\n");
  d.start();
  std::string socket = d.process->socket();
  BOOST_TEST(as(kAlice, socket, [](memos::Client& c) {
               std::string out = expect(c.cube_create("plans").ok(), "alice cannot create");
               return out + expect(c.add("plans", {"launch the rocket on friday"}).ok(),
                                   "alice cannot add");
             }) == "");
  BOOST_TEST(as(kBob, socket, [](memos::Client& c) {
               auto hits = c.search("plans", "rocket launch");
               std::string out =
                   expect(hits.ok() && hits->size() == 1u, "bob does not find his tenant's memory");
               auto policy = c.policy_show();
               out += expect(policy.ok() && policy->tenant == "team" &&
                                 policy->stored_under == kAlice && !policy->admin,
                             "bob's policy is not the team's");
               return out;
             }) == "");
  BOOST_TEST(as(kCarol, socket, [](memos::Client& c) {
               std::string out = expect(!c.cube_show("plans").ok(), "carol sees the team's cube");
               auto cubes = c.cube_list();
               out += expect(cubes.ok() && cubes->empty(), "carol lists the team's cube");
               auto other = c.policy_show("team");
               out +=
                   expect(!other.ok() && other.error().code == memos::ErrorCode::permission_denied,
                          "carol reads the team's policy");
               return out;
             }) == "");
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(only_administrators_reload_and_read_other_tenants,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  PolicyDaemon d;
  write(d.policies / "ops.toml", "uids = [" + std::to_string(kAlice) + "]\nrole = \"admin\"\n");
  write(d.policies / "dev.toml", "uids = [" + std::to_string(kBob) + "]\nmax_cubes = 3\n");
  d.start();
  std::string socket = d.process->socket();
  BOOST_TEST(as(kAlice, socket, [](memos::Client& c) {
               std::string out = expect(c.policy_reload().ok(), "the ops admin cannot reload");
               auto dev = c.policy_show("dev");
               out += expect(dev.ok() && dev->text.find("max_cubes = 3") != std::string::npos,
                             "the ops admin cannot read dev's policy");
               auto status = c.status();
               out += expect(status.ok() && status->admin, "status does not call her an admin");
               auto usage = c.tenant_usage("dev");
               out += expect(usage.ok() && usage->stored_under == kBob,
                             "the ops admin cannot read dev's usage");
               return out;
             }) == "");
  BOOST_TEST(
      as(kBob, socket, [](memos::Client& c) {
        auto r = c.policy_reload();
        std::string out =
            expect(!r.ok() && r.error().code == memos::ErrorCode::permission_denied &&
                       r.error().message.find("for administrators") != std::string::npos,
                   "a member reloads the policies");
        auto plugin = c.plugin_reload("hash-v1");
        out += expect(!plugin.ok() && plugin.error().code == memos::ErrorCode::permission_denied,
                      "a member reloads a plugin");
        auto usage = c.tenant_usage("ops");
        out += expect(!usage.ok() && usage.error().code == memos::ErrorCode::permission_denied,
                      "a member reads another tenant's usage");
        return out;
      }) == "");
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

// Alice shares "notes" with bob to read and with carol to write: bob reads
// it as alice/notes on every read path and cannot write; carol's writes
// count against alice's quota; an unshare hides it again at the next
// request; a cube never shared answers like one that does not exist.
BOOST_AUTO_TEST_CASE(a_shared_cube_is_read_and_written_as_its_grant_allows_and_no_further,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  PolicyDaemon d;
  write(d.policies / "alice.toml", "uids = [" + std::to_string(kAlice) + "]\nmax_items = 4\n");
  write(d.policies / "bob.toml", "uids = [" + std::to_string(kBob) + "]\n");
  write(d.policies / "carol.toml", "uids = [" + std::to_string(kCarol) + "]\n");
  d.start();
  const std::string socket = d.process->socket();
  BOOST_TEST(as(kAlice, socket, [](memos::Client& c) {
               std::string out = expect(c.cube_create("notes").ok() && c.cube_create("diary").ok(),
                                        "alice cannot create");
               out += expect(c.add("notes", {"the launch moves to friday"}).ok() &&
                                 c.add("diary", {"a private thought about friday"}).ok(),
                             "alice cannot add");
               out += expect(c.snapshot_create("notes", "v1").ok(), "alice cannot snapshot");
               auto shared = c.cube_share("notes", "bob");
               out += expect(shared.ok() && shared->shares.size() == 1u &&
                                 shared->shares[0].tenant == "bob" && !shared->shares[0].write,
                             "sharing with bob does not show bob's grant");
               out += expect(c.cube_share("notes", "carol", true).ok(), "cannot share with carol");
               auto self = c.cube_share("notes", "alice");
               out += expect(!self.ok() && self.error().code == memos::ErrorCode::bad_request,
                             "alice shares with herself");
               auto nobody = c.cube_share("notes", "nobody-here");
               out += expect(!nobody.ok() && nobody.error().code == memos::ErrorCode::not_found,
                             "a share with no such tenant is not not_found");
               return out;
             }) == "");
  BOOST_TEST(
      as(kBob, socket, [](memos::Client& c) {
        std::string out;
        auto cubes = c.cube_list();
        out += expect(cubes.ok() && cubes->size() == 1u && (*cubes)[0].name == "alice/notes" &&
                          (*cubes)[0].shared_by == "alice" && !(*cubes)[0].shared_write,
                      "bob's list does not hold alice/notes, read only");
        memos::SearchOptions fresh;
        fresh.fresh = true;  // alice's adds were answered once durable
        auto hits = c.search("alice/notes", "launch friday", fresh);
        out += expect(hits.ok() && hits->size() == 1u && (*hits)[0].cube == "alice/notes",
                      "bob does not find the shared memory, named as he named it");
        if (!hits.ok() || hits->empty()) return out;
        const std::uint64_t id = (*hits)[0].item.id;
        out += expect(c.get("alice/notes", id).ok(), "bob cannot get it");
        out += expect(c.history("alice/notes", id).ok(), "bob cannot read its history");
        out += expect(c.snapshot_list("alice/notes").ok(), "bob cannot list snapshots");
        out += expect(c.snapshot_diff("alice/notes", "v1").ok(), "bob cannot diff them");
        out += expect(c.kv_list("alice/notes").ok(), "bob cannot list its kv states");
        std::string archive;
        auto exported = c.export_cube("alice/notes", [&](std::string_view bytes) {
          archive.append(bytes);
          return true;
        });
        out += expect(exported.ok() && archive.find("launch moves") != std::string::npos,
                      "bob cannot export it");
        auto add = c.add("alice/notes", {"bob was here"});
        out += expect(!add.ok() && add.error().code == memos::ErrorCode::permission_denied &&
                          add.error().message.find("read-only") != std::string::npos,
                      "bob writes to a read-only share");
        auto rm = c.remove("alice/notes", id);
        out += expect(!rm.ok() && rm.error().code == memos::ErrorCode::permission_denied,
                      "bob removes from a read-only share");
        auto snap = c.snapshot_create("alice/notes", "mine");
        out += expect(!snap.ok() && snap.error().code == memos::ErrorCode::permission_denied,
                      "bob snapshots alice's cube");
        auto reshare = c.cube_share("alice/notes", "carol");
        out += expect(!reshare.ok() && reshare.error().code == memos::ErrorCode::permission_denied,
                      "bob shares alice's cube on");
        auto drop = c.cube_remove("alice/notes", true);
        out += expect(!drop.ok() && drop.error().code == memos::ErrorCode::permission_denied,
                      "bob removes alice's cube");
        // Never shared, and absent: the same answer.
        auto diary = c.search("alice/diary", "friday");
        auto none = c.search("alice/nothing", "friday");
        out +=
            expect(!diary.ok() && !none.ok() && diary.error().code == memos::ErrorCode::not_found &&
                       none.error().code == memos::ErrorCode::not_found &&
                       diary.error().message.find("shared with you") != std::string::npos,
                   "alice/diary is told apart from a missing cube");
        auto own = c.search("notes", "friday");
        out += expect(!own.ok() && own.error().code == memos::ErrorCode::not_found,
                      "bob's plain 'notes' finds alice's cube");
        return out;
      }) == "");
  BOOST_TEST(as(kCarol, socket, [](memos::Client& c) {
               std::string out = expect(c.add("alice/notes", {"carol adds a note"}).ok(),
                                        "carol cannot write to her write share");
               out += expect(c.add("alice/notes", {"carol adds another"}).ok(), "second add");
               // Alice's max_items = 4 is now reached: carol's writes count
               // against alice, not against carol.
               auto over = c.add("alice/notes", {"one too many"});
               out += expect(!over.ok() && over.error().code == memos::ErrorCode::quota_exceeded &&
                                 over.error().message.find("alice.toml") != std::string::npos,
                             "carol's write is not bounded by alice's quota");
               auto mine = c.tenant_usage();
               out += expect(mine.ok() && mine->items == 0u, "carol is charged for alice's items");
               return out;
             }) == "");
  BOOST_TEST(as(kAlice, socket, [](memos::Client& c) {
               auto usage = c.tenant_usage();
               std::string out =
                   expect(usage.ok() && usage->items == 4u, "alice does not hold carol's adds");
               auto cube = c.cube_unshare("notes", "bob");
               out += expect(
                   cube.ok() && cube->shares.size() == 1u && cube->shares[0].tenant == "carol",
                   "the unshare does not leave carol's grant alone");
               auto again = c.cube_unshare("notes", "bob");
               out += expect(!again.ok() && again.error().code == memos::ErrorCode::not_found,
                             "a second unshare is not not_found");
               return out;
             }) == "");
  BOOST_TEST(as(kBob, socket, [](memos::Client& c) {
               auto hits = c.search("alice/notes", "launch");
               std::string out =
                   expect(!hits.ok() && hits.error().code == memos::ErrorCode::not_found,
                          "bob still reads alice/notes after the unshare");
               auto cubes = c.cube_list();
               return out + expect(cubes.ok() && cubes->empty(), "bob still lists it");
             }) == "");
  // memctl: share, the grant in cube show, and unshare.
  std::string out, err;
  const std::string uid = "uid:" + std::to_string(kCarol);
  BOOST_TEST(
      run_command({MEMOS_MEMCTL, "--socket", socket, "cube", "create", "ops"}, &out, &err) == 0,
      err);
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", socket, "cube", "share", "ops", "--with",
                          "carol", "--write"},
                         &out, &err) == 0,
             err);
  BOOST_TEST(out.find("shared ops with carol (write)") != std::string::npos, out);
  BOOST_TEST(
      run_command({MEMOS_MEMCTL, "--socket", socket, "cube", "show", "ops"}, &out, &err) == 0, err);
  BOOST_TEST(
      out.find("with carol (uid " + std::to_string(kCarol) + "), write") != std::string::npos, out);
  BOOST_TEST(
      run_command({MEMOS_MEMCTL, "--socket", socket, "cube", "unshare", "ops", "--with", "carol"},
                  &out, &err) == 0,
      err);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

// Hostile owner/cube names and grants are refused with a clear error, and
// an unknown owner answers like an unshared cube.
BOOST_AUTO_TEST_CASE(hostile_shared_cube_names_and_grants_are_refused_cleanly) {
  PolicyDaemon d;
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  auto code_of = [](const auto& r) { return r.ok() ? memos::ErrorCode::unknown : r.error().code; };
  for (const std::string& name : std::vector<std::string>{
           "/notes", "a/b/c", "alice/", "-x/notes", "al ice/notes", std::string(65, 'a') + "/notes",
           "alice/" + std::string(65, 'n'), "alice/.import-1", "alice/../notes",
           std::string("al\x01ice/notes")}) {
    auto search = c->search(name, "anything");
    BOOST_TEST((code_of(search) == memos::ErrorCode::bad_request), name);
    auto add = c->add(name, {"text"});
    BOOST_TEST((!add.ok() && (add.error().code == memos::ErrorCode::bad_request ||
                              add.error().code == memos::ErrorCode::not_found)),
               name);
  }
  for (const std::string& name : std::vector<std::string>{
           "nobody-at-all/notes", "uid:4294967295/notes", "uid:99999999999/notes", "uid:/notes"}) {
    auto search = c->search(name, "anything");
    BOOST_TEST((code_of(search) == memos::ErrorCode::not_found), name);
    BOOST_TEST((code_of(c->get(name, 1)) == memos::ErrorCode::not_found), name);
    BOOST_TEST((code_of(c->add(name, {"text"})) == memos::ErrorCode::not_found), name);
  }
  BOOST_TEST((code_of(c->cube_share("notes", "")) == memos::ErrorCode::bad_request));
  BOOST_TEST(
      (code_of(c->cube_share("notes", std::string(65, 't'))) == memos::ErrorCode::bad_request));
  BOOST_TEST((code_of(c->cube_share("notes", "no-such-tenant")) == memos::ErrorCode::not_found));
  BOOST_TEST((code_of(c->cube_share("missing", "uid:1")) == memos::ErrorCode::not_found));
  BOOST_TEST((code_of(c->cube_share("x/notes", "uid:1")) == memos::ErrorCode::permission_denied));
  BOOST_TEST((code_of(c->cube_unshare("notes", "uid:1")) == memos::ErrorCode::not_found));
  // The caller's own tenant: its own cube, and no grant to itself.
  const std::string me = "uid:" + std::to_string(::geteuid());
  BOOST_TEST((code_of(c->cube_share("notes", me)) == memos::ErrorCode::bad_request));
  BOOST_TEST(c->add(me + "/notes", {"written through my own name"}).ok());
  memos::SearchOptions fresh;
  fresh.fresh = true;  // the add above is answered once durable, not yet searchable
  auto hits = c->search(me + "/notes", "written", fresh);
  BOOST_TEST((hits.ok() && hits->size() == 1u));
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(sixty_four_writers_against_max_items_end_with_exactly_the_bound) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "max_items = 1000\nmax_cubes = 2\n");
  d.start();
  BOOST_REQUIRE(d.connect()->cube_create("race").ok());
  constexpr int kWriters = 64;
  std::atomic<int> added{0}, refused{0}, other{0};
  std::string refusal;
  std::mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto c = memos::Client::connect(d.process->socket());
      if (!c.ok()) return (void)++other;
      for (int i = 0;; ++i) {
        auto r =
            c.value()->add("race", {"writer " + std::to_string(w) + " item " + std::to_string(i)});
        if (r.ok()) {
          ++added;
          continue;
        }
        if (r.error().code == memos::ErrorCode::quota_exceeded) {
          ++refused;
          std::lock_guard lock(mu);
          refusal = r.error().message;
        } else {
          ++other;
        }
        return;
      }
    });
  }
  for (auto& t : writers) t.join();
  BOOST_TEST(other.load() == 0);
  BOOST_TEST(added.load() == 1000);
  BOOST_TEST(refused.load() == kWriters);
  BOOST_TEST(
      refusal.find("max_items = 1000 reached: the tenant holds 1000 items") != std::string::npos,
      refusal);
  BOOST_TEST(refusal.find("default.toml") != std::string::npos, refusal);
  auto client = d.connect();
  auto cube = client->cube_show("race");
  BOOST_REQUIRE(cube.ok());
  BOOST_TEST(cube->live_items == 1000u);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(each_bound_refuses_what_would_cross_it_and_never_what_gives_back) {
  PolicyDaemon d;
  write(d.policies / "default.toml",
        "max_cubes = 1\nmax_items = 3\nmax_item_bytes = 100\nmax_plaintext_mb = 1\n");
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  auto second = c->cube_create("more");
  BOOST_REQUIRE(!second.ok());
  BOOST_TEST((second.error().code == memos::ErrorCode::quota_exceeded));
  BOOST_TEST(!second.error().retryable);
  BOOST_TEST(second.error().message.find("max_cubes = 1 reached: the tenant holds 1 cubes") !=
                 std::string::npos,
             second.error().message);

  auto big = c->add("notes", {std::string(101, 'x')});
  BOOST_REQUIRE(!big.ok());
  BOOST_TEST(
      big.error().message.find("max_item_bytes = 100: the text is 101 bytes") != std::string::npos,
      big.error().message);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = c->add("notes", {"note " + std::to_string(i)});
    BOOST_REQUIRE(r.ok());
    ids.push_back(r->id);
  }
  auto fourth = c->add("notes", {"note 3"});
  BOOST_TEST((!fourth.ok() && fourth.error().code == memos::ErrorCode::quota_exceeded));

  // Lowered below what it holds: new writes are refused, nothing is
  // deleted, and updates, removes and state changes still go through.
  write(d.policies / "default.toml", "max_items = 1\nmax_plaintext_mb = 0\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  auto cube = c->cube_show("notes");
  BOOST_TEST((cube.ok() && cube->live_items == 3u));
  BOOST_TEST(c->update("notes", ids[0], {"n"}).ok());  // shorter: gives back bytes
  auto longer = c->update("notes", ids[0], {"a longer note"});
  BOOST_TEST((!longer.ok() && longer.error().code == memos::ErrorCode::quota_exceeded));
  BOOST_TEST((!longer.ok() &&
              longer.error().message.find("max_plaintext_mb = 0 reached") != std::string::npos));
  BOOST_TEST(c->remove("notes", ids[1]).ok());
  auto again = c->add("notes", {"another"});
  BOOST_TEST((!again.ok() && again.error().code == memos::ErrorCode::quota_exceeded));

  // memctl prints the refusal and exits 1.
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "add", "notes", "more"},
                         &out, &err) == 1);
  BOOST_TEST(err.find("memctl: quotaExceeded: max_items = 1 reached") != std::string::npos, err);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(a_tenant_over_its_rate_is_told_when_to_come_back) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "[rates]\nwrites_per_s = 2\nwrites_burst = 2\n");
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("r").ok());  // cube changes are not rated
  BOOST_TEST(c->add("r", {"one"}).ok());
  BOOST_TEST(c->add("r", {"two"}).ok());
  auto third = c->add("r", {"three"});
  BOOST_REQUIRE(!third.ok());
  BOOST_TEST((third.error().code == memos::ErrorCode::rate_limited));
  BOOST_TEST(third.error().retryable);
  BOOST_TEST(third.error().retry_after_ms >= 1u);
  BOOST_TEST(third.error().retry_after_ms <= 500u);
  BOOST_TEST(third.error().message.find("writes_per_s") != std::string::npos);
  // Reads are not rated; after the wait it names, a write goes through.
  BOOST_TEST(c->search("r", "one").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(third.error().retry_after_ms + 20));
  BOOST_TEST(c->add("r", {"three"}).ok());

  // memctl prints the wait.
  std::string out, err;
  int rc = 0;
  for (int i = 0; i < 5 && rc == 0; ++i) {
    rc = run_command(
        {MEMOS_MEMCTL, "--socket", d.process->socket(), "add", "r", "x" + std::to_string(i)}, &out,
        &err);
  }
  BOOST_TEST(rc == 1);
  BOOST_TEST(err.find("memctl: rateLimited: writes_per_s") != std::string::npos, err);
  BOOST_TEST(err.find("; retry after ") != std::string::npos, err);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(max_inflight_bounds_what_a_tenant_queues) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "max_inflight = 1\n");
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("q").ok());
  // Fifty pipelined adds arrive together; the writer answers the first only
  // after its commit, so the others find one in flight.
  std::vector<std::future<memos::Result<memos::Item>>> adds;
  for (int i = 0; i < 50; ++i) adds.push_back(c->add_async("q", {"item " + std::to_string(i)}));
  int ok = 0, busy = 0;
  std::string message;
  for (auto& f : adds) {
    auto r = f.get();
    if (r.ok()) {
      ++ok;
    } else if (r.error().code == memos::ErrorCode::busy && r.error().retryable) {
      ++busy;
      message = r.error().message;
    }
  }
  BOOST_TEST(ok + busy == 50);
  BOOST_TEST(ok >= 1);
  BOOST_TEST(busy >= 1);
  BOOST_TEST(message.find("max_inflight = 1") != std::string::npos, message);
  // Once answered, the next request is admitted.
  BOOST_TEST(c->add("q", {"later"}).ok());
  auto cube = c->cube_show("q");
  BOOST_TEST((cube.ok() && cube->live_items == static_cast<std::uint64_t>(ok + 1)));
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(a_policys_activation_budget_replaces_the_configured_one) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "[activation]\nmax_mb = 64\n");
  d.start();
  auto c = d.connect();
  auto stats = c->kv_stats();
  BOOST_REQUIRE_MESSAGE(stats.ok(), (stats.ok() ? "" : stats.error().message));
  BOOST_TEST(stats->tenant_max_bytes == 64ull << 20);
  write(d.policies / "default.toml", "max_items = 5\n");  // no activation bound: the config's
  BOOST_REQUIRE(c->policy_reload().ok());
  stats = c->kv_stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->tenant_max_bytes == 8192ull << 20);  // activation.tenant_max_mb's default
  // max_blob_mb bounds every blob the tenant holds, activation states
  // included: the lower of the two is the tier's budget.
  write(d.policies / "default.toml", "max_blob_mb = 16\n[activation]\nmax_mb = 64\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  stats = c->kv_stats();
  BOOST_TEST((stats.ok() && stats->tenant_max_bytes == 16ull << 20));
  write(d.policies / "default.toml", "max_blob_mb = 32\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  stats = c->kv_stats();
  BOOST_TEST((stats.ok() && stats->tenant_max_bytes == 32ull << 20));
  auto usage = c->tenant_usage();
  BOOST_TEST((usage.ok() && usage->bounds.size() == 1u && usage->bounds[0].name == "max_blob_mb"));
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(a_tenant_sees_what_it_holds_against_its_bounds) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "max_cubes = 2\nmax_items = 10\n");
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("u").ok());
  for (const char* t : {"aaaaa", "bbbbb", "ccccc"}) BOOST_REQUIRE(c->add("u", {t}).ok());
  auto u = c->tenant_usage();
  BOOST_REQUIRE_MESSAGE(u.ok(), (u.ok() ? "" : u.error().message));
  BOOST_TEST(u->cubes == 1u);
  BOOST_TEST(u->items == 3u);
  BOOST_TEST(u->text_bytes == 15u);
  BOOST_TEST(u->stored_under == ::geteuid());
  BOOST_REQUIRE(u->bounds.size() == 2u);
  BOOST_TEST(u->bounds[0].name == "max_cubes");
  BOOST_TEST(u->bounds[0].limit == 2u);
  BOOST_TEST(u->bounds[0].used == 1u);
  BOOST_TEST(u->bounds[1].name == "max_items");
  BOOST_TEST(u->bounds[1].used == 3u);

  // An administrator (memosd's own uid here) reads any user's; nobody's is
  // refused by name.
  auto other = c->tenant_usage("uid:42499");
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(other->items == 0u);
  BOOST_TEST(other->tenant == "uid:42499");
  auto none = c->tenant_usage("no-such-user-anywhere");
  BOOST_TEST((!none.ok() && none.error().code == memos::ErrorCode::not_found));

  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMCTL, "--socket", d.process->socket(), "tenant", "usage"}, &out,
                         &err) == 0,
             err);
  BOOST_TEST(out.find("items        3, texts 15 B") != std::string::npos, out);
  BOOST_TEST(out.find("bound        max_items = 10: 3 used (30%)") != std::string::npos, out);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

// retention.purge_delay_s: the tenant's removed memories are purged after
// its own delay, not the daemon's store.tombstone_retention_s.
BOOST_AUTO_TEST_CASE(a_tenants_removed_memories_are_purged_after_its_own_delay) {
  PolicyDaemon d;
  write(d.policies / "default.toml", "[retention]\npurge_delay_s = 0\n");
  d.start("[store]\nretention_interval_ms = 100\ntombstone_retention_s = 86400\n");
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("notes").ok());
  auto item = c->add("notes", {"forget me soon"});
  BOOST_REQUIRE(item.ok());
  BOOST_REQUIRE(c->remove("notes", item->id).ok());
  BOOST_TEST(eventually([&] {
    auto h = c->history("notes", item->id);
    return !h.ok() && h.error().code == memos::ErrorCode::not_found;
  }));
  // A day's delay: the next removal waits.
  write(d.policies / "default.toml", "[retention]\npurge_delay_s = 86400\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  auto kept = c->add("notes", {"keep my history a day"});
  BOOST_REQUIRE(kept.ok());
  BOOST_REQUIRE(c->remove("notes", kept->id).ok());
  std::this_thread::sleep_for(500ms);  // five retention runs
  auto h = c->history("notes", kept->id);
  BOOST_TEST((h.ok() && h->size() == 2u));
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(what_a_tenant_may_use_and_its_default_retention) {
  PolicyDaemon d;
  write(d.policies / "default.toml",
        "[use]\ntiers = [\"plaintext\"]\nretrievers = [\"xapian-retriever\"]\n"
        "[retention]\nttl_s = 3600\n");
  d.start();
  auto c = d.connect();
  BOOST_REQUIRE(c->cube_create("w").ok());
  // A memory without a TTL of its own gets the tenant's default.
  auto before = std::chrono::system_clock::now();
  auto a = c->add("w", {"the tide turns at noon"});
  BOOST_REQUIRE(a.ok());
  auto expected = std::chrono::duration_cast<std::chrono::milliseconds>(
                      (before + std::chrono::hours(1)).time_since_epoch())
                      .count();
  BOOST_TEST(a->expires_at_ms >= expected - 1000);
  BOOST_TEST(a->expires_at_ms <= expected + 60000);
  memos::NewItem own{"kept a minute"};
  own.ttl_ms = 60000;
  auto b = c->add("w", own);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->expires_at_ms < a->expires_at_ms);

  // Lexical search runs on the retriever the policy lists; dense and
  // hybrid need faiss-retriever, which it leaves out.
  memos::SearchOptions lexical;
  lexical.mode = memos::SearchMode::lexical;
  BOOST_TEST(c->search("w", "tide", lexical).ok());
  memos::SearchOptions dense;
  dense.mode = memos::SearchMode::dense;
  auto refused = c->search("w", "tide", dense);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.error().code == memos::ErrorCode::permission_denied));
  BOOST_TEST(refused.error().message.find("a dense search runs on 'faiss-retriever', which "
                                          "use.retrievers leaves out") != std::string::npos,
             refused.error().message);

  // No activation tier: kv prefill is refused before anything runs.
  auto prefill = c->kv_prefill("w", {a->id});
  BOOST_REQUIRE(!prefill.ok());
  BOOST_TEST(prefill.error().message.find("may not use the activation tier") != std::string::npos,
             prefill.error().message);

  // Without the plaintext tier, no memory is added.
  write(d.policies / "default.toml", "[use]\ntiers = [\"activation\"]\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  auto no = c->add("w", {"another"});
  BOOST_TEST((!no.ok() && no.error().code == memos::ErrorCode::permission_denied));

  // An embedder the policy leaves out: no new cube is bound to it, and no
  // search embeds a query with it; lexical search needs none.
  write(d.policies / "default.toml", "[use]\nembedders = [\"llama-embedder\"]\n");
  BOOST_REQUIRE(c->policy_reload().ok());
  auto cube = c->cube_create("v");
  BOOST_REQUIRE(!cube.ok());
  BOOST_TEST((cube.error().code == memos::ErrorCode::permission_denied));
  BOOST_TEST(cube.error().message.find("'hash-embedder', which use.embedders leaves out") !=
                 std::string::npos,
             cube.error().message);
  memos::SearchOptions hybrid;
  hybrid.mode = memos::SearchMode::hybrid;
  auto embeds = c->search("w", "tide", hybrid);
  BOOST_TEST((!embeds.ok() && embeds.error().code == memos::ErrorCode::permission_denied));
  BOOST_TEST(c->search("w", "tide", lexical).ok());
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}
