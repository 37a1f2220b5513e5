// locomo_daemon.h — a fresh memosd holding one LoCoMo conversation: every
// turn a memory of cube "locomo" (its session, "D3", and the session's date
// as valid-from), all of them searchable before the first search. Shared by
// locomo-recall and router-pareto; each conversation gets its own daemon,
// so none sees another's turns.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_data.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace memos::bench::locomo {

class ConversationDaemon {
 public:
  // `config`: a memosd.conf for the daemon (tuning on dev); empty: none.
  // Throws std::runtime_error when memosd does not start or a write fails.
  ConversationDaemon(const std::string& memosd, const std::string& config, const Conversation& conv)
      : daemon_(memosd, dir_.path(),
                config.empty() ? std::vector<std::string>{}
                               : std::vector<std::string>{"--config", config}) {
    start_daemon(daemon_, memosd);
    client_ = connect_client(daemon_.socket());
    cube_ = create_cube(*client_, "locomo").name;
    dia_ids_ = add_turns(*client_, cube_, conv.turns);
    // Adds are answered once durable: wait until every turn is searchable,
    // or the first search would see a partial index.
    memos::SearchOptions settle;
    settle.fresh = true;
    check(client_->search(cube_, "settle", settle), "search");
  }
  ConversationDaemon(const ConversationDaemon&) = delete;
  ConversationDaemon& operator=(const ConversationDaemon&) = delete;

  // Stops memosd, failing unless it exits cleanly (call it at the end of a
  // run; the destructor only cleans up).
  void stop() {
    client_.reset();  // before stopping: see stop_daemon
    stop_daemon(daemon_);
  }

  memos::Client& client() { return *client_; }
  const std::string& cube() const { return cube_; }
  // A memory's dialogue id ("D3:12"); throws for an id never added.
  const std::string& dia_id(std::uint64_t item) const {
    auto found = dia_ids_.find(item);
    if (found == dia_ids_.end()) throw std::runtime_error("memosd returned an item never added");
    return found->second;
  }

 private:
  memos::testing::TempDir dir_;
  memos::testing::MemosdProcess daemon_;
  std::unique_ptr<memos::Client> client_;
  std::string cube_;
  std::unordered_map<std::uint64_t, std::string> dia_ids_;
};

}  // namespace memos::bench::locomo
