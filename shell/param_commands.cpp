#include "shell/param_commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "shell/item_output.h"
#include "shell/job_commands.h"

namespace memos::shell {
namespace {

void print_param_line(const memos::Item& item) {
  const memos::ParamInfo& p = *item.param;
  const std::string shape = p.kind == "cvec" ? "cvec, " + std::to_string(p.tensors) + " layers"
                                             : "rank " + std::to_string(p.rank) + ", " +
                                                   std::to_string(p.tensors) + " matrices";
  std::printf("%-24s v%-3u %-24s scale %-5g %8.2f MB  %s%s\n", p.name.c_str(), item.version,
              shape.c_str(), static_cast<double>(p.scale), p.bytes / 1048576.0, p.origin.c_str(),
              item.state == memos::State::active ? "" : " (not active)");
}

// The file whole: adapters are megabytes, and the upload needs its size.
std::optional<std::string> read_file(const std::string& path, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int export_param(const ParamArgs& a, memos::Client& client, const Output& out) {
  // Written beside the target and renamed: a failed export leaves no half file.
  const bool to_stdout = a.out == "-";
  if (to_stdout && ::isatty(STDOUT_FILENO)) {
    throw UsageError{"param export writes a binary GGUF: give -o FILE, or redirect -o -"};
  }
  const std::string tmp = a.out + ".tmp";
  std::ofstream file;
  if (!to_stdout) {
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "memctl: cannot write %s: %s\n", tmp.c_str(), std::strerror(errno));
      return kExitRefused;
    }
  }
  std::uint64_t bytes = 0;
  auto r = client.param_export(a.cube, a.name, a.version, [&](std::string_view chunk) {
    bytes += chunk.size();
    if (to_stdout) return std::fwrite(chunk.data(), 1, chunk.size(), stdout) == chunk.size();
    file.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    return static_cast<bool>(file);
  });
  if (!to_stdout) {
    file.close();
    if (!r || !file || std::rename(tmp.c_str(), a.out.c_str()) != 0) {
      std::remove(tmp.c_str());
      if (r) {
        std::fprintf(stderr, "memctl: cannot write %s\n", a.out.c_str());
        return kExitRefused;
      }
    }
  }
  if (!r) return out.refused(r.error());
  if (out.json()) {
    Json j;
    j["name"] = a.name;
    j["version"] = r.value();
    j["bytes"] = bytes;
    j["file"] = a.out;
    return out.emit(j);
  }
  if (!to_stdout) {
    std::printf("%s: adapter '%s' version %u, %llu bytes\n", a.out.c_str(), a.name.c_str(),
                r.value(), static_cast<unsigned long long>(bytes));
  }
  return 0;
}

int distill(const ParamArgs& a, memos::Client& client, const Output& out) {
  memos::DistillArgs d;
  d.cube = a.cube;
  d.name = a.name;
  d.tag = a.tag;
  for (const auto& text : a.items) {
    auto id = memos::parse_id(text);
    if (!id) throw UsageError{"'" + text + "' is not an item id (13 characters of base32)"};
    d.ids.push_back(*id);
  }
  d.rank = a.rank;
  d.steps = a.steps;
  d.scale = a.scale;
  d.description = a.description;
  auto r = client.param_distill(d);
  if (!r) return out.refused(r.error(), "cube '" + a.cube + "'");
  if (a.detach) {
    if (out.json()) return out.emit(job_json(r.value()));
    std::printf("job %llu: distilling %u memories into '%s' (memctl job show %llu)\n",
                static_cast<unsigned long long>(r->id), r->memories, a.name.c_str(),
                static_cast<unsigned long long>(r->id));
    return 0;
  }
  return follow_job(client, r.value(), out);
}

int run(CLI::App& cmd, const ParamArgs& a, memos::Client& client, const Output& out) {
  auto sub = [&](const char* name) { return cmd.got_subcommand(name); };
  if (sub("ls")) {
    auto r = client.param_list(a.cube);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& item : r.value()) j.push_back(item_json(item));
      return out.emit(j);
    }
    if (r->empty()) std::printf("no adapters\n");
    for (const auto& item : r.value()) print_param_line(item);
    return 0;
  }
  if (sub("export")) return export_param(a, client, out);
  if (sub("distill")) return distill(a, client, out);
  memos::Result<memos::Item> r = memos::Error{};
  if (sub("add")) {
    std::string why;
    auto bytes = read_file(a.file, &why);
    if (!bytes) {
      std::fprintf(stderr, "memctl: %s\n", why.c_str());
      return kExitRefused;
    }
    r = client.param_add(a.cube, a.name, *bytes, a.scale, a.description);
  } else if (sub("cvec")) {
    r = client.param_cvec(a.cube, a.name, a.positive, a.negative, a.scale, a.description);
  } else if (sub("show")) {
    r = client.param_show(a.cube, a.name, a.version);
  } else {
    r = client.param_remove(a.cube, a.name);
  }
  if (!r) return out.refused(r.error());
  if (out.json()) return out.emit(item_json(r.value()));
  if (sub("show")) {
    print_item(r.value());
  } else {
    print_param_line(r.value());
  }
  return 0;
}

}  // namespace

