#include "kernel/config_fields.h"

#include <charconv>
#include <cstdlib>
#include <sstream>
#include <type_traits>
#include <utility>

namespace memos::kernel::config_fields {
namespace {

// The shortest decimal that reads back as the same float: 0.1f prints as
// 0.1, not as the double 0.10000000149011612.
double printable(float value) {
  char text[32];
  auto end = std::to_chars(text, text + sizeof(text), value).ptr;
  return std::strtod(std::string(text, end).c_str(), nullptr);
}

}  // namespace

Field string(std::string* field, std::function<std::string(const std::string&)> check) {
  return {[=](const toml::node& node) -> std::string {
            auto v = node.value_exact<std::string>();
            if (!v) return "expected a string";
            if (check) {
              std::string err = check(*v);
              if (!err.empty()) return err;
            }
            *field = *v;
            return "";
          },
          [=](toml::table* t, const std::string& k) { t->insert_or_assign(k, *field); }};
}

Field string_list(std::vector<std::string>* field) {
  return {[=](const toml::node& node) -> std::string {
            const auto* array = node.as_array();
            if (!array) return "expected an array of strings";
            std::vector<std::string> values;
            for (const auto& element : *array) {
              auto v = element.value_exact<std::string>();
              if (!v || v->empty()) return "expected an array of non-empty strings";
              values.push_back(*v);
            }
            *field = std::move(values);
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            toml::array values;
            for (const auto& v : *field) values.push_back(v);
            t->insert_or_assign(k, std::move(values));
          }};
}

namespace {

// A float or double key in [lo, hi]; an integer is read as a number too.
// Floats print as the float they hold (printable), not the double nearest.
template <class Real>
Field bounded_real(Real* field, double lo, double hi) {
  return {[=](const toml::node& node) -> std::string {
            auto v = node.value<double>();
            if (!v || !(*v >= lo && *v <= hi)) {
              return "expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "]";
            }
            *field = static_cast<Real>(*v);
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            if constexpr (std::is_same_v<Real, float>)
              t->insert_or_assign(k, printable(*field));
            else
              t->insert_or_assign(k, *field);
          }};
}

}  // namespace

Field number(float* field, double lo, double hi) {
  return bounded_real(field, lo, hi);
}

Field real(double* field, double lo, double hi) {
  return bounded_real(field, lo, hi);
}

// scheduler.time_unit: a unit's name, kept as seconds.
Field time_unit(std::uint64_t* seconds) {
  return named(
      seconds, [](const std::string& v) { return policies::parse_time_unit(v); },
      [](std::uint64_t unit) { return policies::time_unit_name(unit); },
      [](const std::string& v) {
        return "must be seconds, minutes, hours or days, not '" + v + "'";
      });
}

Field forgetting(policies::Forgetting* field) {
  return named(
      field, [](const std::string& v) { return policies::parse_forgetting(v); },
      [](policies::Forgetting f) { return policies::to_string(f); },
      [](const std::string& v) { return "must be off or archive, not '" + v + "'"; });
}

Field search_mode(SearchMode* field) {
  return named(
      field, [](const std::string& v) { return parse_search_mode(v); },
      [](SearchMode m) { return to_string(m); },
      [](const std::string&) { return std::string("must be ") + search_mode_names(); });
}

// The default tier of routing: each module at it or the best below it
// memosd runs (temporal, expand and compress stop at mid).
Field cost_tier(CostTier* field) {
  return named(
      field, [](const std::string& v) { return parse_cost_tier(v); },
      [](CostTier t) { return to_string(t); },
      [](const std::string& v) { return "must be low, mid or high, not '" + v + "'"; });
}

Field activation_eviction(ActivationEviction* field) {
  return named(
      field, [](const std::string& v) { return parse_activation_eviction(v); },
      [](ActivationEviction e) { return to_string(e); },
      [](const std::string& v) { return "must be utility or lru, not '" + v + "'"; });
}

Field log_format(LogFormat* field) {
  return named(
      field, [](const std::string& v) { return parse_log_format(v); },
      [](LogFormat f) { return to_string(f); },
      [](const std::string& v) { return "log_format must be text or json, not '" + v + "'"; });
}

// [plugins.settings.NAME] tables: KEY = "text" | number | boolean, kept as
// text (and printed as strings, which read back the same).
Field plugin_settings(std::map<std::string, std::map<std::string, std::string>>* field) {
  return {[=](const toml::node& node) -> std::string {
            const auto* plugins = node.as_table();
            if (!plugins) return "expected tables [plugins.settings.NAME]";
            std::map<std::string, std::map<std::string, std::string>> all;
            for (const auto& [name, settings] : *plugins) {
              const auto* table = settings.as_table();
              if (!table) {
                return "expected a table [plugins.settings." + std::string(name.str()) + "]";
              }
              auto& out = all[std::string(name.str())];
              for (const auto& [key, value] : *table) {
                std::string k(key.str());
                if (auto s = value.value_exact<std::string>()) {
                  out[k] = *s;
                } else if (auto i = value.value_exact<std::int64_t>()) {
                  out[k] = std::to_string(*i);
                } else if (auto d = value.value_exact<double>()) {
                  std::ostringstream text;
                  text << *d;
                  out[k] = text.str();
                } else if (auto b = value.value_exact<bool>()) {
                  out[k] = *b ? "true" : "false";
                } else {
                  return std::string(name.str()) + "." + k +
                         ": expected a string, number or boolean";
                }
              }
            }
            *field = std::move(all);
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            toml::table plugins;
            for (const auto& [name, settings] : *field) {
              toml::table one;
              for (const auto& [key, value] : settings) one.insert_or_assign(key, value);
              plugins.insert_or_assign(name, std::move(one));
            }
            t->insert_or_assign(k, std::move(plugins));
          }};
}

