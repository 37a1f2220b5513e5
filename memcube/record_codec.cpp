#include "memcube/record_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

#include "memcube/crc32c.h"
#include "memcube/schema/records.capnp.h"

namespace memos::store {
namespace {

constexpr char kMagic[4] = {'M', 'C', 'R', 1};
constexpr std::size_t kHeaderBytes = 8;

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}
std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

std::string to_record(capnp::MallocMessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  std::uint32_t crc = crc32c(bytes.begin(), bytes.size());
  std::string out(kMagic, sizeof(kMagic));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  return out;
}

// capnp 0.9.2 reads a segment count field of 0xFFFFFFFF as an empty message
// (every field default); records have one segment, a few at most.
bool plausible_table(const std::vector<capnp::word>& words) {
  std::uint32_t count_minus_one;
  std::memcpy(&count_minus_one, words.data(), sizeof(count_minus_one));
  return count_minus_one < 64;
}

capnp::ReaderOptions record_limits(std::size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words * 2 + 64;
  options.nestingLimit = 16;
  return options;
}

// Checks and reads one record of schema Root; `fill` copies its fields out.
template <class Root, class Fill>
Status decode_record(std::string_view bytes, const char* what, Fill&& fill) {
  auto corrupt = [&](const std::string& why) {
    return Status{Errc::corrupt, std::string(what) + " record " + why};
  };
  if (bytes.size() < kHeaderBytes + sizeof(capnp::word) ||
      (bytes.size() - kHeaderBytes) % sizeof(capnp::word) != 0) {
    return corrupt("has a bad length");
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return corrupt("has a bad header");
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= std::uint32_t{static_cast<unsigned char>(bytes[4 + i])} << (8 * i);
  }
  std::string_view body = bytes.substr(kHeaderBytes);
  if (crc32c(body.data(), body.size()) != stored) return corrupt("fails its checksum");
  // LMDB hands out values at arbitrary alignment; Cap'n Proto needs words.
  std::vector<capnp::word> words(body.size() / sizeof(capnp::word));
  std::memcpy(words.data(), body.data(), body.size());
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

std::string encode_item(const Item& item) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ItemRecord>();
  r.setId(item.id);
  r.setVersion(item.version);
  r.setText(text(item.text));
  auto tags = r.initTags(static_cast<unsigned>(item.tags.size()));
  for (unsigned i = 0; i < item.tags.size(); ++i) tags.set(i, text(item.tags[i]));
  auto meta = r.initMeta(static_cast<unsigned>(item.meta.size()));
  for (unsigned i = 0; i < item.meta.size(); ++i) {
    meta[i].setKey(text(item.meta[i].key));
    meta[i].setValue(text(item.meta[i].value));
  }
  r.setCreatedAtMs(item.created_at_ms);
  r.setRecordedAtMs(item.recorded_at_ms);
  r.setTier(static_cast<records::Tier>(item.tier));
  r.setState(static_cast<records::State>(item.state));
  r.setImportance(item.importance);
  r.setExpiresAtMs(item.expires_at_ms);
  r.setValidFromMs(item.valid_from_ms);
  r.setValidToMs(item.valid_to_ms);
  r.setWriterUid(item.provenance.writer);
  r.setSessionId(text(item.provenance.session));
  auto sources = r.initSources(static_cast<unsigned>(item.provenance.sources.size()));
  for (unsigned i = 0; i < item.provenance.sources.size(); ++i) {
    sources.set(i, item.provenance.sources[i]);
  }
  r.setCubeVersion(item.cube_version);
  if (item.param) {
    const Parametric& p = *item.param;
    auto pr = r.initParam();
    pr.setKind(text(p.kind));
    pr.setName(text(p.name));
    pr.setBlob(capnp::Data::Reader(p.blob.data(), p.blob.size()));
    pr.setSize(p.size);
    pr.setScale(p.scale);
    pr.setBaseModel(text(p.base_model));
    pr.setArchitecture(text(p.architecture));
    pr.setTensors(p.tensors);
    pr.setRank(p.rank);
    pr.setAlpha(p.alpha);
    pr.setOrigin(text(p.origin));
  }
  return to_record(message);
}

std::string encode_cube(const Cube& cube) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::CubeRecord>();
  r.setId(cube.id);
  r.setName(text(cube.name));
  r.setOwnerUid(cube.owner);
  r.setCreatedAtMs(cube.created_at_ms);
  r.setEmbedder(text(cube.embedder));
  r.setDimension(cube.dimension);
  r.setLiveItems(cube.live_items);
  r.setHeadVersion(cube.head_version);
  r.setDefaultRetriever(text(cube.default_retriever));
  r.setLanguage(text(cube.language));
  return to_record(message);
}

