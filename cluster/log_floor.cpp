#include "cluster/log_floor.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "cluster/names.h"

namespace memos::cluster {

using json = nlohmann::json;

std::string log_floor_value(const std::vector<std::uint64_t>& positions) {
  return json{{"positions", positions}}.dump();
}

store::Status parse_log_floor(std::string_view value, std::vector<std::uint64_t>* positions) {
  const json j = json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("positions") || !j["positions"].is_array())
    return {store::Errc::corrupt, "not an object with a list of positions"};
  std::vector<std::uint64_t> out;
  for (const json& p : j["positions"]) {
    // nlohmann's get<std::uint64_t>() would take -1 as 2^64 - 1.
    if (!p.is_number_unsigned()) return {store::Errc::corrupt, "a position is not a count"};
    out.push_back(p.get<std::uint64_t>());
  }
  *positions = std::move(out);
  return {};
}

store::Status read_log_floor(EtcdClient& etcd, std::string_view cluster,
                             std::vector<std::uint64_t>* positions, std::int64_t* revision) {
  const std::string key = log_floor_key(cluster);
  std::optional<EtcdKeyValue> kv;
  if (store::Status s = etcd.get(key, &kv); !s.ok()) return s;
  if (revision) *revision = kv ? kv->mod_revision : 0;
  if (!kv) {
    positions->clear();
    return {};
  }
  if (store::Status s = parse_log_floor(kv->value, positions); !s.ok())
    return {s.code, "etcd key " + key + " is not the log's floor: " + s.message};
  return {};
}

}  // namespace memos::cluster