Field boolean(bool* field) {
  return {[=](const toml::node& node) -> std::string {
            auto v = node.value_exact<bool>();
            if (!v) return "expected true or false";
            *field = *v;
            return "";
          },
          [=](toml::table* t, const std::string& k) { t->insert_or_assign(k, *field); }};
}

std::string check_log_level(const std::string& v) {
  static const char* const levels[] = {"trace", "debug", "info", "warn", "error", "off"};
  for (const char* l : levels) {
    if (v == l) return "";
  }
  return "log_level must be one of trace, debug, info, warn, error, off";
}

std::string check_path(const std::string& v) {
  if (v.empty()) return "must not be empty";
  if (v.find('\0') != std::string::npos) return "must not contain NUL";
  return "";
}

std::string check_optional_path(const std::string& v) {
  return v.empty() ? "" : check_path(v);
}

std::string check_cluster_word(const std::string& v) {
  // It becomes part of NATS subjects ("memos.<name>.log.0") and etcd keys:
  // a dot, a space or a wildcard would change what they mean.
  if (v.empty() || v.size() > 64) return "expected 1 to 64 characters";
  for (char ch : v) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
    if (!ok) return "expected letters, digits, '-' and '_' only";
  }
  return "";
}

std::string check_optional_cluster_word(const std::string& v) {
  return v.empty() ? "" : check_cluster_word(v);
}

std::string check_endpoint(const std::string& v, std::string_view scheme) {
  std::string_view rest(v);
  if (rest.substr(0, scheme.size()) != scheme) {
    return "'" + v.substr(0, 80) + "' does not start with " + std::string(scheme);
  }
  rest.remove_prefix(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const auto colon = rest.rfind(':');
  if (rest.size() > 255 || colon == std::string_view::npos || colon == 0) {
    return "'" + v.substr(0, 80) + "' is not " + std::string(scheme) + "host:port";
  }
  const std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
  for (char ch : host) {
    if (static_cast<unsigned char>(ch) <= ' ' || ch == '/' || ch == '@' || ch == 0x7f) {
      return "'" + v.substr(0, 80) + "' has a character a host name cannot have";
    }
  }
  unsigned long number = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9' || number > 65535) break;
    number = number * 10 + static_cast<unsigned long>(ch - '0');
  }
  if (port.empty() || port.size() > 5 || number == 0 || number > 65535 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return "'" + v.substr(0, 80) + "' has no port from 1 to 65535";
  }
  return "";
}

std::string check_kv_type(const std::string& v) {
  if (v == "f16" || v == "f32" || v == "q8_0") return "";
  return "kv_type must be f16, f32 or q8_0";
}

std::string check_device(const std::string& v) {
  if (v == "auto" || v == "cpu" || v == "gpu") return "";
  if (v.size() > 4 && v.size() <= 8 && v.rfind("gpu:", 0) == 0 &&
      v.find_first_not_of("0123456789", 4) == std::string::npos) {
    return "";
  }
  return "device must be auto, cpu, gpu or gpu:N";
}

Field tier_paths(std::array<std::string, 3>* field,
                 std::function<std::string(const std::string&)> check) {
  return {[=](const toml::node& node) -> std::string {
            const auto* table = node.as_table();
            if (!table) return "expected a table of low, mid and high";
            std::array<std::string, 3> paths;
            for (const auto& [key, value] : *table) {
              auto tier = parse_cost_tier(key.str());
              if (!tier) return "'" + std::string(key.str()) + "' is no tier (low, mid or high)";
              auto v = value.value_exact<std::string>();
              if (!v) return std::string(key.str()) + ": expected a string";
              if (std::string err = check(*v); !err.empty())
                return std::string(key.str()) + ": " + err;
              paths[static_cast<std::size_t>(*tier)] = *v;
            }
            *field = std::move(paths);
            return "";
          },
          [=](toml::table* t, const std::string& k) {
            toml::table paths;
            for (std::size_t i = 0; i < field->size(); ++i)
              if (!(*field)[i].empty())
                paths.insert_or_assign(to_string(static_cast<CostTier>(i)), (*field)[i]);
            t->insert_or_assign(k, std::move(paths));
          }};
}

}  // namespace memos::kernel::config_fields
