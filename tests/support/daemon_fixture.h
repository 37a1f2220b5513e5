// daemon_fixture.h — a real memosd on a temporary socket and data folder for
// integration tests, with an optional configuration file, and SDK clients
// connected to it. Fails the test (BOOST_REQUIRE) if either does not work.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace memos::testing {

struct Daemon {
  // On a temporary folder of its own.
  explicit Daemon(const std::string& config_text = "") {
    own.emplace();
    start(own->path(), config_text, std::chrono::seconds(20));
  }
  // On `folder_path` (socket, data, configuration file), which outlives the
  // daemon: a later Daemon on the same folder starts on the same data.
  Daemon(std::string folder_path, const std::string& config_text,
         std::chrono::milliseconds start_timeout = std::chrono::seconds(20)) {
    start(std::move(folder_path), config_text, start_timeout);
  }
  // Writes are answered once searchable (ClientOptions::wait_searchable):
  // these tests read their own writes at once. The tests of the default,
  // answered on durability with indexing behind, connect with
  // client(Ack::durable).
  enum class Ack { searchable, durable };
  std::unique_ptr<memos::Client> client(Ack ack = Ack::searchable) {
    memos::ClientOptions options;
    options.wait_searchable = ack == Ack::searchable;
    auto c = memos::Client::connect(process->socket(), options);
    BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? std::string() : c.error().message));
    return std::move(c.value());
  }
  std::optional<TempDir> own;  // the folder, when the daemon has one of its own
  std::string folder;
  std::unique_ptr<MemosdProcess> process;

 private:
  void start(std::string folder_path, const std::string& config_text,
             std::chrono::milliseconds timeout) {
    folder = std::move(folder_path);
    std::vector<std::string> args;
    if (!config_text.empty()) {
      std::string path = folder + "/memosd.conf";
      std::ofstream(path) << config_text;
      args = {"--config", path};
    }
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, folder, args);
    BOOST_REQUIRE_MESSAGE(process->start(timeout), "memosd did not start:\n" + process->log());
  }
};

}  // namespace memos::testing
