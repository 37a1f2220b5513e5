// output.h — how memctl reports: exit statuses, usage errors, and a refused
// request in human or JSON form (memctl(1), EXIT STATUS).
#pragma once

#include <cstdio>
#include <string>

#include "memos/client.h"
#include "shell/json_writer.h"

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

  // Prints a refused request and returns the exit status for it.
  int refused(const memos::Error& e) const {
    std::fprintf(stderr, "memctl: %s: %s\n", memos::to_string(e.code), e.message.c_str());
    if (json_) {
      JsonWriter j;
      j.begin_object().key("error").begin_object();
      j.key("code").value(memos::to_string(e.code));
      j.key("message").value(e.message);
      j.key("retryable").value(e.retryable);
      j.end_object().end_object();
      std::printf("%s\n", j.str().c_str());
    }
    return kExitRefused;
  }

  int emit(const JsonWriter& j) const {
    std::printf("%s\n", j.str().c_str());
    return 0;
  }

 private:
  bool json_;
};

}  // namespace memos::shell
