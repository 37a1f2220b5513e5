// item_output.cpp — a memory item and an item diff as memctl prints them
// (item_output.h), in --json and in human form.
#include "shell/item_output.h"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shell/text_format.h"
#include "shell/time_args.h"

namespace memos::shell {

Json item_json(const memos::Item& item) {
  auto time_or_null = [](std::int64_t ms) -> Json {
    if (ms == 0) return nullptr;
    return format_time(ms);
  };
  Json j;
  j["id"] = memos::format_id(item.id);
  j["version"] = item.version;
  j["state"] = memos::to_string(item.state);
  j["tier"] = memos::to_string(item.tier);
  j["text"] = item.text;
  j["tags"] = item.tags;
  j["meta"] = Json::object();
  for (const auto& m : item.meta) j["meta"][m.key] = m.value;
  j["importance"] = json_number(item.importance);
  j["created_at"] = format_time(item.created_at_ms);
  j["recorded_at"] = format_time(item.recorded_at_ms);
  j["valid_from"] = format_time(item.valid_from_ms);
  j["valid_to"] = time_or_null(item.valid_to_ms);
  j["expires_at"] = time_or_null(item.expires_at_ms);
  j["writer_uid"] = item.writer_uid;
  j["session"] = item.session_id;
  j["sources"] = Json::array();
  for (auto id : item.sources) j["sources"].push_back(memos::format_id(id));
  j["hits"] = item.hits;
  j["last_access"] = time_or_null(item.last_access_ms);
  j["deleted"] = item.deleted;
  if (item.param) {
    const memos::ParamInfo& p = *item.param;
    Json a;
    a["kind"] = p.kind;
    a["name"] = p.name;
    a["digest"] = p.digest;
    a["bytes"] = p.bytes;
    a["scale"] = json_number(p.scale);
    a["base_model"] = p.base_model;
    a["architecture"] = p.architecture;
    a["tensors"] = p.tensors;
    a["rank"] = p.rank;
    a["alpha"] = json_number(p.alpha);
    a["origin"] = p.origin;
    j["param"] = std::move(a);
  }
  return j;
}

void print_item(const memos::Item& item) {
  std::printf("id        %s\n", memos::format_id(item.id).c_str());
  std::printf("version   %u (%s)\n", item.version, memos::to_string(item.state));
  std::printf("created   %s\n", format_time(item.created_at_ms).c_str());
  std::printf("recorded  %s by uid %u%s%s\n", format_time(item.recorded_at_ms).c_str(),
              item.writer_uid, item.session_id.empty() ? "" : ", session ",
              item.session_id.c_str());
  std::printf("valid     from %s%s%s\n", format_time(item.valid_from_ms).c_str(),
              item.valid_to_ms ? " until " : " (still holds)",
              item.valid_to_ms ? format_time(item.valid_to_ms).c_str() : "");
  if (item.expires_at_ms) std::printf("expires   %s\n", format_time(item.expires_at_ms).c_str());
  if (item.importance != 0) std::printf("importance %.2f\n", static_cast<double>(item.importance));
  if (item.hits != 0) {
    std::printf("reads     %llu, last %s\n", static_cast<unsigned long long>(item.hits),
                format_time(item.last_access_ms).c_str());
  }
  if (!item.tags.empty()) std::printf("tags      %s\n", join(item.tags, ", ").c_str());
  for (const auto& m : item.meta) std::printf("meta      %s=%s\n", m.key.c_str(), m.value.c_str());
  if (!item.sources.empty()) {
    std::vector<std::string> ids;
    for (auto id : item.sources) ids.push_back(memos::format_id(id));
    std::printf("sources   %s\n", join(ids, ", ").c_str());
  }
  if (item.param) {
    const memos::ParamInfo& p = *item.param;
    if (p.kind == "cvec") {
      std::printf("adapter   cvec '%s': %u layers, scale %g, %.2f MB, %s\n", p.name.c_str(),
                  p.tensors, static_cast<double>(p.scale), p.bytes / 1048576.0, p.origin.c_str());
    } else {
      std::printf("adapter   %s '%s': rank %u, %u matrices, alpha %g, scale %g, %.2f MB, %s\n",
                  p.kind.c_str(), p.name.c_str(), p.rank, p.tensors, static_cast<double>(p.alpha),
                  static_cast<double>(p.scale), p.bytes / 1048576.0, p.origin.c_str());
    }
    std::printf("model     %s, %s\n", p.architecture.c_str(), p.base_model.c_str());
    std::printf("digest    %s\n", p.digest.c_str());
  }
  std::printf("text      %s\n", item.text.c_str());
}

Json diff_json(const memos::ItemDiff& d) {
  auto optional_text = [](const std::optional<std::string>& text) -> Json {
    if (!text) return nullptr;
    return *text;
  };
  Json j;
  j["from"] = item_json(d.from);
  j["to"] = item_json(d.to);
  j["text_changed"] = d.text_changed;
  j["tags_added"] = d.tags_added;
  j["tags_removed"] = d.tags_removed;
  j["meta_changes"] = Json::array();
  for (const auto& m : d.meta_changes) {
    Json change;
    change["key"] = m.key;
    change["before"] = optional_text(m.before);
    change["after"] = optional_text(m.after);
    j["meta_changes"].push_back(std::move(change));
  }
  j["state_changed"] = d.state_changed;
  j["validity_changed"] = d.validity_changed;
  return j;
}

void print_diff(const memos::ItemDiff& d) {
  std::printf("%s v%u -> v%u\n", memos::format_id(d.from.id).c_str(), d.from.version, d.to.version);
  if (d.state_changed) {
    std::printf("state     %s -> %s\n", memos::to_string(d.from.state),
                memos::to_string(d.to.state));
  }
  if (d.text_changed) {
    std::printf("- %s\n+ %s\n", one_line(d.from.text).c_str(), one_line(d.to.text).c_str());
  }
  for (const auto& t : d.tags_added) std::printf("tag       +%s\n", t.c_str());
  for (const auto& t : d.tags_removed) std::printf("tag       -%s\n", t.c_str());
  for (const auto& m : d.meta_changes) {
    std::printf("meta      %s: %s -> %s\n", m.key.c_str(), m.before ? m.before->c_str() : "(none)",
                m.after ? m.after->c_str() : "(none)");
  }
  if (d.validity_changed) {
    auto span = [](const memos::Item& i) {
      return format_time(i.valid_from_ms) + " .. " +
             (i.valid_to_ms ? format_time(i.valid_to_ms) : std::string("open"));
    };
    std::printf("valid     %s -> %s\n", span(d.from).c_str(), span(d.to).c_str());
  }
  if (!d.text_changed && d.tags_added.empty() && d.tags_removed.empty() && d.meta_changes.empty() &&
      !d.state_changed && !d.validity_changed) {
    std::printf("no differences\n");
  }
}

}  // namespace memos::shell
