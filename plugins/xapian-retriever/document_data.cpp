#include "plugins/xapian-retriever/document_data.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <exception>
#include <vector>

namespace memos::lexical {
namespace {

constexpr char kMagic[8] = {'m', 'e', 'm', 'o', 's', 'L', '1', '\0'};

}  // namespace

std::string encode_document_data(std::uint64_t id, const retrieval::Attributes& a) {
  capnp::MallocMessageBuilder message;
  auto d = message.initRoot<plugin_wire::Document>();
  d.setId(id);
  auto tags = d.initTags(static_cast<unsigned>(a.tags.size()));
  for (unsigned i = 0; i < a.tags.size(); ++i) tags.set(i, a.tags[i]);
  auto meta = d.initMeta(static_cast<unsigned>(a.meta.size()));
  for (unsigned i = 0; i < a.meta.size(); ++i) {
    meta[i].setKey(a.meta[i].first);
    meta[i].setValue(a.meta[i].second);
  }
  d.setTier(a.tier);
  d.setState(a.state);
  d.setArchived(a.state == "archived");
  d.setValidFromMs(a.valid_from_ms);
  d.setValidToMs(a.valid_to_ms);
  d.setRecordedAtMs(a.recorded_at_ms);
  d.setExpiresAtMs(a.expires_at_ms);
  d.setImportance(a.importance);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  std::string out(kMagic, sizeof kMagic);
  out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  return out;
}

std::optional<StoredDocument> decode_document_data(std::string_view data) {
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return std::nullopt;
  }
  data.remove_prefix(sizeof kMagic);
  if (data.empty() || data.size() % sizeof(capnp::word) != 0) return std::nullopt;
  std::vector<capnp::word> words(data.size() / sizeof(capnp::word));
  std::memcpy(words.data(), data.data(), data.size());
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 2 + 64;
    options.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()), options);
    auto d = reader.getRoot<plugin_wire::Document>();
    return StoredDocument{d.getId(), retrieval::attributes_of(d)};
  } catch (const std::exception&) {  // kj::Exception: malformed message
    return std::nullopt;
  }
}

}  // namespace memos::lexical
