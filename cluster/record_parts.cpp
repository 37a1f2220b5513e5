#include "cluster/record_parts.h"

#include <algorithm>
#include <cstdio>

namespace memos::cluster {

Status split_record(std::string_view record, std::size_t max_payload,
                    std::vector<RecordPart>* out) {
  out->clear();
  // Room for the headers in each message.
  const std::size_t part_bytes = max_payload > 1024 ? max_payload - 512 : max_payload / 2;
  const std::size_t parts = std::max<std::size_t>(
      1, (record.size() + part_bytes - 1) / std::max<std::size_t>(1, part_bytes));
  if (parts > kMaxParts || part_bytes == 0) {
    return {Errc::conflict, "a commit group of " + std::to_string(record.size()) +
                                " bytes is over the log's limit of " + std::to_string(kMaxParts) +
                                " messages of " + std::to_string(max_payload) + " bytes"};
  }
  for (std::size_t i = 0; i < parts; ++i) {
    RecordPart part{record.substr(i * part_bytes, part_bytes), {}};
    if (parts > 1)
      part.headers.emplace_back(kPartHeader, std::to_string(i + 1) + "/" + std::to_string(parts));
    out->push_back(std::move(part));
  }
  return {};
}

Status PartAssembler::take(const StoredMessage& m, std::string* record) {
  record->clear();
  const std::string part = m.header(kPartHeader);
  if (part.empty()) {
    pending_.clear();  // a group left incomplete was abandoned by its writer
    next_ = 0;
    *record = m.data;
    return {};
  }
  unsigned index = 0, count = 0;
  char extra = 0;
  if (std::sscanf(part.c_str(), "%u/%u%c", &index, &count, &extra) != 2 || index == 0 ||
      index > count || count > kMaxParts) {
    return {Errc::corrupt,
            "log record " + std::to_string(m.sequence) + " has a bad part \"" + part + "\""};
  }
  if (index == 1) {
    pending_ = m.data;
    next_ = 2;
    parts_ = count;
  } else if (next_ == index && parts_ == count) {
    pending_ += m.data;
    ++next_;
  } else {
    // A part whose group began before what this node read, or was
    // abandoned: no one applied that group, so neither does this node.
    pending_.clear();
    next_ = 0;
    return {};
  }
  if (index == count) {
    record->swap(pending_);
    pending_.clear();
    next_ = 0;
  }
  return {};
}

}  // namespace memos::cluster
