// memctl — command-line client of memosd. See memctl(1).
//
// Exit status: 0 success, 1 the daemon refused the request or could not be
// reached, 2 bad usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "memos/client.h"
#include "shell/json_writer.h"

namespace {

using memos::shell::JsonWriter;

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;

struct UsageError {
  std::string message;
};

std::string iso_time(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

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
  j.key("text").value(item.text);
  j.key("tags").begin_array();
  for (const auto& t : item.tags) j.value(t);
  j.end_array();
  j.key("meta").begin_object();
  for (const auto& m : item.meta) j.key(m.key).value(m.value);
  j.end_object();
  j.key("created_at").value(iso_time(item.created_at_ms));
  j.key("updated_at").value(iso_time(item.updated_at_ms));
  j.key("deleted").value(item.deleted);
  j.end_object();
}

void cube_json(JsonWriter& j, const memos::Cube& c) {
  j.begin_object();
  j.key("name").value(c.name);
  j.key("id").value(memos::format_id(c.id));
  j.key("owner_uid").value(c.owner_uid);
  j.key("created_at").value(iso_time(c.created_at_ms));
  j.key("embedder").value(c.embedder);
  j.key("dimension").value(c.dimension);
  j.key("live_items").value(c.live_items);
  j.end_object();
}

void print_item(const memos::Item& item) {
  std::printf("id       %s\n", memos::format_id(item.id).c_str());
  std::printf("version  %u%s\n", item.version, item.deleted ? " (deleted)" : "");
  std::printf("created  %s\n", iso_time(item.created_at_ms).c_str());
  std::printf("updated  %s\n", iso_time(item.updated_at_ms).c_str());
  if (!item.tags.empty()) std::printf("tags     %s\n", join(item.tags, ", ").c_str());
  for (const auto& m : item.meta) std::printf("meta     %s=%s\n", m.key.c_str(), m.value.c_str());
  std::printf("text     %s\n", item.text.c_str());
}

void print_cube(const memos::Cube& c) {
  std::printf("name       %s\n", c.name.c_str());
  std::printf("id         %s\n", memos::format_id(c.id).c_str());
  std::printf("owner uid  %u\n", c.owner_uid);
  std::printf("created    %s\n", iso_time(c.created_at_ms).c_str());
  std::printf("embedder   %s (%u dimensions)\n", c.embedder.c_str(), c.dimension);
  std::printf("live items %llu\n", static_cast<unsigned long long>(c.live_items));
}

class Output {
 public:
  explicit Output(bool json) : json_(json) {}
  bool json() const { return json_; }

  // Prints a refused request and returns the exit status for it.
  int refused(const memos::Error& e) const {
    std::fprintf(stderr, "memctl: %s: %s\n", memos::to_string(e.code), e.message.c_str());
    if (json_) {
      JsonWriter j;
      j.begin_object().key("error").begin_object();
      j.key("code").value(memos::to_string(e.code));
      j.key("message").value(e.message);
      j.key("retryable").value(e.retryable);
      j.end_object().end_object();
      std::printf("%s\n", j.str().c_str());
    }
    return kExitRefused;
  }

  int emit(const JsonWriter& j) const {
    std::printf("%s\n", j.str().c_str());
    return 0;
  }

