// daemon_fixture.h — a real memosd on a temporary socket and data folder for
// integration tests, with an optional configuration file, and SDK clients
// connected to it. Fails the test (BOOST_REQUIRE) if either does not work.
#pragma once

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace memos::testing {

struct Daemon {
  explicit Daemon(const std::string& config_text = "") {
    std::vector<std::string> args;
    if (!config_text.empty()) {
      std::string path = dir.path() + "/memosd.conf";
      std::ofstream(path) << config_text;
      args = {"--config", path};
    }
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, dir.path(), args);
    BOOST_REQUIRE_MESSAGE(process->start(), "memosd did not start:\n" + process->log());
  }
  std::unique_ptr<memos::Client> client() {
    auto c = memos::Client::connect(process->socket());
    BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? std::string() : c.error().message));
    return std::move(c.value());
  }
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;
};

}  // namespace memos::testing
