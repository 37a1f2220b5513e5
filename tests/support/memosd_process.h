// memosd_process.h — runs a real memosd for integration tests and benchmarks:
// a temporary folder holds its socket and data; the daemon is started as a
// child process and stopped with a signal.
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <vector>

namespace memos::testing {

// A temporary folder, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class MemosdProcess {
 public:
  // `binary` is memosd's path; `dir` holds the socket (dir/memosd.sock) and
  // the data folder (dir/data). Extra arguments go after the defaults.
  MemosdProcess(std::string binary, std::string dir, std::vector<std::string> extra_args = {});
  // The same with the socket and data folder named explicitly (the log goes
  // to `dir`).
  MemosdProcess(std::string binary, std::string dir, std::string socket, std::string data_dir);
  ~MemosdProcess();  // SIGKILL if still running
  MemosdProcess(const MemosdProcess&) = delete;
  MemosdProcess& operator=(const MemosdProcess&) = delete;

  // Starts memosd and waits until its socket accepts connections. Returns
  // false (and leaves the log in log_path()) if it exits or times out.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Sends `signal` and waits for the exit. Returns the exit status, or
  // 128 + signal number if it died of a signal, or -1 if not running.
  int stop(int signal = 15, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits, without signalling, for memosd to exit by itself. Returns its
  // status as stop() does, or -1 if it is still running at the timeout (or
  // was not running).
  int wait_exit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  // Runs memosd through `prefix` (a program and its arguments, e.g.
  // {"/usr/bin/unshare", "--user", "--map-root-user"}) that execs it; the
  // next start() uses it. pid() is then the prefix's, which must exec.
  void run_under(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }
  // Arguments after the defaults, and "NAME=VALUE" entries that replace or
  // add to the inherited environment, for the next start() (fault
  // injection: LD_PRELOAD). Unless they name XDG_CONFIG_HOME, memosd gets
  // one without a memosd.conf: the user's own never reaches a test.
  void set_extra_args(std::vector<std::string> args) { extra_ = std::move(args); }
  void set_extra_env(std::vector<std::string> env) { env_ = std::move(env); }
  pid_t pid() const { return pid_; }

  const std::string& socket() const { return socket_; }
  const std::string& data_dir() const { return data_; }
  const std::string& log_path() const { return log_; }
  std::string log() const;

 private:
  std::string binary_, socket_, data_, log_;
  std::vector<std::string> extra_;
  std::vector<std::string> prefix_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
};

// The address of the Unix socket at `path` (truncated to fit, as tests'
// temporary paths always do).
sockaddr_un unix_address(const std::string& path);

// Runs a command to completion; captures stdout, returns the exit status.
int run_command(const std::vector<std::string>& argv, std::string* out, std::string* err = nullptr,
                const std::vector<std::string>& env = {});

}  // namespace memos::testing
