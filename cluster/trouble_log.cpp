#include "cluster/trouble_log.h"

#include <spdlog/spdlog.h>

namespace memos::cluster {

TroubleLog::TroubleLog(std::string who, std::string goes_on)
    : who_(std::move(who)), goes_on_(std::move(goes_on)) {}

void TroubleLog::turn(const store::Status& outcome, bool lasting) {
  const auto now = std::chrono::steady_clock::now();
  if (outcome.ok()) {
    if (said_) spdlog::info("{}: {}", who_, goes_on_);
    said_ = false;
    return;
  }
  if (outcome.message == last_ && now - last_at_ < std::chrono::minutes(1)) return;
  last_ = outcome.message;
  last_at_ = now;
  said_ = true;
  if (lasting) {
    spdlog::error("{}: {}", who_, outcome.message);
  } else {
    spdlog::warn("{}: {}", who_, outcome.message);
  }
}

}  // namespace memos::cluster
