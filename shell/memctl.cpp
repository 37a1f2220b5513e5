// memctl — command-line client of memosd. See memctl(1).
//
// Exit status: 0 success, 1 the daemon refused the request or could not be
// reached, 2 bad usage.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/json_writer.h"
#include "shell/kv_commands.h"
#include "shell/output.h"
#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace {

using memos::shell::format_time;
using memos::shell::JsonWriter;
using memos::shell::kExitRefused;
using memos::shell::kExitUsage;
using memos::shell::kSearchableStates;
using memos::shell::kSearchModes;
using memos::shell::kTiers;
using memos::shell::Output;
using memos::shell::UsageError;

std::vector<memos::MetaEntry> parse_meta(const std::vector<std::string>& pairs) {
  std::vector<memos::MetaEntry> meta;
  for (const auto& p : pairs) {
    auto eq = p.find('=');  // the key ends at the first '='; the value may hold more
    if (eq == std::string::npos || eq == 0)
      throw UsageError{"--meta wants KEY=VALUE, got '" + p + "'"};
    meta.push_back({p.substr(0, eq), p.substr(eq + 1)});
  }
  return meta;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

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

void cube_json(JsonWriter& j, const memos::Cube& c) {
  j.begin_object();
  j.key("name").value(c.name);
  j.key("id").value(memos::format_id(c.id));
  j.key("owner_uid").value(c.owner_uid);
  j.key("created_at").value(format_time(c.created_at_ms));
  j.key("embedder").value(c.embedder);
  j.key("dimension").value(c.dimension);
  j.key("live_items").value(c.live_items);
  j.key("head_version").value(c.head_version);
  j.key("default_retriever").value(memos::to_string(c.default_retriever));
  j.key("language").value(c.language);
  if (!c.indexes.empty()) j.key("indexes").value(c.indexes);
  j.end_object();
}

void plugin_json(JsonWriter& j, const memos::PluginInfo& p) {
  j.begin_object();
  j.key("name").value(p.name);
  j.key("kinds").begin_array();
  for (const auto& k : p.kinds) j.value(k);
  j.end_array();
  j.key("state").value(memos::to_string(p.state));
  j.key("detail").value(p.detail);
  j.key("health").value(p.health);
  j.key("isolated").value(p.isolated);
  j.key("library").value(p.library);
  j.key("manifest").value(p.manifest);
  for (auto [key, list] :
       {std::pair{"capabilities", &p.capabilities}, std::pair{"settings", &p.settings}}) {
    j.key(key).begin_object();
    for (const auto& e : *list) j.key(e.key).value(e.value);
    j.end_object();
  }
  j.end_object();
}

void snapshot_json(JsonWriter& j, const memos::Snapshot& snap) {
  j.begin_object();
  j.key("tag").value(snap.tag);
  j.key("cube_version").value(snap.cube_version);
  j.key("created_at").value(format_time(snap.created_at_ms));
  j.key("live_items").value(snap.live_items);
  j.key("created_by").value(snap.created_by);
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

void print_cube(const memos::Cube& c) {
  std::printf("name       %s\n", c.name.c_str());
  std::printf("id         %s\n", memos::format_id(c.id).c_str());
  std::printf("owner uid  %u\n", c.owner_uid);
  std::printf("created    %s\n", format_time(c.created_at_ms).c_str());
  std::printf("embedder   %s (%u dimensions)\n", c.embedder.c_str(), c.dimension);
  std::printf("retriever  %s\n", memos::to_string(c.default_retriever));
  std::printf("language   %s\n", c.language.c_str());
  if (!c.indexes.empty()) std::printf("indexes    %s\n", c.indexes.c_str());
  std::printf("live items %llu\n", static_cast<unsigned long long>(c.live_items));
  std::printf("version    %llu\n", static_cast<unsigned long long>(c.head_version));
}

// Writes the archive to FILE.part, fsyncs it and renames it to FILE, so a
// failed export never leaves a file that looks complete.
int export_cube(memos::Client& client, const Output& out, const std::string& cube,
                const std::string& file) {
  bool to_stdout = file == "-";
  std::string part = file + ".part";
  int fd = to_stdout ? 1 : ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw UsageError{"cannot create " + part + ": " + std::strerror(errno)};
  auto write_all = [fd](std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  };
  auto r = client.export_cube(cube, write_all);
  if (to_stdout) return r ? 0 : out.refused(r.error());
  bool synced = r && ::fsync(fd) == 0;
  ::close(fd);
  if (!r || !synced || ::rename(part.c_str(), file.c_str()) != 0) {
    ::unlink(part.c_str());
    if (!r) return out.refused(r.error());
    return out.refused(
        {memos::ErrorCode::internal, "cannot write " + file + ": " + std::strerror(errno), false});
  }
  if (out.json()) {
    JsonWriter j;
    j.begin_object().key("exported").value(cube).key("file").value(file).key("bytes").value(*r);
    j.end_object();
    return out.emit(j);
  }
  std::fprintf(stderr, "exported %s to %s (%llu bytes)\n", cube.c_str(), file.c_str(),
               static_cast<unsigned long long>(*r));
  return 0;
}

int import_cube(memos::Client& client, const Output& out, const std::string& file,
                const std::string& name) {
  int fd = file == "-" ? 0 : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UsageError{"cannot open " + file + ": " + std::strerror(errno)};
  int read_error = 0;
  auto read_some = [fd, &read_error](char* buf, std::size_t n) -> std::size_t {
    for (;;) {
      ssize_t got = ::read(fd, buf, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) read_error = errno;
      return got > 0 ? static_cast<std::size_t>(got) : 0;
    }
  };
  auto r = client.import_cube(read_some, name);
  if (fd != 0) ::close(fd);
  if (read_error) {
    return out.refused({memos::ErrorCode::bad_request,
                        "reading " + file + ": " + std::strerror(read_error), false});
  }
  if (!r) return out.refused(r.error());
  if (out.json()) {
    JsonWriter j;
    cube_json(j, r.value());
    return out.emit(j);
  }
  std::printf("imported cube %s (%llu live items)\n", r->name.c_str(),
              static_cast<unsigned long long>(r->live_items));
  return 0;
}

struct Args {
  std::string socket;
  bool json = false;
  std::string cube, name, text, id, query, tag, to_tag, file, as_name, retriever, language;
  std::vector<std::string> tags, meta;
  // Checked and converted before connecting, so bad usage is exit status 2
  // whether or not a daemon is running.
  std::uint64_t item_id = 0;
  std::vector<memos::MetaEntry> meta_entries;
  std::uint32_t version = 0, to_version = 0;
  std::uint32_t k = 10;
  bool force = false, include_archived = false;
  // add: raw option text, converted (with the ids below) before connecting.
  float importance = 0;
  std::string ttl, valid_from, valid_to, as_of, session, supersedes, idempotency_key;
  std::vector<std::string> sources;
  std::optional<memos::SearchMode> default_retriever;  // cube create --retriever
  memos::NewItem item;                                 // add, with everything converted
  std::int64_t as_of_ms = 0;                           // search
  // search: raw option text (names checked by CLI11 with the vocabulary),
  // then `search` with everything converted.
  std::string mode, since, until, valid_since, valid_until;
  std::vector<std::string> any_tags, tiers, states, search_meta;
  bool explain = false;
  float recency_weight = 0, importance_weight = 0, mmr_lambda = 0;
  memos::SearchOptions search;
  std::vector<std::string> cubes;           // CUBE[,CUBE...]
  memos::shell::GenerationArgs generation;  // chat, kv
};

// Converts the options that need more than CLI11's checks. Throws UsageError.
void convert_arguments(Args& a) {
  auto id_of = [](const std::string& text) {
    auto id = memos::parse_id(text);
    if (!id) throw UsageError{"'" + text + "' is not an item id (13 characters of base32)"};
    return *id;
  };
  auto time_of = [](const std::string& option, const std::string& text) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto t = memos::shell::parse_time(text, now);
    if (!t) {
      throw UsageError{
          option +
          " wants a time such as 2026-11-27, 2026-11-27T14:30Z, @1767225600 or now; got '" + text +
          "'"};
    }
    return *t;
  };
  if (!a.id.empty()) a.item_id = id_of(a.id);
  a.default_retriever = memos::shell::optional_value_of(memos::parse_search_mode, a.retriever);
  a.meta_entries = parse_meta(a.meta);
  a.item.text = a.text;
  a.item.tags = a.tags;
  a.item.meta = a.meta_entries;
  a.item.importance = a.importance;
  a.item.session_id = a.session;
  a.item.idempotency_key = a.idempotency_key;
  for (const auto& s : a.sources) a.item.sources.push_back(id_of(s));
  if (!a.supersedes.empty()) a.item.supersedes = id_of(a.supersedes);
  if (!a.ttl.empty()) {
    auto ttl = memos::shell::parse_duration(a.ttl);
    if (!ttl)
      throw UsageError{"--ttl wants a duration such as 90s, 12h or 30d; got '" + a.ttl + "'"};
    a.item.ttl_ms = *ttl;
  }
  if (!a.valid_from.empty()) a.item.valid_from_ms = time_of("--valid-from", a.valid_from);
  if (!a.valid_to.empty()) a.item.valid_to_ms = time_of("--valid-to", a.valid_to);
  if (!a.as_of.empty()) a.as_of_ms = time_of("--as-of", a.as_of);

  auto& s = a.search;
  s.k = a.k;
  s.mode = memos::shell::optional_value_of(memos::parse_search_mode, a.mode);
  s.tags = a.tags;
  s.any_tags = a.any_tags;
  s.meta = parse_meta(a.search_meta);
  s.as_of_ms = a.as_of_ms;
  s.include_archived = a.include_archived;
  for (const auto& t : a.tiers) s.tiers.push_back(memos::shell::value_of(memos::parse_tier, t));
  for (const auto& st : a.states)
    s.states.push_back(memos::shell::value_of(memos::parse_state, st));
  if (!a.since.empty()) s.recorded_since_ms = time_of("--since", a.since);
  if (!a.until.empty()) s.recorded_until_ms = time_of("--until", a.until);
  if (!a.valid_since.empty()) s.valid_since_ms = time_of("--valid-since", a.valid_since);
  if (!a.valid_until.empty()) s.valid_until_ms = time_of("--valid-until", a.valid_until);
  s.explain = a.explain;
  s.recency_weight = a.recency_weight;
  s.importance_weight = a.importance_weight;
  s.mmr_lambda = a.mmr_lambda;
  // CUBE may name several: notes,journal
  std::string rest = a.cube;
  a.cubes.clear();
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string one = rest.substr(0, comma);
    if (one.empty()) throw UsageError{"empty cube name in '" + a.cube + "'"};
    a.cubes.push_back(one);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  if (a.cubes.size() > 1) s.more_cubes.assign(a.cubes.begin() + 1, a.cubes.end());
}

int run(CLI::App& app, const Args& a) {
  Output out(a.json);
  auto connected = memos::Client::connect(a.socket);
  if (!connected) return out.refused(connected.error());
  memos::Client& client = *connected.value();
  auto cmd = [&](const char* name) { return app.got_subcommand(name); };
  CLI::App* cube_cmd = app.get_subcommand("cube");
  if (auto rc = memos::shell::run_generation_commands(app, a.generation, client, out)) return *rc;

  if (cmd("status")) {
    auto r = client.status();
    if (!r) return out.refused(r.error());
    const auto& s = r.value();
    if (out.json()) {
      JsonWriter j;
      j.begin_object();
      j.key("version").value(s.version);
      j.key("pid").value(s.pid);
      j.key("uptime_ms").value(s.uptime_ms);
      j.key("tenant_uid").value(s.tenant_uid);
      j.key("cubes").value(s.cubes);
      j.key("connections").value(s.connections);
      j.key("requests_served").value(s.requests_served);
      j.key("data_dir").value(s.data_dir);
      j.key("socket").value(s.socket);
      j.key("admin").value(s.admin);
      j.key("plugins").begin_array();
      for (const auto& plugin : s.plugins) plugin_json(j, plugin);
      j.end_array();
      j.end_object();
      return out.emit(j);
    }
    std::printf("memosd %s, pid %u, up %.1f s\n", s.version.c_str(), s.pid, s.uptime_ms / 1000.0);
    std::printf("tenant uid   %u (%u cubes)\n", s.tenant_uid, s.cubes);
    if (s.admin) {
      std::printf("connections  %u\n", s.connections);
      std::printf("requests     %llu\n", static_cast<unsigned long long>(s.requests_served));
      std::printf("data         %s\n", s.data_dir.c_str());
    } else {
      std::printf("(global counts and paths: root or memosd's uid only)\n");
    }
    std::printf("socket       %s\n", s.socket.c_str());
    for (const auto& plugin : s.plugins) {
      std::printf("plugin       %s: %s%s%s%s%s\n", plugin.name.c_str(),
                  memos::to_string(plugin.state), plugin.detail.empty() ? "" : ", ",
                  plugin.detail.c_str(), plugin.health.empty() ? "" : ", ", plugin.health.c_str());
    }
    return 0;
  }

  if (CLI::App* plugin_cmd = app.get_subcommand("plugin"); plugin_cmd->parsed()) {
    if (plugin_cmd->got_subcommand("ls")) {
      auto r = client.plugin_list();
      if (!r) return out.refused(r.error());
      if (out.json()) {
        JsonWriter j;
        j.begin_array();
        for (const auto& plugin : r.value()) plugin_json(j, plugin);
        j.end_array();
        return out.emit(j);
      }
      if (r->empty()) std::printf("no plugins\n");
      for (const auto& plugin : r.value()) {
        std::printf("%-24s %-10s %-22s %s\n", plugin.name.c_str(), memos::to_string(plugin.state),
                    join(plugin.kinds, ",").c_str(), plugin.isolated ? "isolated" : "in-process");
      }
      return 0;
    }
    auto r = plugin_cmd->got_subcommand("reload") ? client.plugin_reload(a.name)
                                                  : client.plugin_info(a.name);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      plugin_json(j, r.value());
      return out.emit(j);
    }
    const auto& p = r.value();
    std::printf("name       %s\n", p.name.c_str());
    std::printf("kinds      %s\n", join(p.kinds, ", ").c_str());
    std::printf("state      %s%s%s\n", memos::to_string(p.state), p.detail.empty() ? "" : ": ",
                p.detail.c_str());
    std::printf("isolation  %s\n", p.isolated ? "isolated" : "in-process");
    if (!p.health.empty()) std::printf("health     %s\n", p.health.c_str());
    std::printf("library    %s\n", p.library.c_str());
    std::printf("manifest   %s\n", p.manifest.c_str());
    for (const auto& c : p.capabilities)
      std::printf("capability %s = %s\n", c.key.c_str(), c.value.c_str());
    for (const auto& c : p.settings)
      std::printf("setting    %s = %s\n", c.key.c_str(), c.value.c_str());
    return 0;
  }

  if (cube_cmd->parsed()) {
    auto sub = [&](const char* name) { return cube_cmd->got_subcommand(name); };
    if (sub("ls")) {
      auto r = client.cube_list();
      if (!r) return out.refused(r.error());
      if (out.json()) {
        JsonWriter j;
        j.begin_array();
        for (const auto& c : r.value()) cube_json(j, c);
        j.end_array();
        return out.emit(j);
      }
      if (r->empty()) {
        std::printf("no cubes\n");
        return 0;
      }
      std::printf("%-24s %10s %5s  %s\n", "NAME", "ITEMS", "DIM", "CREATED");
      for (const auto& c : r.value()) {
        std::printf("%-24s %10llu %5u  %s\n", c.name.c_str(),
                    static_cast<unsigned long long>(c.live_items), c.dimension,
                    format_time(c.created_at_ms).c_str());
      }
      return 0;
    }
    if (sub("export")) return export_cube(client, out, a.name, a.file);
    if (sub("import")) return import_cube(client, out, a.file, a.as_name);
    if (sub("snapshot")) {
      auto r = client.snapshot_create(a.name, a.tag);
      if (!r) return out.refused(r.error());
      if (out.json()) {
        JsonWriter j;
        snapshot_json(j, r.value());
        return out.emit(j);
      }
      std::printf("snapshot %s of %s at cube version %llu (%llu live items)\n", r->tag.c_str(),
                  a.name.c_str(), static_cast<unsigned long long>(r->cube_version),
                  static_cast<unsigned long long>(r->live_items));
      return 0;
    }
    if (sub("snapshots")) {
      auto r = client.snapshot_list(a.name);
      if (!r) return out.refused(r.error());
      if (out.json()) {
        JsonWriter j;
        j.begin_array();
        for (const auto& snap : r.value()) snapshot_json(j, snap);
        j.end_array();
        return out.emit(j);
      }
      if (r->empty()) std::printf("no snapshots\n");
      for (const auto& snap : r.value()) {
        std::printf("%-24s %s  version %-8llu %llu live items\n", snap.tag.c_str(),
                    format_time(snap.created_at_ms).c_str(),
                    static_cast<unsigned long long>(snap.cube_version),
                    static_cast<unsigned long long>(snap.live_items));
      }
      return 0;
    }
    if (sub("diff")) {
      auto r = client.snapshot_diff(a.name, a.tag, a.to_tag);
      if (!r) return out.refused(r.error());
      static const char* const kinds[] = {"added", "removed", "changed"};
      if (out.json()) {
        JsonWriter j;
        j.begin_array();
        for (const auto& c : r.value()) {
          j.begin_object();
          j.key("id").value(memos::format_id(c.item_id));
          j.key("change").value(kinds[static_cast<int>(c.kind)]);
          j.key("from_version").value(c.from_version);
          j.key("to_version").value(c.to_version);
          j.key("text").value(c.text);
          j.end_object();
        }
        j.end_array();
        return out.emit(j);
      }
      if (r->empty()) std::printf("no differences\n");
      static const char kMarks[] = {'+', '-', '~'};
      for (const auto& c : r.value()) {
        std::printf("%c %s  %s\n", kMarks[static_cast<int>(c.kind)],
                    memos::format_id(c.item_id).c_str(), one_line(c.text).c_str());
      }
      return 0;
    }
    if (sub("rm")) {
      auto r = client.cube_remove(a.name, a.force);
      if (!r) return out.refused(r.error());
      if (out.json()) {
        JsonWriter j;
        j.begin_object().key("removed").value(a.name).end_object();
        return out.emit(j);
      }
      std::printf("removed cube %s\n", a.name.c_str());
      return 0;
    }
    auto r = sub("create") ? client.cube_create(a.name, a.default_retriever, a.language)
                           : client.cube_show(a.name);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      cube_json(j, r.value());
      return out.emit(j);
    }
    if (sub("create")) {
      std::printf("created cube %s\n", r->name.c_str());
    } else {
      print_cube(r.value());
    }
    return 0;
  }

  if (cmd("add") || cmd("update") || cmd("get") || cmd("rm") || cmd("archive") || cmd("freeze") ||
      cmd("activate") || cmd("rollback")) {
    memos::Result<memos::Item> r = memos::Error{memos::ErrorCode::internal, "", false};
    if (cmd("add")) {
      r = client.add(a.cube, a.item);
    } else if (cmd("archive") || cmd("freeze") || cmd("activate")) {
      auto state = cmd("archive")  ? memos::State::archived
                   : cmd("freeze") ? memos::State::frozen
                                   : memos::State::active;
      r = client.set_state(a.cube, a.item_id, state);
    } else if (cmd("rollback")) {
      r = client.rollback(a.cube, a.item_id, a.version);
    } else if (cmd("update")) {
      memos::ItemChange change{a.text, std::nullopt, std::nullopt, a.session};
      if (!a.tags.empty()) change.tags = a.tags;
      if (!a.meta.empty()) change.meta = a.meta_entries;
      r = client.update(a.cube, a.item_id, std::move(change));
    } else if (cmd("get")) {
      r = client.get(a.cube, a.item_id, a.version);
    } else {
      r = client.remove(a.cube, a.item_id);
    }
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      item_json(j, r.value());
      return out.emit(j);
    }
    std::string id = memos::format_id(r->id);
    if (cmd("add")) {
      std::printf("%s\n", id.c_str());
    } else if (cmd("update")) {
      std::printf("%s version %u\n", id.c_str(), r->version);
    } else if (cmd("rm")) {
      std::printf("%s deleted (tombstone version %u)\n", id.c_str(), r->version);
    } else if (!cmd("get")) {
      std::printf("%s version %u (%s)\n", id.c_str(), r->version, memos::to_string(r->state));
    } else {
      print_item(r.value());
    }
    return 0;
  }

  if (cmd("history")) {
    auto r = client.history(a.cube, a.item_id);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      j.begin_array();
      for (const auto& item : r.value()) item_json(j, item);
      j.end_array();
      return out.emit(j);
    }
    for (const auto& item : r.value()) {
      std::string note;
      if (item.state != memos::State::active)
        note = std::string("[") + memos::to_string(item.state) + "] ";
      if (item.valid_to_ms != 0) note += "[valid until " + format_time(item.valid_to_ms) + "] ";
      std::printf("v%-3u %s  %s%s\n", item.version, format_time(item.recorded_at_ms).c_str(),
                  note.c_str(), item.deleted ? "" : one_line(item.text).c_str());
    }
    return 0;
  }

  if (cmd("diff")) {
    auto r = client.diff(a.cube, a.item_id, a.version, a.to_version);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      const auto& d = r.value();
      JsonWriter j;
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
      return out.emit(j);
    }
    print_diff(r.value());
    return 0;
  }

  if (cmd("search")) {
    auto r = client.search(a.cubes.empty() ? a.cube : a.cubes.front(), a.query, a.search);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      j.begin_array();
      for (const auto& h : r.value()) {
        j.begin_object();
        j.key("score").value(static_cast<double>(h.score));
        j.key("cube").value(h.cube);
        if (a.explain) {
          j.key("ranks").begin_array();
          for (const auto& rank : h.ranks) {
            j.begin_object().key("retriever").value(memos::to_string(rank.retriever));
            j.key("rank").value(rank.rank).key("score").value(static_cast<double>(rank.score));
            j.end_object();
          }
          j.end_array();
        }
        j.key("item");
        item_json(j, h.item);
        j.end_object();
      }
      j.end_array();
      return out.emit(j);
    }
    if (r->empty()) std::printf("no matches\n");
    for (const auto& h : r.value()) {
      std::string tags = h.item.tags.empty() ? "" : "  [" + join(h.item.tags, ",") + "]";
      std::string cube = a.cubes.size() > 1 ? h.cube + "  " : "";
      std::printf("%.3f  %s%s  %s%s\n", static_cast<double>(h.score), cube.c_str(),
                  memos::format_id(h.item.id).c_str(), one_line(h.item.text).c_str(), tags.c_str());
      if (a.explain) {
        std::string why;
        for (const auto& rank : h.ranks) {
          if (!why.empty()) why += ", ";
          why += std::string(memos::to_string(rank.retriever)) + " " +
                 (rank.rank ? "#" + std::to_string(rank.rank) + " (" +
                                  std::to_string(rank.score).substr(0, 6) + ")"
                            : "-");
        }
        std::printf("       %s\n", why.c_str());
      }
    }
    return 0;
  }
  throw UsageError{"no command given"};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"memctl: command-line client of memosd (see memctl(1))", "memctl"};
  app.add_option("--socket", a.socket, "memosd's socket (default: $MEMOS_SOCKET, then memosd's)");
  app.add_flag("--json", a.json, "print JSON");
  app.require_subcommand(1);
  app.fallthrough();  // --json and --socket are accepted after the command too

  app.add_subcommand("status", "show the daemon's status");

  auto* cube = app.add_subcommand("cube", "manage cubes");
  cube->require_subcommand(1);
  auto* cube_create = cube->add_subcommand("create", "create a cube");
  cube_create->add_option("NAME", a.name)->required();
  cube_create
      ->add_option("--retriever", a.retriever,
                   "how search ranks by default: dense, lexical or hybrid (the "
                   "daemon's search.default_mode)")
      ->check(memos::shell::one_of(memos::parse_search_mode, kSearchModes));
  cube_create->add_option("--language", a.language,
                          "stemming language of lexical search (default english)");
  cube->add_subcommand("ls", "list your cubes");
  cube->add_subcommand("show", "show one cube")->add_option("NAME", a.name)->required();
  auto* cube_rm = cube->add_subcommand("rm", "remove a cube");
  cube_rm->add_option("NAME", a.name)->required();
  cube_rm->add_flag("--force", a.force, "remove even if it holds live items");
  auto* cube_snapshot = cube->add_subcommand("snapshot", "name the cube's current state");
  cube_snapshot->add_option("NAME", a.name)->required();
  cube_snapshot->add_option("TAG", a.tag)->required();
  auto* cube_export = cube->add_subcommand("export", "write a cube to an archive file");
  cube_export->add_option("NAME", a.name)->required();
  cube_export->add_option("FILE", a.file, "the archive; - for standard output")->required();
  auto* cube_import = cube->add_subcommand("import", "create a cube from an archive file");
  cube_import->add_option("FILE", a.file, "the archive; - for standard input")->required();
  cube_import->add_option("--as", a.as_name, "the new cube's name (default: the archive's)");
  cube->add_subcommand("snapshots", "list a cube's snapshots")
      ->add_option("NAME", a.name)
      ->required();
  auto* cube_diff = cube->add_subcommand("diff", "what changed between two snapshots");
  cube_diff->add_option("NAME", a.name)->required();
  cube_diff->add_option("FROM", a.tag, "a snapshot tag")->required();
  cube_diff->add_option("TO", a.to_tag, "a snapshot tag (default: the cube now)");

  auto* plugin = app.add_subcommand("plugin", "the daemon's plugins");
  plugin->require_subcommand(1);
  plugin->add_subcommand("ls", "list the plugins memosd found");
  plugin->add_subcommand("info", "one plugin's manifest and state")
      ->add_option("NAME", a.name)
      ->required();
  plugin->add_subcommand("reload", "re-read the plugin folders and reload a plugin")
      ->add_option("NAME", a.name)
      ->required();

  auto* add = app.add_subcommand("add", "add a memory; prints its id");
  add->add_option("CUBE", a.cube)->required();
  add->add_option("TEXT", a.text)->required();
  add->add_option("--tag", a.tags, "a tag (repeatable)");
  add->add_option("--meta", a.meta, "KEY=VALUE metadata (repeatable)");
  add->add_option("--importance", a.importance, "0 to 1")->check(CLI::Range(0.0f, 1.0f));
  add->add_option("--ttl", a.ttl, "expire after this long (90s, 12h, 30d)");
  add->add_option("--valid-from", a.valid_from, "when the fact starts to hold (default now)");
  add->add_option("--valid-to", a.valid_to, "when the fact stops holding");
  add->add_option("--session", a.session, "the writer's session id");
  add->add_option("--source", a.sources, "an item this one was derived from (repeatable)");
  add->add_option("--supersedes", a.supersedes, "an item whose fact this one replaces");
  add->add_option("--idempotency-key", a.idempotency_key,
                  "a retry with the same key returns the first add's item");

  auto* get = app.add_subcommand("get", "show a memory");
  get->add_option("CUBE", a.cube)->required();
  get->add_option("ID", a.id)->required();
  get->add_option("--version", a.version, "a past version")->check(CLI::Range(1u, 0xFFFFFFFFu));

  auto* update = app.add_subcommand("update", "write a new version of a memory");
  update->add_option("CUBE", a.cube)->required();
  update->add_option("ID", a.id)->required();
  update->add_option("TEXT", a.text)->required();
  update->add_option("--tag", a.tags, "replace the tags (repeatable)");
  update->add_option("--meta", a.meta, "replace the metadata, KEY=VALUE (repeatable)");
  update->add_option("--session", a.session, "the writer's session id");

  for (auto [verb, help] : {std::pair{"archive", "archive a memory (it leaves search)"},
                            std::pair{"freeze", "freeze a memory (it becomes immutable)"},
                            std::pair{"activate", "make an archived or frozen memory active"}}) {
    auto* sub = app.add_subcommand(verb, help);
    sub->add_option("CUBE", a.cube)->required();
    sub->add_option("ID", a.id)->required();
  }

  auto* rollback = app.add_subcommand("rollback", "make an old version the latest again");
  rollback->add_option("CUBE", a.cube)->required();
  rollback->add_option("ID", a.id)->required();
  rollback->add_option("VERSION", a.version)->required()->check(CLI::Range(1u, 0xFFFFFFFFu));

  auto* diff = app.add_subcommand("diff", "what changed between two versions");
  diff->add_option("CUBE", a.cube)->required();
  diff->add_option("ID", a.id)->required();
  diff->add_option("FROM", a.version)->required()->check(CLI::Range(1u, 0xFFFFFFFFu));
  diff->add_option("TO", a.to_version, "default: the latest")->check(CLI::Range(1u, 0xFFFFFFFFu));

  auto* rm = app.add_subcommand("rm", "delete a memory (a tombstone version)");
  rm->add_option("CUBE", a.cube)->required();
  rm->add_option("ID", a.id)->required();

  auto* history = app.add_subcommand("history", "every version of a memory");
  history->add_option("CUBE", a.cube)->required();
  history->add_option("ID", a.id)->required();

  auto* search = app.add_subcommand("search", "search a cube");
  search->add_option("CUBE", a.cube, "a cube, or several: notes,journal")->required();
  search->add_option("QUERY", a.query)->required();
  search->add_option("-k", a.k, "how many results (default 10)")->check(CLI::Range(1u, 100000u));
  search->add_option("--mode", a.mode, "dense, lexical or hybrid (default: the cube's)")
      ->check(memos::shell::one_of(memos::parse_search_mode, kSearchModes));
  search->add_option("--tag", a.tags, "only memories with this tag (repeatable: all of them)");
  search->add_option("--any-tag", a.any_tags, "only memories with one of these tags (repeatable)");
  search->add_option("--meta", a.search_meta, "only memories with KEY=VALUE (repeatable)");
  search->add_option("--tier", a.tiers, "only this tier (repeatable)")
      ->check(memos::shell::one_of(memos::parse_tier, kTiers));
  search->add_option("--state", a.states, "only this state (repeatable; default active)")
      ->check(memos::shell::one_of(memos::parse_state, kSearchableStates));
  search->add_option("--since", a.since, "recorded at or after this time");
  search->add_option("--until", a.until, "recorded before this time");
  search->add_option("--valid-since", a.valid_since, "facts holding at or after this time");
  search->add_option("--valid-until", a.valid_until, "facts holding before this time");
  search->add_option("--as-of", a.as_of, "facts valid at this time (default now)");
  search->add_flag("--archived", a.include_archived, "include archived memories");
  search->add_flag("--explain", a.explain, "show how each retriever ranked each result");
  search->add_option("--recency", a.recency_weight, "hybrid: weight of recency (0-100)")
      ->check(CLI::Range(0.0f, 100.0f));
  search->add_option("--importance", a.importance_weight, "hybrid: weight of importance (0-100)")
      ->check(CLI::Range(0.0f, 100.0f));
  search->add_option("--mmr", a.mmr_lambda, "hybrid: diversify, relevance share in (0,1)")
      ->check(CLI::Range(0.0f, 1.0f));

  memos::shell::add_generation_commands(app, a.generation);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  try {
    convert_arguments(a);
    memos::shell::convert_generation_args(app, a.generation);
    return run(app, a);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "memctl: %s\n", e.message.c_str());
    return kExitUsage;
  }
}
