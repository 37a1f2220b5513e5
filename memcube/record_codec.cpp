#include "memcube/record_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

#include "memcube/schema/records.capnp.h"

namespace memos::store {
namespace {

std::string to_bytes(capnp::MallocMessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// LMDB hands out values at arbitrary alignment; Cap'n Proto needs words.
std::vector<capnp::word> aligned_copy(std::string_view bytes) {
  std::vector<capnp::word> words(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.data(), bytes.data(), words.size() * sizeof(capnp::word));
  return words;
}

// capnp 0.9.2 reads a segment count field of 0xFFFFFFFF as an empty message
// (every field default): a damaged record would decode "successfully".
bool plausible_table(const std::vector<capnp::word>& words) {
  std::uint32_t count_minus_one;
  std::memcpy(&count_minus_one, words.data(), sizeof(count_minus_one));
  return count_minus_one != 0xFFFFFFFFu && count_minus_one < 64;
}

capnp::ReaderOptions record_limits(std::size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words * 2 + 64;
  options.nestingLimit = 16;
  return options;
}

}  // namespace

std::string encode_item(const Item& item) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ItemRecord>();
  r.setId(item.id);
  r.setVersion(item.version);
  r.setText(capnp::Text::Reader(item.text.data(), item.text.size()));
  auto tags = r.initTags(static_cast<unsigned>(item.tags.size()));
  for (unsigned i = 0; i < item.tags.size(); ++i) {
    tags.set(i, capnp::Text::Reader(item.tags[i].data(), item.tags[i].size()));
  }
  auto meta = r.initMeta(static_cast<unsigned>(item.meta.size()));
  for (unsigned i = 0; i < item.meta.size(); ++i) {
    meta[i].setKey(capnp::Text::Reader(item.meta[i].key.data(), item.meta[i].key.size()));
    meta[i].setValue(capnp::Text::Reader(item.meta[i].value.data(), item.meta[i].value.size()));
  }
  r.setCreatedAtMs(item.created_at_ms);
  r.setUpdatedAtMs(item.updated_at_ms);
  r.setDeleted(item.deleted);
  return to_bytes(message);
}

std::string encode_cube(const Cube& cube) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::CubeRecord>();
  r.setId(cube.id);
  r.setName(capnp::Text::Reader(cube.name.data(), cube.name.size()));
  r.setOwnerUid(cube.owner);
  r.setCreatedAtMs(cube.created_at_ms);
  r.setEmbedder(capnp::Text::Reader(cube.embedder.data(), cube.embedder.size()));
  r.setDimension(cube.dimension);
  r.setLiveItems(cube.live_items);
  return to_bytes(message);
}

namespace {

// Checks and reads one record of schema Root; `fill` copies its fields out.
template <class Root, class Fill>
Status decode_record(std::string_view bytes, const char* what, Fill&& fill) {
  auto corrupt = [&](const std::string& why) {
    return Status{Errc::corrupt, std::string(what) + " record " + why};
  };
  if (bytes.size() % sizeof(capnp::word) != 0 || bytes.empty()) return corrupt("has a bad length");
  auto words = aligned_copy(bytes);
  if (!plausible_table(words)) return corrupt("has a bad segment table");
  bool exact = true;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()),
                                         record_limits(words.size()));
    exact = reader.getEnd() == words.data() + words.size();
    fill(reader.getRoot<Root>());
  });
  KJ_IF_MAYBE (e, failure) {
    return corrupt(std::string("does not decode: ") + e->getDescription().cStr());
  }
  if (!exact) return corrupt("has trailing bytes");
  return {};
}

}  // namespace

Status decode_item(std::string_view bytes, Item* out) {
  return decode_record<records::ItemRecord>(bytes, "item", [&](records::ItemRecord::Reader r) {
    out->id = r.getId();
    out->version = r.getVersion();
    out->text = r.getText();
    out->tags.clear();
    for (auto t : r.getTags()) out->tags.emplace_back(t.cStr(), t.size());
    out->meta.clear();
    for (auto m : r.getMeta()) {
      out->meta.push_back({std::string(m.getKey().cStr(), m.getKey().size()),
                           std::string(m.getValue().cStr(), m.getValue().size())});
    }
    out->created_at_ms = r.getCreatedAtMs();
    out->updated_at_ms = r.getUpdatedAtMs();
    out->deleted = r.getDeleted();
  });
}

Status decode_cube(std::string_view bytes, Cube* out) {
  return decode_record<records::CubeRecord>(bytes, "cube", [&](records::CubeRecord::Reader r) {
    out->id = r.getId();
    out->name = r.getName();
    out->owner = r.getOwnerUid();
    out->created_at_ms = r.getCreatedAtMs();
    out->embedder = r.getEmbedder();
    out->dimension = r.getDimension();
    out->live_items = r.getLiveItems();
  });
}

}  // namespace memos::store