 private:
  bool json_;
};

struct Args {
  std::string socket;
  bool json = false;
  std::string cube, name, text, id, query;
  std::vector<std::string> tags, meta;
  // Checked and converted before connecting, so bad usage is exit status 2
  // whether or not a daemon is running.
  std::uint64_t item_id = 0;
  std::vector<memos::MetaEntry> meta_entries;
  std::uint32_t version = 0;
  std::uint32_t k = 10;
  bool force = false;
};

int run(CLI::App& app, const Args& a) {
  Output out(a.json);
  auto connected = memos::Client::connect(a.socket);
  if (!connected) return out.refused(connected.error());
  memos::Client& client = *connected.value();
  auto cmd = [&](const char* name) { return app.got_subcommand(name); };
  CLI::App* cube_cmd = app.get_subcommand("cube");

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
      j.end_object();
      return out.emit(j);
    }
    std::printf("memosd %s, pid %u, up %.1f s\n", s.version.c_str(), s.pid, s.uptime_ms / 1000.0);
    std::printf("tenant uid   %u (%u cubes)\n", s.tenant_uid, s.cubes);
    std::printf("connections  %u\n", s.connections);
    std::printf("requests     %llu\n", static_cast<unsigned long long>(s.requests_served));
    std::printf("data         %s\n", s.data_dir.c_str());
    std::printf("socket       %s\n", s.socket.c_str());
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
                    iso_time(c.created_at_ms).c_str());
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
    auto r = sub("create") ? client.cube_create(a.name) : client.cube_show(a.name);
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

  if (cmd("add") || cmd("update") || cmd("get") || cmd("rm")) {
    memos::Result<memos::Item> r = memos::Error{memos::ErrorCode::internal, "", false};
    if (cmd("add")) {
      r = client.add(a.cube, {a.text, a.tags, a.meta_entries});
    } else if (cmd("update")) {
      memos::ItemChange change{a.text, std::nullopt, std::nullopt};
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
      std::printf("v%-3u %s  %s\n", item.version, iso_time(item.updated_at_ms).c_str(),
                  item.deleted ? "(deleted)" : one_line(item.text).c_str());
    }
    return 0;
  }

  if (cmd("search")) {
    auto r = client.search(a.cube, a.query, {a.k, a.tags});
    if (!r) return out.refused(r.error());
    if (out.json()) {
      JsonWriter j;
      j.begin_array();
      for (const auto& h : r.value()) {
        j.begin_object();
        j.key("score").value(static_cast<double>(h.score));
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
      std::printf("%.3f  %s  %s%s\n", static_cast<double>(h.score),
                  memos::format_id(h.item.id).c_str(), one_line(h.item.text).c_str(), tags.c_str());
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
  cube->add_subcommand("create", "create a cube")->add_option("NAME", a.name)->required();
  cube->add_subcommand("ls", "list your cubes");
  cube->add_subcommand("show", "show one cube")->add_option("NAME", a.name)->required();
  auto* cube_rm = cube->add_subcommand("rm", "remove a cube");
  cube_rm->add_option("NAME", a.name)->required();
  cube_rm->add_flag("--force", a.force, "remove even if it holds live items");

  auto* add = app.add_subcommand("add", "add a memory; prints its id");
  add->add_option("CUBE", a.cube)->required();
  add->add_option("TEXT", a.text)->required();
  add->add_option("--tag", a.tags, "a tag (repeatable)");
  add->add_option("--meta", a.meta, "KEY=VALUE metadata (repeatable)");

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

  auto* rm = app.add_subcommand("rm", "delete a memory (a tombstone version)");
  rm->add_option("CUBE", a.cube)->required();
  rm->add_option("ID", a.id)->required();

  auto* history = app.add_subcommand("history", "every version of a memory");
  history->add_option("CUBE", a.cube)->required();
  history->add_option("ID", a.id)->required();

  auto* search = app.add_subcommand("search", "search a cube");
  search->add_option("CUBE", a.cube)->required();
  search->add_option("QUERY", a.query)->required();
  search->add_option("-k", a.k, "how many results (default 10)")->check(CLI::Range(1u, 100000u));
  search->add_option("--tag", a.tags, "only memories with this tag (repeatable)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  try {
    if (!a.id.empty()) {
      auto id = memos::parse_id(a.id);
      if (!id) throw UsageError{"'" + a.id + "' is not an item id (13 characters of base32)"};
      a.item_id = *id;
    }
    a.meta_entries = parse_meta(a.meta);
    return run(app, a);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "memctl: %s\n", e.message.c_str());
    return kExitUsage;
  }
}
