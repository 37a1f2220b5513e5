#include "tests/support/memosd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace memos::testing {
namespace {

bool can_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr = unix_address(path);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

}  // namespace

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "memos-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

MemosdProcess::MemosdProcess(std::string binary, std::string dir,
                             std::vector<std::string> extra_args)
    : binary_(std::move(binary)),
      socket_(dir + "/memosd.sock"),
      data_(dir + "/data"),
      log_(dir + "/memosd.log"),
      extra_(std::move(extra_args)) {}

MemosdProcess::MemosdProcess(std::string binary, std::string dir, std::string socket,
                             std::string data_dir)
    : binary_(std::move(binary)),
      socket_(std::move(socket)),
      data_(std::move(data_dir)),
      log_(dir + "/memosd.log") {}

MemosdProcess::~MemosdProcess() {
  if (pid_ > 0) stop(SIGKILL);
}

bool MemosdProcess::start(std::chrono::milliseconds timeout) {
  std::vector<std::string> args = prefix_;
  for (const std::string& a :
       {binary_, std::string("--socket"), socket_, std::string("--data"), data_}) {
    args.push_back(a);
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  // Without --config memosd reads the user's ~/.config/memosd/memosd.conf
  // (config_discovery.h): a developer's own must not reach the tests, so
  // unless a test names one, XDG_CONFIG_HOME is a folder that is not there.
  std::vector<std::string> env = env_;
  if (std::none_of(env.begin(), env.end(),
                   [](const std::string& e) { return e.starts_with("XDG_CONFIG_HOME="); })) {
    env.push_back("XDG_CONFIG_HOME=" + log_.substr(0, log_.rfind('/')) + "/no-user-config");
  }
  // An extra entry replaces an inherited one of the same name.
  auto overridden = [&env](std::string_view entry) {
    auto name = entry.substr(0, entry.find('=') + 1);
    return std::any_of(env.begin(), env.end(),
                       [&](const std::string& e) { return e.starts_with(name); });
  };
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) envp.push_back(*e);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawn(&pid_, args.front().c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (can_connect(socket_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop(SIGKILL);
  return false;
}

int MemosdProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  return decode_status(status);
}

int MemosdProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  return decode_status(status);
}

std::string MemosdProcess::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_command(const std::vector<std::string>& argv_in, std::string* out, std::string* err,
                const std::vector<std::string>& env) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return -1;
  }
  std::string err_text;
  std::thread err_reader([&] { err_text = read_fd(err_pipe[0]); });
  std::string out_text = read_fd(out_pipe[0]);
  err_reader.join();
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (out) *out = out_text;
  if (err) *err = err_text;
  return decode_status(status);
}

}  // namespace memos::testing
