// config_fields.h — how memosd.conf's keys are read and printed (config.cpp
// lists them): one Field per key, built by a typed helper that checks the
// value's type and range and says what it expected. Internal to the
// configuration; the helpers return an error text ("" when the value will
// do), never throw.
#pragma once

#include <toml++/toml.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/config.h"

namespace memos::kernel::config_fields {

// One field per key: `set` reads the node, checks type and range and stores
// it; `put` writes the current value into a table under the key's last
// name (for --print-config and the SIGHUP comparison). Both directions live
// in one row, so a key cannot be read without being printed.
struct Field {
  std::function<std::string(const toml::node&)> set;
  std::function<void(toml::table*, const std::string&)> put;
};

template <class T>
Field integer(T* field, std::int64_t lo, std::int64_t hi) {
  return {[=](const toml::node& node) -> std::string {
            auto v = node.value_exact<std::int64_t>();
            if (!v) return "expected an integer";
            if (*v < lo || *v > hi) {
              return "value " + std::to_string(*v) + " is out of range [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]";
            }
            *field = static_cast<T>(*v);
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            t->insert_or_assign(k, static_cast<std::int64_t>(*field));
          }};
}

// A string naming one of an enum's values: `parse` reads a name (nullopt:
// none it knows), `print` writes the value back, `refuse` says what a bad
// name gets.
template <class T, class Parse, class Print, class Refuse>
Field named(T* field, Parse parse, Print print, Refuse refuse) {
  return {[=](const toml::node& node) -> std::string {
            auto v = node.value_exact<std::string>();
            if (!v) return "expected a string";
            auto value = parse(*v);
            if (!value) return refuse(*v);
            *field = *value;
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            t->insert_or_assign(k, std::string(print(*field)));
          }};
}

Field string(std::string* field, std::function<std::string(const std::string&)> check = {});
Field string_list(std::vector<std::string>* field);
Field number(float* field, double lo, double hi);
Field real(double* field, double lo, double hi);
Field boolean(bool* field);
Field time_unit(std::uint64_t* seconds);
Field forgetting(policies::Forgetting* field);
Field search_mode(SearchMode* field);
Field cost_tier(CostTier* field);
Field activation_eviction(ActivationEviction* field);
Field log_format(LogFormat* field);
// [plugins.settings.NAME] tables.
Field plugin_settings(std::map<std::string, std::map<std::string, std::string>>* field);
// [executor.models]: low, mid, high, each a path (`check`).
Field tier_paths(std::array<std::string, 3>* field,
                 std::function<std::string(const std::string&)> check);

std::string check_log_level(const std::string& v);
std::string check_path(const std::string& v);           // non-empty, no NUL
std::string check_optional_path(const std::string& v);  // empty, or check_path
std::string check_kv_type(const std::string& v);
// cluster.name and cluster.node_id: 1 to 64 of [A-Za-z0-9_-] (they become
// parts of NATS subjects and etcd keys); the optional form allows "".
std::string check_cluster_word(const std::string& v);
std::string check_optional_cluster_word(const std::string& v);
// `scheme` then host:port (an optional "/" after), port 1 to 65535.
std::string check_endpoint(const std::string& v, std::string_view scheme);
// executor.device: auto, cpu, gpu or gpu:N (whether that GPU is there is
// the executor's to say when it loads).
std::string check_device(const std::string& v);

}  // namespace memos::kernel::config_fields
