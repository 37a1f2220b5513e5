// record_parts.h — a log record as messages the log accepts. A record over
// the log's message limit (a large commit group) goes in parts, each with the
// header `Memos-Part: i/n` and each appended fenced by the one before; a
// reader puts them back together and hands on the record once its last part
// has come. Parts of a group whose writer gave up before the last one are
// dropped by every reader, so no node applies that group.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/jetstream.h"

namespace memos::cluster {

inline constexpr const char* kPartHeader = "Memos-Part";
inline constexpr unsigned kMaxParts = 4096;

struct RecordPart {
  std::string_view bytes;  // into the record split
  Headers headers;         // none for a record sent whole
};

// The messages that carry `record` in a log whose messages hold at most
// `max_payload` bytes. Errors: conflict (more than kMaxParts parts).
Status split_record(std::string_view record, std::size_t max_payload, std::vector<RecordPart>* out);

// Puts records back together from messages read in log order. Not
// thread-safe: it belongs to the reading thread.
class PartAssembler {
 public:
  // `*record` gets the whole record when `m` completes one (or is one), and
  // is cleared otherwise. Errors: corrupt (a malformed part header).
  Status take(const StoredMessage& m, std::string* record);

 private:
  std::string pending_;  // the parts of a group so far
  unsigned next_ = 0, parts_ = 0;
};

}  // namespace memos::cluster
