// cube_commands.cpp — the cube commands (cube_commands.h): their options,
// how a cube and a snapshot print, and the archive files export writes and
// import reads.
#include "shell/cube_commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include "shell/text_format.h"
#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace memos::shell {
namespace {

Json cube_json(const memos::Cube& c) {
  Json j;
  j["name"] = c.name;
  j["id"] = memos::format_id(c.id);
  j["owner_uid"] = c.owner_uid;
  j["created_at"] = format_time(c.created_at_ms);
  j["embedder"] = c.embedder;
  j["dimension"] = c.dimension;
  j["live_items"] = c.live_items;
  j["head_version"] = c.head_version;
  j["default_retriever"] = memos::to_string(c.default_retriever);
  j["language"] = c.language;
  if (!c.indexes.empty()) j["indexes"] = c.indexes;
  if (!c.shared_by.empty()) {
    j["shared_by"] = c.shared_by;
    j["access"] = c.shared_write ? "write" : "read";
  }
  j["shares"] = Json::array();
  for (const auto& g : c.shares) {
    j["shares"].push_back(Json{{"tenant", g.tenant},
                               {"uid", g.uid},
                               {"access", g.write ? "write" : "read"},
                               {"granted_at", format_time(g.granted_at_ms)}});
  }
  return j;
}

Json snapshot_json(const memos::Snapshot& snap) {
  Json j;
  j["tag"] = snap.tag;
  j["cube_version"] = snap.cube_version;
  j["created_at"] = format_time(snap.created_at_ms);
  j["live_items"] = snap.live_items;
  j["created_by"] = snap.created_by;
  return j;
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
  if (!c.shared_by.empty()) {
    std::printf("shared by  %s (%s)\n", c.shared_by.c_str(), c.shared_write ? "write" : "read");
  }
  for (const auto& g : c.shares) {
    std::printf("shared     with %s (uid %u), %s, since %s\n", g.tenant.c_str(), g.uid,
                g.write ? "write" : "read", format_time(g.granted_at_ms).c_str());
  }
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
    Json j;
    j["exported"] = cube;
    j["file"] = file;
    j["bytes"] = *r;
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
  if (out.json()) return out.emit(cube_json(r.value()));
  std::printf("imported cube %s (%llu live items)\n", r->name.c_str(),
              static_cast<unsigned long long>(r->live_items));
  return 0;
}

}  // namespace

void add_cube_commands(CLI::App& app, CubeArgs& a) {
  auto* cube = app.add_subcommand("cube", "manage cubes");
  cube->require_subcommand(1);
  auto* cube_create = cube->add_subcommand("create", "create a cube");
  cube_create->add_option("NAME", a.name, "the new cube's name (letters, digits, . _ -)")
      ->required();
  cube_create
      ->add_option("--retriever", a.retriever,
                   "how search ranks by default: dense, lexical or hybrid (the "
                   "daemon's search.default_mode)")
      ->check(memos::shell::one_of(memos::parse_search_mode, kSearchModes));
  cube_create->add_option("--language", a.language,
                          "stemming language of lexical search (default english)");
  cube->add_subcommand("ls", "list your cubes, then those shared with you");
  cube->add_subcommand("show", "show one cube")->add_option("NAME", a.name, "the cube")->required();
  auto* cube_rm = cube->add_subcommand("rm", "remove a cube");
  cube_rm->add_option("NAME", a.name, "the cube")->required();
  cube_rm->add_flag("--force", a.force, "remove even if it holds live items");
  auto* cube_share = cube->add_subcommand("share", "let another tenant use your cube");
  cube_share->add_option("NAME", a.name, "your cube")->required();
  cube_share->add_option("--with", a.with, "the tenant: its policy name, a user name or uid:N")
      ->required();
  auto* share_read = cube_share->add_flag("--read", a.share_read, "read only (the default)");
  cube_share->add_flag("--write", a.share_write, "also add, update and remove its items")
      ->excludes(share_read);
  auto* cube_unshare = cube->add_subcommand("unshare", "take a tenant's access back");
  cube_unshare->add_option("NAME", a.name, "your cube")->required();
  cube_unshare->add_option("--with", a.with, "the tenant")->required();
  auto* cube_snapshot = cube->add_subcommand("snapshot", "name the cube's current state");
  cube_snapshot->add_option("NAME", a.name, "the cube")->required();
  cube_snapshot->add_option("TAG", a.tag, "the snapshot's name")->required();
  auto* cube_export = cube->add_subcommand("export", "write a cube to an archive file");
  cube_export->add_option("NAME", a.name, "the cube")->required();
  cube_export->add_option("FILE", a.file, "the archive; - for standard output")->required();
  auto* cube_import = cube->add_subcommand("import", "create a cube from an archive file");
  cube_import->add_option("FILE", a.file, "the archive; - for standard input")->required();
  cube_import->add_option("--as", a.as_name, "the new cube's name (default: the archive's)");
  cube->add_subcommand("snapshots", "list a cube's snapshots")
      ->add_option("NAME", a.name, "the cube")
      ->required();
  auto* cube_diff = cube->add_subcommand("diff", "what changed between two snapshots");
  cube_diff->add_option("NAME", a.name, "the cube")->required();
  cube_diff->add_option("FROM", a.tag, "a snapshot tag")->required();
  cube_diff->add_option("TO", a.to_tag, "a snapshot tag (default: the cube now)");
}