Status decode_item(std::string_view bytes, Item* out) {
  return decode_record<records::ItemRecord>(bytes, "item", [&](records::ItemRecord::Reader r) {
    out->id = r.getId();
    out->version = r.getVersion();
    out->text = str(r.getText());
    out->tags.clear();
    for (auto t : r.getTags()) out->tags.push_back(str(t));
    out->meta.clear();
    for (auto m : r.getMeta()) out->meta.push_back({str(m.getKey()), str(m.getValue())});
    out->created_at_ms = r.getCreatedAtMs();
    out->recorded_at_ms = r.getRecordedAtMs();
    // Enum values a newer writer added decode as numbers past the end: refuse.
    auto tier = static_cast<unsigned>(r.getTier());
    auto state = static_cast<unsigned>(r.getState());
    if (tier > static_cast<unsigned>(Tier::parametric) ||
        state > static_cast<unsigned>(State::deleted)) {
      KJ_FAIL_REQUIRE("unknown tier or state", tier, state);
    }
    out->tier = static_cast<Tier>(tier);
    out->state = static_cast<State>(state);
    out->importance = r.getImportance();
    out->expires_at_ms = r.getExpiresAtMs();
    out->valid_from_ms = r.getValidFromMs();
    out->valid_to_ms = r.getValidToMs();
    out->provenance.writer = r.getWriterUid();
    out->provenance.session = str(r.getSessionId());
    out->provenance.sources.clear();
    for (auto id : r.getSources()) out->provenance.sources.push_back(id);
    out->cube_version = r.getCubeVersion();
    out->param.reset();
    if (r.hasParam()) {
      auto pr = r.getParam();
      Parametric p;
      p.kind = str(pr.getKind());
      p.name = str(pr.getName());
      auto blob = pr.getBlob();
      KJ_REQUIRE(blob.size() == p.blob.size(), "parametric blob digest of a bad length");
      std::copy(blob.begin(), blob.end(), p.blob.begin());
      p.size = pr.getSize();
      p.scale = pr.getScale();
      p.base_model = str(pr.getBaseModel());
      p.architecture = str(pr.getArchitecture());
      p.tensors = pr.getTensors();
      p.rank = pr.getRank();
      p.alpha = pr.getAlpha();
      p.origin = str(pr.getOrigin());
      out->param = std::move(p);
    }
    KJ_REQUIRE(out->param.has_value() == (out->tier == Tier::parametric),
               "a parametric item without its adapter, or an adapter on another tier");
  });
}

Status decode_cube(std::string_view bytes, Cube* out) {
  return decode_record<records::CubeRecord>(bytes, "cube", [&](records::CubeRecord::Reader r) {
    out->id = r.getId();
    out->name = str(r.getName());
    out->owner = r.getOwnerUid();
    out->created_at_ms = r.getCreatedAtMs();
    out->embedder = str(r.getEmbedder());
    out->dimension = r.getDimension();
    out->live_items = r.getLiveItems();
    out->head_version = r.getHeadVersion();
    out->default_retriever = str(r.getDefaultRetriever());
    out->language = str(r.getLanguage());
  });
}

std::string encode_snapshot(const Snapshot& snapshot) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::SnapshotRecord>();
  r.setTag(text(snapshot.tag));
  r.setCubeVersion(snapshot.cube_version);
  r.setCreatedAtMs(snapshot.created_at_ms);
  r.setLiveItems(snapshot.live_items);
  r.setCreatedBy(snapshot.created_by);
  return to_record(message);
}

Status decode_snapshot(std::string_view bytes, Snapshot* out) {
  return decode_record<records::SnapshotRecord>(bytes, "snapshot",
                                                [&](records::SnapshotRecord::Reader r) {
                                                  out->tag = str(r.getTag());
                                                  out->cube_version = r.getCubeVersion();
                                                  out->created_at_ms = r.getCreatedAtMs();
                                                  out->live_items = r.getLiveItems();
                                                  out->created_by = r.getCreatedBy();
                                                });
}

std::string encode_idempotency(const IdempotencyRecord& record) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::IdempotencyRecord>();
  r.setOperation(record.operation);
  r.setCubeId(record.cube);
  r.setItemId(record.item);
  r.setVersion(record.version);
  r.setRecordedAtMs(record.recorded_at_ms);
  return to_record(message);
}

Status decode_idempotency(std::string_view bytes, IdempotencyRecord* out) {
  return decode_record<records::IdempotencyRecord>(bytes, "idempotency",
                                                   [&](records::IdempotencyRecord::Reader r) {
                                                     out->operation = r.getOperation();
                                                     out->cube = r.getCubeId();
                                                     out->item = r.getItemId();
                                                     out->version = r.getVersion();
                                                     out->recorded_at_ms = r.getRecordedAtMs();
                                                   });
}

