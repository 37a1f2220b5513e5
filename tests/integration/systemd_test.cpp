// memosd under systemd: readiness, status, watchdog and stopping
// notifications on a test NOTIFY_SOCKET; SIGHUP reload, which keeps the
// running configuration when the file is bad; socket activation through
// systemd-socket-activate; --check-config.
#define BOOST_TEST_MODULE systemd
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <fstream>
#include <thread>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using namespace std::chrono_literals;

extern char** environ;

namespace {

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = memos::testing::unix_address(path);
    BOOST_REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~NotifySocket() { close(fd_); }
  // Reads messages until one contains `wanted`; false after `timeout`.
  bool wait_for(const std::string& wanted, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      seen_.append(buf, static_cast<std::size_t>(n)).append("\n");
      if (seen_.find(wanted) != std::string::npos) return true;
    }
    return false;
  }
  const std::string& seen() const { return seen_; }
  void forget() { seen_.clear(); }

 private:
  std::string path_;
  int fd_;
  std::string seen_;
};

bool log_has(const MemosdProcess& p, const std::string& text) {
  for (int i = 0; i < 100; ++i) {
    if (p.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(notifications_watchdog_and_sighup_reload) {
  TempDir dir;
  NotifySocket notify(dir.path() + "/notify");
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "log_level = \"info\"\n";
  setenv("NOTIFY_SOCKET", (dir.path() + "/notify").c_str(), 1);
  setenv("WATCHDOG_USEC", "200000", 1);
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  bool started = daemon.start();
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  BOOST_REQUIRE_MESSAGE(started, daemon.log());
  BOOST_TEST(notify.wait_for("READY=1", 5s), notify.seen());
  BOOST_TEST(notify.seen().find("STATUS=opening the store") != std::string::npos, notify.seen());
  BOOST_TEST(notify.seen().find("STATUS=opening the search indexes") != std::string::npos);
  BOOST_TEST(notify.wait_for("WATCHDOG=1", 2s), notify.seen());

  // A bad file is refused; the daemon keeps running on the old one.
  std::ofstream(conf) << "log_level = \"loud\"\n";
  notify.forget();
  kill(daemon.pid(), SIGHUP);
  BOOST_TEST(notify.wait_for("RELOADING=1", 2s), notify.seen());
  BOOST_TEST(log_has(daemon, "configuration not reloaded, the running one stays"), daemon.log());
  auto client = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE(client.ok());
  BOOST_TEST(client.value()->status().ok());
  // A good one takes effect.
  std::ofstream(conf) << "log_level = \"debug\"\n";
  kill(daemon.pid(), SIGHUP);
  BOOST_TEST(log_has(daemon, "configuration re-read; log level debug"), daemon.log());

  notify.forget();
  client.value().reset();
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
  BOOST_TEST(notify.wait_for("STOPPING=1", 2s), notify.seen());
}

BOOST_AUTO_TEST_CASE(socket_activation_through_systemd_socket_activate,
                     *boost::unit_test::label("socket_activate") *
                         boost::unit_test::precondition(memos::testing::HasProgram{
                             "/usr/bin/systemd-socket-activate"})) {
  TempDir dir;
  std::string sock = dir.path() + "/activated.sock";
  std::vector<std::string> args = {
      "/usr/bin/systemd-socket-activate", "-l", sock, MEMOS_MEMOSD, "--data", dir.path() + "/data"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::string log = dir.path() + "/log";
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT, 0600);
  pid_t pid;
  BOOST_REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  // The listener exists before memosd runs; the first client starts it.
  memos::Result<std::unique_ptr<memos::Client>> client = memos::Error{};
  for (int i = 0; i < 200 && !client.ok(); ++i) {
    client = memos::Client::connect(sock);
    if (!client.ok()) std::this_thread::sleep_for(20ms);
  }
  BOOST_REQUIRE(client.ok());
  auto status = client.value()->status();
  BOOST_REQUIRE_MESSAGE(status.ok(), (status.ok() ? "" : status.error().message));
  BOOST_TEST(status->socket == sock);
  client.value().reset();
  kill(pid, SIGTERM);
  int rc = 0;
  waitpid(pid, &rc, 0);
  BOOST_TEST(WIFEXITED(rc));
  BOOST_TEST(WEXITSTATUS(rc) == 0);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(text.find("listening on the socket systemd passed") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(check_config_validates_with_line_numbers) {
  TempDir dir;
  std::string good = dir.path() + "/good.conf", bad = dir.path() + "/bad.conf";
  std::ofstream(good) << "[store]\nmap_size_mb = 64\n";
  std::ofstream(bad) << "[store]\n\nmap_size_mb = \"big\"\n";
  std::string out, err;
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", good}, &out, &err) == 0);
  BOOST_TEST(out.find("ok") != std::string::npos);
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", bad}, &out, &err) == 1);
  BOOST_TEST(err.find("bad.conf:3:") != std::string::npos, err);
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", MEMOS_SOURCE_DIR "/dist/memosd.conf"},
                         &out, &err) == 0,
             err);
}

// Careless values once passed: `--check-config ""` started a full daemon on
// the system paths, `--socket ""` and `--data ""` fell back to the defaults,
// a folder or /dev/zero checked "ok", and so did a model that is not there.
BOOST_AUTO_TEST_CASE(check_config_and_options_refuse_careless_values) {
  TempDir dir;
  std::string out, err;
  for (const char* option : {"--check-config", "--config", "--socket", "--data", "--log-level"}) {
    BOOST_TEST(run_command({MEMOS_MEMOSD, option, ""}, &out, &err) == 2, option);
    BOOST_TEST(err.find("must not be empty") != std::string::npos, option << ": " << err);
  }
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", dir.path()}, &out, &err) == 1);
  BOOST_TEST(err.find("not a regular file") != std::string::npos, err);
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", "/dev/zero"}, &out, &err) == 1);
  BOOST_TEST(err.find("not a regular file") != std::string::npos, err);
  std::string no_model = dir.path() + "/no-model.conf";
  std::ofstream(no_model) << "[executor]\nmodel = \"" << dir.path() << "/absent.gguf\"\n";
  BOOST_TEST(run_command({MEMOS_MEMOSD, "--check-config", no_model}, &out, &err) == 1);
  BOOST_TEST(err.find("executor.model") != std::string::npos, err);
  BOOST_TEST(err.find("No such file") != std::string::npos, err);
}
