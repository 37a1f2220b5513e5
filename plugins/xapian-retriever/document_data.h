// document_data.h — what the lexical retriever stores in a Xapian document's
// data: the item id and its filter attributes, so that reopening a database
// restores everything a search needs without memosd sending it again.
//
// Format: the 8 bytes "memosL1\0", then a Cap'n Proto plugin_wire::Document
// message (flat array) with the id and attributes set and no text or vector.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "plugins/retriever-common/filter.h"

namespace memos::lexical {

struct StoredDocument {
  std::uint64_t id = 0;
  retrieval::Attributes attributes;
};

std::string encode_document_data(std::uint64_t id, const retrieval::Attributes& attributes);

// Nothing when `data` is not something encode_document_data() wrote.
std::optional<StoredDocument> decode_document_data(std::string_view data);

}  // namespace memos::lexical
