// output.h — how memctl reports: exit statuses, usage errors, and a refused
// request in human or JSON form (memctl(1), EXIT STATUS).
#pragma once

#include <cstdio>
#include <string>
#include <utility>

#include "memos/client.h"
#include "shell/json_output.h"

namespace memos::shell {

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;

// Bad usage found after parsing (exit status 2).
struct UsageError {
  std::string message;
};

class Output {
 public:
  explicit Output(bool json) : json_(json) {}
  bool json() const { return json_; }

  // Prints a refused request and returns the exit status for it. `about`
  // names what the request was about as the user typed it ("cube 'maya',
  // item 038GWRXC9G000"), where the daemon's message may not.
  int refused(const memos::Error& e, const std::string& about = "") const {
    std::string retry =
        e.retry_after_ms ? "; retry after " + std::to_string(e.retry_after_ms) + " ms" : "";
    std::fprintf(stderr, "memctl: %s: %s%s%s%s%s\n", memos::to_string(e.code), e.message.c_str(),
                 about.empty() ? "" : " (", about.c_str(), about.empty() ? "" : ")", retry.c_str());
    if (json_) {
      Json error;
      error["code"] = memos::to_string(e.code);
      error["message"] = e.message;
      error["retryable"] = e.retryable;
      if (e.retry_after_ms) error["retry_after_ms"] = e.retry_after_ms;
      Json j;
      j["error"] = std::move(error);
      std::printf("%s\n", json_text(j).c_str());
    }
    return kExitRefused;
  }

  int emit(const Json& j) const {
    std::printf("%s\n", json_text(j).c_str());
    return 0;
  }

 private:
  bool json_;
};

}  // namespace memos::shell
