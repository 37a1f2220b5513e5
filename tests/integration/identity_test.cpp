// A tenant is the client's real uid. The shipped unit once ran memosd in a
// user namespace (PrivateUsers=yes) where every uid but root's and memosd's
// own read as 65534, so all users shared one tenant (issue 13). Here memosd
// runs under the namespace settings of dist/memosd.service, where two users
// must be two tenants, and under `unshare --user --map-root-user` (what
// PrivateUsers did), where memosd must refuse users it cannot see rather
// than merge them.
#define BOOST_TEST_MODULE identity
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/raw_connection.h"

using memos::testing::ChildAs;
using memos::testing::MemosdProcess;
using memos::testing::TempDir;

namespace {

// Two unprivileged uids without accounts: the kernel needs none.
constexpr std::uint32_t kAlice = 42421;
constexpr std::uint32_t kBob = 42422;
const char* const kUnshare = "/usr/bin/unshare";

// The keys of dist/memosd.service, in order ("Key=value" lines).
std::vector<std::pair<std::string, std::string>> unit_settings() {
  std::ifstream in(std::string(MEMOS_SOURCE_DIR) + "/dist/memosd.service");
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

bool yes(const std::string& v) {
  return v == "yes" || v == "true" || v == "1" || v == "on" || v == "strict" || v == "full" ||
         v == "read-only" || v == "tmpfs";
}

// The unshare(1) options for the namespaces the unit's settings create
// (systemd.exec(5)): a mount namespace for the file system settings, a
// network one for PrivateNetwork, UTS for ProtectHostname, IPC for
// PrivateIPC, a user namespace for PrivateUsers.
std::vector<std::string> unit_namespaces() {
  bool mount = false, net = false, uts = false, ipc = false, user = false;
  for (const auto& [key, value] : unit_settings()) {
    if (!yes(value)) continue;
    if (key == "PrivateTmp" || key == "PrivateDevices" || key == "ProtectSystem" ||
        key == "ProtectHome" || key == "ProtectKernelTunables" || key == "ProtectKernelModules" ||
        key == "ProtectKernelLogs" || key == "ProtectControlGroups" || key == "ProtectProc") {
      mount = true;
    }
    if (key == "PrivateNetwork") net = true;
    if (key == "ProtectHostname") uts = true;
    if (key == "PrivateIPC") ipc = true;
    if (key == "PrivateUsers") user = true;
  }
  std::vector<std::string> args = {kUnshare};
  if (mount) args.push_back("--mount");
  if (net) args.push_back("--net");
  if (uts) args.push_back("--uts");
  if (ipc) args.push_back("--ipc");
  if (user) args.insert(args.end(), {"--user", "--map-root-user"});
  return args;
}

// unshare(1) works here for these namespaces (a container may forbid it).
boost::test_tools::assertion_result can_unshare(const std::vector<std::string>& args) {
  std::vector<std::string> argv = args;
  argv.push_back("/bin/true");
  std::string out, err;
  int rc = ::access(kUnshare, X_OK) == 0 ? memos::testing::run_command(argv, &out, &err) : -1;
  boost::test_tools::assertion_result r(rc == 0);
  r.message() << "cannot run memosd in new namespaces (" << args.size()
              << " args to unshare: " << (rc == -1 ? std::string("no ") + kUnshare : err) << ")";
  return r;
}

boost::test_tools::assertion_result root_and_unit_namespaces(boost::unit_test::test_unit_id id) {
  auto root = memos::testing::is_root(id);
  if (!root) return root;
  return can_unshare(unit_namespaces());
}

boost::test_tools::assertion_result root_and_user_namespace(boost::unit_test::test_unit_id id) {
  auto root = memos::testing::is_root(id);
  if (!root) return root;
  return can_unshare({kUnshare, "--user", "--map-root-user"});
}

// memosd in a folder every user may reach, run under `prefix`.
struct SharedDaemon {
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;
  explicit SharedDaemon(std::vector<std::string> prefix) {
    ::chmod(dir.path().c_str(), 0755);
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, dir.path());
    process->run_under(std::move(prefix));
    BOOST_REQUIRE_MESSAGE(process->start(), process->log());
  }
};

std::string expect(bool ok, const std::string& what) {
  return ok ? "" : what + "; ";
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_unit_creates_no_user_namespace) {
  auto settings = unit_settings();
  BOOST_REQUIRE(!settings.empty());
  for (const auto& [key, value] : settings) {
    BOOST_TEST(key != "PrivateUsers", "dist/memosd.service sets PrivateUsers=" << value);
    BOOST_TEST(key != "DynamicUser");
  }
  auto args = unit_namespaces();
  BOOST_TEST((std::find(args.begin(), args.end(), "--user") == args.end()));
}

BOOST_AUTO_TEST_CASE(two_users_are_two_tenants_under_the_units_namespaces,
                     *boost::unit_test::label("namespaces") *
                         boost::unit_test::precondition(root_and_unit_namespaces)) {
  SharedDaemon d(unit_namespaces());
  std::string socket = d.process->socket();
  ChildAs alice(kAlice, [&] {
    auto c = memos::Client::connect(socket);
    if (!c.ok()) return "alice cannot connect: " + c.error().message;
    auto& client = *c.value();
    auto status = client.status();
    std::string out;
    // (status may be refused to tenants; when it answers it names the uid.)
    if (status.ok()) out += expect(status->tenant_uid == kAlice, "alice's tenant is not her uid");
    out += expect(client.cube_create("diary").ok(), "alice cannot create her cube");
    out += expect(client.add("diary", {"alice's secret plan"}).ok(), "alice cannot add");
    return out;
  });
  BOOST_REQUIRE_EQUAL(alice.report(), "");
  ChildAs bob(kBob, [&] {
    auto c = memos::Client::connect(socket);
    if (!c.ok()) return "bob cannot connect: " + c.error().message;
    auto& client = *c.value();
    std::string out;
    auto cubes = client.cube_list();
    out += expect(cubes.ok() && cubes->empty(), "bob lists a cube that is not his");
    out += expect(!client.cube_show("diary").ok(), "bob sees alice's cube");
    out += expect(!client.search("diary", "secret plan").ok(), "bob searches alice's cube");
    // His own cube of the same name is another cube.
    out += expect(client.cube_create("diary").ok(), "bob cannot create his own diary");
    auto hits = client.search("diary", "secret plan");
    out += expect(hits.ok() && hits->empty(), "bob's diary holds alice's memory");
    return out;
  });
  BOOST_TEST(bob.report() == "");
  std::string log = d.process->log();
  BOOST_TEST(log.find("does not map the full uid range") == std::string::npos, log);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}

BOOST_AUTO_TEST_CASE(users_a_user_namespace_hides_are_refused_not_merged,
                     *boost::unit_test::label("namespaces") *
                         boost::unit_test::precondition(root_and_user_namespace)) {
  // What PrivateUsers=yes did: a user namespace mapping only root.
  SharedDaemon d({kUnshare, "--user", "--map-root-user"});
  std::string socket = d.process->socket();
  std::string log = d.process->log();
  BOOST_TEST(log.find("does not map the full uid range") != std::string::npos, log);
  auto refused_as = [&](const char* who) {
    return [&socket, who] {
      auto c = memos::Client::connect(socket);
      if (!c.ok()) return std::string(who) + " cannot connect: " + c.error().message;
      auto& client = *c.value();
      std::string out;
      auto created = client.cube_create("notes");
      if (created.ok()) return std::string(who) + " was served as the shared uid 65534";
      out += expect(created.error().code == memos::ErrorCode::permission_denied,
                    std::string(who) + " got " + created.error().message);
      out += expect(created.error().message.find("not visible in memosd's user namespace") !=
                        std::string::npos,
                    std::string(who) + " got no clear reason: " + created.error().message);
      out += expect(!created.error().retryable, "the refusal says retry");
      return out;
    };
  };
  ChildAs alice(kAlice, refused_as("alice"));
  BOOST_TEST(alice.report() == "");
  ChildAs bob(kBob, refused_as("bob"));
  BOOST_TEST(bob.report() == "");
  // Root, whom the namespace maps, is still served as itself.
  auto c = memos::Client::connect(socket);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(c.value()->cube_create("roots").ok());
  BOOST_TEST(d.process->log().find("not visible in memosd's user namespace") != std::string::npos);
  BOOST_TEST(d.process->stop() == 0, d.process->log());
}
