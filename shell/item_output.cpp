// item_output.cpp — a memory item and an item diff as memctl prints them
// (item_output.h), in --json and in human form.
#include "shell/item_output.h"

#include <cstdio>
#include <string>
#include <vector>

#include "shell/text_format.h"
#include "shell/time_args.h"

namespace memos::shell {

void item_json(JsonWriter& j, const memos::Item& item) {
  j.begin_object();
  j.key("id").value(memos::format_id(item.id));
  j.key("version").value(item.version);
  j.key("state").value(memos::to_string(item.state));
  j.key("tier").value(memos::to_string(item.tier));
  j.key("text").value(item.text);
  j.key("tags").begin_array();
  for (const auto& t : item.tags) j.value(t);
  j.end_array();
  j.key("meta").begin_object();
  for (const auto& m : item.meta) j.key(m.key).value(m.value);
  j.end_object();
  j.key("importance").value(static_cast<double>(item.importance));
  j.key("created_at").value(format_time(item.created_at_ms));
  j.key("recorded_at").value(format_time(item.recorded_at_ms));
  j.key("valid_from").value(format_time(item.valid_from_ms));
  j.key("valid_to");
  if (item.valid_to_ms != 0) {
    j.value(format_time(item.valid_to_ms));
  } else {
    j.null();
  }
  j.key("expires_at");
  if (item.expires_at_ms != 0) {
    j.value(format_time(item.expires_at_ms));
  } else {
    j.null();
  }
  j.key("writer_uid").value(item.writer_uid);
  j.key("session").value(item.session_id);
  j.key("sources").begin_array();
  for (auto id : item.sources) j.value(memos::format_id(id));
  j.end_array();
  j.key("hits").value(item.hits);
  j.key("last_access");
  if (item.last_access_ms != 0) {
    j.value(format_time(item.last_access_ms));
  } else {
    j.null();
  }
  j.key("deleted").value(item.deleted);
  j.end_object();
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
  std::printf("text      %s\n", item.text.c_str());
}

void diff_json(JsonWriter& j, const memos::ItemDiff& d) {
  j.begin_object();
  j.key("from");
  item_json(j, d.from);
  j.key("to");
  item_json(j, d.to);
  j.key("text_changed").value(d.text_changed);
  j.key("tags_added").begin_array();
  for (const auto& t : d.tags_added) j.value(t);
  j.end_array();
  j.key("tags_removed").begin_array();
  for (const auto& t : d.tags_removed) j.value(t);
  j.end_array();
  j.key("meta_changes").begin_array();
  for (const auto& m : d.meta_changes) {
    j.begin_object().key("key").value(m.key).key("before");
    m.before ? j.value(*m.before) : j.null();
    j.key("after");
    m.after ? j.value(*m.after) : j.null();
    j.end_object();
  }
  j.end_array();
  j.key("state_changed").value(d.state_changed);
  j.key("validity_changed").value(d.validity_changed);
  j.end_object();
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
