// trouble_log.h — what a thread that retries says of a lasting trouble (an
// engine down, a record that does not decode): the trouble once, and again
// when it changes or a minute has passed; its end once for each time it was
// said. An engine that comes and goes (JetStream during an election) then
// makes two lines a minute, not one per retry — scripts/cluster-test saw a
// node's log reader say twenty in 130 ms while every read barrier round woke
// it.
//
// Threading: one thread's own (not thread-safe).
#pragma once

#include <chrono>
#include <string>

#include "memcube/store_types.h"

namespace memos::cluster {

class TroubleLog {
 public:
  // `who` starts every line ("shard 3", "reading the log"); `goes_on` is
  // what is said when the trouble ends ("replication goes on").
  TroubleLog(std::string who, std::string goes_on);

  // One turn's outcome. A failure is said as a warning, or as an error when
  // `lasting` (it will not mend by itself: a replica stopped off the chain).
  void turn(const store::Status& outcome, bool lasting = false);

 private:
  const std::string who_, goes_on_;
  std::string last_;  // the last trouble said
  std::chrono::steady_clock::time_point last_at_{};
  bool said_ = false;  // a trouble was said since things last went on
};

}  // namespace memos::cluster
