// child_as.h — a forked child process that acts as another uid, for tests
// of what one tenant sees of another's memory (needs root). Its body
// returns a report: "" for success, else what went wrong, which the test
// prints; exit codes that name a check are not needed.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace memos::testing {

// A forked child that becomes `uid` (and gid), runs `body` and sends back
// what it returns (a report, "" for success), then waits for release() so
// that whatever it opened stays open meanwhile. Needs root.
class ChildAs {
 public:
  ChildAs(std::uint32_t uid, const std::function<std::string()>& body) {
    int report[2], hold[2];
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(hold, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only its own two pipe ends: a copy of another child's hold pipe
      // would keep that child from seeing its release.
      std::vector<int> others;
      for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        int fd = std::stoi(entry.path().filename().string());
        if (fd > 2 && fd != report[1] && fd != hold[0]) others.push_back(fd);
      }
      for (int fd : others) ::close(fd);
      std::string out;
      if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
          ::setresuid(uid, uid, uid) != 0) {
        out = "cannot become uid " + std::to_string(uid);
      } else {
        out = body();
      }
      out.push_back('\0');  // the end of the report
      (void)!::write(report[1], out.data(), out.size());
      char c;
      while (::read(hold[0], &c, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(report[1]);
    ::close(hold[0]);
    report_fd_ = report[0];
    hold_fd_ = hold[1];
  }
  ~ChildAs() { release(); }
  ChildAs(const ChildAs&) = delete;
  ChildAs& operator=(const ChildAs&) = delete;

  // What body() returned, once it has (the child then holds on).
  std::string report() {
    if (done_) return report_;
    done_ = true;
    if (pid_ <= 0) return report_ = "fork failed";
    char buf[4096];
    std::string got;
    for (;;) {
      ssize_t n = ::read(report_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      if (!got.empty() && got.back() == '\0') break;
    }
    if (got.empty() || got.back() != '\0') return report_ = "the child died: " + got;
    got.pop_back();
    return report_ = got;
  }
  // Lets the child exit (closing what it holds) and reaps it.
  void release() {
    if (pid_ <= 0) return;
    report();
    ::close(hold_fd_);
    ::close(report_fd_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int report_fd_ = -1, hold_fd_ = -1;
  bool done_ = false;
  std::string report_;
};

// Runs `body` as `uid` in a child process and returns its report ("" for
// success). The child exits once it has reported.
inline std::string as_uid(std::uint32_t uid, const std::function<std::string()>& body) {
  ChildAs child(uid, body);
  return child.report();
}

}  // namespace memos::testing