void convert_cube_args(CubeArgs& a) {
  a.default_retriever = memos::shell::optional_value_of(memos::parse_search_mode, a.retriever);
}

std::optional<int> run_cube_commands(CLI::App& app, const CubeArgs& a, memos::Client& client,
                                     const Output& out) {
  CLI::App* cube_cmd = app.get_subcommand("cube");
  if (!cube_cmd->parsed()) return std::nullopt;
  auto sub = [&](const char* name) { return cube_cmd->got_subcommand(name); };
  if (sub("ls")) {
    auto r = client.cube_list();
    if (!r) return out.refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& c : r.value()) j.push_back(cube_json(c));
      return out.emit(j);
    }
    if (r->empty()) {
      std::printf("no cubes\n");
      return 0;
    }
    // MODE: how search ranks unless --mode says otherwise; LANGUAGE: the
    // stemming of lexical search.
    // ACCESS: own, or what another tenant's grant allows (read, write).
    std::printf("%-24s %10s %5s  %-8s %-10s %-20s %s\n", "NAME", "ITEMS", "DIM", "MODE", "LANGUAGE",
                "CREATED", "ACCESS");
    for (const auto& c : r.value()) {
      std::printf("%-24s %10llu %5u  %-8s %-10s %-20s %s\n", c.name.c_str(),
                  static_cast<unsigned long long>(c.live_items), c.dimension,
                  memos::to_string(c.default_retriever), c.language.c_str(),
                  format_time(c.created_at_ms).c_str(),
                  c.shared_by.empty() ? "own"
                  : c.shared_write    ? "write"
                                      : "read");
    }
    return 0;
  }
  if (sub("share") || sub("unshare")) {
    auto r = sub("share") ? client.cube_share(a.name, a.with, a.share_write)
                          : client.cube_unshare(a.name, a.with);
    if (!r) return out.refused(r.error());
    if (out.json()) return out.emit(cube_json(r.value()));
    if (sub("share")) {
      std::printf("shared %s with %s (%s)\n", a.name.c_str(), a.with.c_str(),
                  a.share_write ? "write" : "read");
    } else {
      std::printf("unshared %s from %s\n", a.name.c_str(), a.with.c_str());
    }
    return 0;
  }
  if (sub("export")) return export_cube(client, out, a.name, a.file);
  if (sub("import")) return import_cube(client, out, a.file, a.as_name);
  if (sub("snapshot")) {
    auto r = client.snapshot_create(a.name, a.tag);
    if (!r) return out.refused(r.error());
    if (out.json()) return out.emit(snapshot_json(r.value()));
    std::printf("snapshot %s of %s at cube version %llu (%llu live items)\n", r->tag.c_str(),
                a.name.c_str(), static_cast<unsigned long long>(r->cube_version),
                static_cast<unsigned long long>(r->live_items));
    return 0;
  }
  if (sub("snapshots")) {
    auto r = client.snapshot_list(a.name);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& snap : r.value()) j.push_back(snapshot_json(snap));
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
      Json j = Json::array();
      for (const auto& c : r.value()) {
        Json change;
        change["id"] = memos::format_id(c.item_id);
        change["change"] = kinds[static_cast<int>(c.kind)];
        change["from_version"] = c.from_version;
        change["to_version"] = c.to_version;
        change["text"] = c.text;
        j.push_back(std::move(change));
      }
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
      Json j;
      j["removed"] = a.name;
      return out.emit(j);
    }
    std::printf("removed cube %s\n", a.name.c_str());
    return 0;
  }
  auto r = sub("create") ? client.cube_create(a.name, a.default_retriever, a.language)
                         : client.cube_show(a.name);
  if (!r) return out.refused(r.error());
  if (out.json()) return out.emit(cube_json(r.value()));
  if (sub("create")) {
    std::printf("created cube %s\n", r->name.c_str());
  } else {
    print_cube(r.value());
  }
  return 0;
}

}  // namespace memos::shell