std::string encode_activation(const Activation& a) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ActivationRecord>();
  r.setId(a.id);
  r.setCubeId(a.cube);
  r.setTenant(a.tenant);
  r.setModelHash(text(a.key.model_hash));
  r.setAdapters(text(a.key.adapters));
  r.setKvType(text(a.key.kv_type));
  r.setLayout(text(a.key.layout));
  r.setStateFormat(a.key.state_format);
  r.setModel(text(a.model));
  r.setChunkTokens(a.chunk_tokens);
  auto tokens = r.initTokens(static_cast<unsigned>(a.tokens.size()));
  for (unsigned i = 0; i < tokens.size(); ++i) tokens.set(i, a.tokens[i]);
  auto sources = r.initSources(static_cast<unsigned>(a.sources.size()));
  for (unsigned i = 0; i < sources.size(); ++i) sources.set(i, a.sources[i]);
  r.setBlob(capnp::Data::Reader(a.blob.data(), a.blob.size()));
  r.setSize(a.size);
  r.setCreatedAtMs(a.created_at_ms);
  r.setLastUsedMs(a.last_used_ms);
  r.setUses(a.uses);
  auto prefixes = r.initPrefixes(static_cast<unsigned>(a.prefixes.size()));
  for (unsigned i = 0; i < prefixes.size(); ++i) {
    prefixes.set(i, capnp::Data::Reader(a.prefixes[i].data(), a.prefixes[i].size()));
  }
  r.setPrefillMs(a.prefill_ms);
  return to_record(message);
}

Status decode_activation(std::string_view bytes, Activation* out) {
  bool digests_ok = true;
  Status s = decode_record<records::ActivationRecord>(
      bytes, "activation", [&](records::ActivationRecord::Reader r) {
        out->id = r.getId();
        out->cube = r.getCubeId();
        out->tenant = r.getTenant();
        out->key = {str(r.getModelHash()), str(r.getAdapters()), str(r.getKvType()),
                    str(r.getLayout()), r.getStateFormat()};
        out->model = str(r.getModel());
        out->chunk_tokens = r.getChunkTokens();
        out->tokens.clear();
        for (std::int32_t t : r.getTokens()) out->tokens.push_back(t);
        out->sources.clear();
        for (std::uint64_t id : r.getSources()) out->sources.push_back(id);
        auto copy_digest = [&](capnp::Data::Reader d, Digest* to) {
          if (d.size() != to->size()) {
            digests_ok = false;
            return;
          }
          std::memcpy(to->data(), d.begin(), d.size());
        };
        copy_digest(r.getBlob(), &out->blob);
        out->size = r.getSize();
        out->created_at_ms = r.getCreatedAtMs();
        out->last_used_ms = r.getLastUsedMs();
        out->uses = r.getUses();
        // Read the list once: each getPrefixes() charges the whole list to
        // the traversal limit, which is sized to the record.
        auto prefixes = r.getPrefixes();
        out->prefixes.resize(prefixes.size());
        for (unsigned i = 0; i < prefixes.size(); ++i) copy_digest(prefixes[i], &out->prefixes[i]);
        out->prefill_ms = r.getPrefillMs();
      });
  if (s.ok() && !digests_ok) return {Errc::corrupt, "activation record has a bad digest"};
  return s;
}

std::string encode_change_group(const ChangeGroup& group) {
  return encode_change_group(group.shard, group.epoch, group.schema, group.previous, group.changes);
}

std::string encode_change_group(std::uint32_t shard, std::uint64_t epoch, std::uint32_t schema,
                                std::string_view previous, const ChangeSet& set) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<records::ChangeGroupRecord>();
  r.setShard(shard);
  r.setEpoch(epoch);
  r.setSchema(schema);
  auto data = [](std::string_view s) {
    return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data()), s.size());
  };
  if (!previous.empty()) r.setPrevious(data(previous));
  const auto& changes = set.changes();
  auto list = r.initChanges(static_cast<unsigned>(changes.size()));
  for (unsigned i = 0; i < changes.size(); ++i) {
    list[i].setTable(static_cast<std::uint8_t>(changes[i].table));
    list[i].setKind(static_cast<std::uint8_t>(changes[i].kind));
    list[i].setKey(data(changes[i].key));
    list[i].setValue(data(changes[i].value));
  }
  return to_record(message);
}

Status decode_change_group(std::string_view bytes, ChangeGroup* out) {
  Status s = decode_record<records::ChangeGroupRecord>(
      bytes, "replication", [&](records::ChangeGroupRecord::Reader r) {
        out->shard = r.getShard();
        out->epoch = r.getEpoch();
        out->schema = r.getSchema();
        out->previous.clear();
        if (r.hasPrevious()) {
          auto p = r.getPrevious();
          out->previous.assign(reinterpret_cast<const char*>(p.begin()), p.size());
        }
        out->changes.clear();
        auto bytes_of = [](capnp::Data::Reader d) {
          return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
        };
        for (auto c : r.getChanges()) {
          out->changes.append(Change{static_cast<TableId>(c.getTable()),
                                     static_cast<ChangeKind>(c.getKind()), bytes_of(c.getKey()),
                                     bytes_of(c.getValue())});
        }
      });
  if (s.ok() && !out->previous.empty() && out->previous.size() != 32) {
    return {Errc::corrupt, "replication record names a previous record by a digest of " +
                               std::to_string(out->previous.size()) + " bytes"};
  }
  return s;
}

}  // namespace memos::store