void add_param_commands(CLI::App& app, ParamArgs& a) {
  auto* param =
      app.add_subcommand("param", "the parametric tier: LoRA adapters a cube holds for chats");
  param->require_subcommand(1);
  auto* add = param->add_subcommand(
      "add", "add a LoRA adapter (GGUF) to a cube, or a new version of one of that name");
  add->add_option("CUBE", a.cube, "the cube")->required();
  add->add_option("FILE", a.file, "the adapter's GGUF file")->required();
  add->add_option("--name", a.name, "its name in the cube")->required();
  add->add_option("--scale", a.scale, "what chats use unless they name one (default 1)")
      ->check(CLI::Range(-16.0f, 16.0f));
  add->add_option("--description", a.description,
                  "the item's text (default: made from the adapter's facts)");
  auto* cvec =
      param->add_subcommand("cvec", "derive a control vector from the cube's memories of two tags");
  cvec->add_option("CUBE", a.cube, "the cube")->required();
  cvec->add_option("--name", a.name, "its name in the cube")->required();
  cvec->add_option("--positive", a.positive, "the tag of the memories to steer towards")
      ->required();
  cvec->add_option("--negative", a.negative, "the tag of the memories to steer away from")
      ->required();
  cvec->add_option("--scale", a.scale, "what chats use unless they name one (default 1)")
      ->check(CLI::Range(-16.0f, 16.0f));
  cvec->add_option("--description", a.description,
                   "the item's text (default: made from its memories)");
  auto* distill = param->add_subcommand(
      "distill", "distill the cube's memories into a LoRA adapter (a background job)");
  distill->add_option("CUBE", a.cube, "the cube")->required();
  distill->add_option("--name", a.name, "the adapter's name in the cube")->required();
  auto* tag = distill->add_option("--tag", a.tag, "the memories tagged so (default: all)");
  distill->add_option("--items", a.items, "these memories (default: all)")
      ->delimiter(',')
      ->type_name("ID[,ID...]")
      ->excludes(tag);
  distill->add_option("--rank", a.rank, "the adapter's rank (default 8)")
      ->check(CLI::Range(1u, 256u));
  distill->add_option("--steps", a.steps, "training steps of one window each (default 40)")
      ->check(CLI::Range(1u, 10000u));
  distill->add_option("--scale", a.scale, "what chats use unless they name one (default 1)")
      ->check(CLI::Range(-16.0f, 16.0f));
  distill->add_option("--description", a.description,
                      "the item's text (default: made from its memories)");
  distill->add_flag("--detach", a.detach, "print the job and return (default: follow it)");
  param->add_subcommand("ls", "list a cube's adapters")
      ->add_option("CUBE", a.cube, "the cube")
      ->required();
  auto* show = param->add_subcommand("show", "one adapter: its facts and its item");
  show->add_option("CUBE", a.cube, "the cube")->required();
  show->add_option("NAME", a.name, "the adapter")->required();
  show->add_option("--version", a.version, "this version (default: the head)");
  auto* rm = param->add_subcommand("rm", "remove an adapter (a tombstone version)");
  rm->add_option("CUBE", a.cube, "the cube")->required();
  rm->add_option("NAME", a.name, "the adapter")->required();
  auto* exp = param->add_subcommand("export", "write an adapter's GGUF to a file");
  exp->add_option("CUBE", a.cube, "the cube")->required();
  exp->add_option("NAME", a.name, "the adapter")->required();
  exp->add_option("-o,--output", a.out, "the file to write; - for standard output")->required();
  exp->add_option("--version", a.version, "this version (default: the head)");
}

std::optional<int> run_param_commands(CLI::App& app, const ParamArgs& a, memos::Client& client,
                                      const Output& out) {
  if (CLI::App* cmd = app.get_subcommand("param"); cmd->parsed()) return run(*cmd, a, client, out);
  return std::nullopt;
}

}  // namespace memos::shell
