// command_line.cpp — memctl's help formatting and parse-error reports
// (command_line.h).
#include "shell/command_line.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "shell/output.h"
#include "shell/text_format.h"

namespace memos::shell {
namespace {

// Edits from `a` to `b`: insertions, deletions, substitutions, and swaps of
// neighbours ("serach" is one edit from "search").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::vector<std::string> command_names(CLI::App& level) {
  std::vector<std::string> names;
  for (CLI::App* sub : level.get_subcommands([](CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

// How far the typed words name a command: the deepest command reached
// ("cube ls"), and the word that named none there, if one did.
struct Walk {
  CLI::App* level;
  std::string path;
  std::string unknown;
};

Walk walk(CLI::App& app, const std::vector<std::string>& args) {
  Walk w{&app, "", ""};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") break;
    if (word.size() > 1 && word[0] == '-') {
      // The options before a command that take a value.
      if (word == "--socket" || word == "--stale") ++i;
      continue;
    }
    if (command_names(*w.level).empty()) break;  // a command's own arguments
    CLI::App* sub = nullptr;
    for (CLI::App* s : w.level->get_subcommands([](CLI::App*) { return true; })) {
      if (s->get_name() == word) sub = s;
    }
    if (!sub) {
      w.unknown = word;
      break;
    }
    w.level = sub;
    w.path += (w.path.empty() ? "" : " ") + word;
  }
  return w;
}

void say(const std::string& line) {
  std::fprintf(stderr, "memctl: %s\n", line.c_str());
}

std::string quoted_list(const std::vector<std::string>& names, const std::string& prefix,
                        const char* last_sep) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? last_sep : ", ";
    out += "'" + prefix + names[i] + "'";
  }
  return out;
}

// `add maya likes tea`: the text was meant as one argument. Returns false
// when the command takes no free text.
bool report_unquoted_text(CLI::App& leaf, const std::string& command,
                          const std::vector<std::string>& extras) {
  for (const char* name : {"TEXT", "QUERY", "PROMPT"}) {
    CLI::Option* text = leaf.get_option_no_throw(name);
    if (!text) continue;
    std::string example = command;
    for (CLI::Option* opt : leaf.get_options([](CLI::Option* o) { return o->get_positional(); })) {
      std::vector<std::string> words = opt->results();
      if (opt == text) words.insert(words.end(), extras.begin(), extras.end());
      if (words.empty()) continue;
      example += opt == text ? " \"" + join(words, " ") + "\"" : " " + join(words, " ");
    }
    say(quoted_list(extras, "", " and ") + (extras.size() == 1 ? " was" : " were") +
        " not expected: " + name + " is one argument; quote text of several words: " + example);
    return true;
  }
  return false;
}

}  // namespace

std::string HelpFormatter::make_option_opts(const CLI::Option* opt) const {
  if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
  // A flag takes no value; a positional's name is its value.
  if (opt->get_type_size() == 0 || opt->get_positional()) return "";
  // CLI11 appends each check's description to the type: "UINT:UINT in
  // [1 - 4294967295]"; one_of()'s is the list of names, "TEXT:{a,b}".
  std::string type = opt->get_type_name();
  if (auto colon = type.find(':'); colon != std::string::npos) {
    std::string check = type.substr(colon + 1);
    type = !check.empty() && check.front() == '{' ? check : type.substr(0, colon);
  }
  if (type == "UINT" || type == "INT") type = "N";
  if (type == "FLOAT") type = "NUMBER";
  std::string out = " " + type;
  if (opt->get_expected_max() == CLI::detail::expected_max_vector_size) out += " ...";
  for (const CLI::Option* other : opt->get_excludes())
    out += " (not with " + other->get_name() + ")";
  return out;
}

std::vector<std::string> near_names(std::string_view typed, const std::vector<std::string>& names) {
  std::vector<std::pair<std::size_t, std::string>> near;
  for (const auto& name : names) {
    std::size_t d = edit_distance(typed, name);
    bool begins = typed.size() >= 2 && name.compare(0, typed.size(), typed) == 0;
    if (begins) d = 0;
    if (d <= 2 && d < name.size()) near.emplace_back(d, name);
  }
  std::stable_sort(near.begin(), near.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [d, name] : near) out.push_back(std::move(name));
  return out;
}

int report_parse_error(CLI::App& app, const CLI::ParseError& e,
                       const std::vector<std::string>& args) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
  Walk w = walk(app, args);
  std::string command = w.path.empty() ? "memctl" : "memctl " + w.path;
  std::vector<std::string> commands = command_names(*w.level);
  std::string prefix = w.path.empty() ? "" : w.path + " ";
  if (!w.unknown.empty()) {
    std::vector<std::string> near = near_names(w.unknown, commands);
    std::string line = "unknown command '" + prefix + w.unknown + "'; ";
    if (near.empty()) {
      line += "the commands" + (w.path.empty() ? "" : " of '" + command + "'") + " are " +
              join(commands, ", ");
    } else {
      line += "did you mean " + quoted_list(near, prefix, " or ") + "?";
    }
    say(line);
    say("see '" + command + " --help'");
    return kExitUsage;
  }
  const bool missing_command = dynamic_cast<const CLI::RequiredError*>(&e) != nullptr;
  if (!commands.empty() && missing_command) {  // stopped at a group, with no command named
    say(w.path.empty() ? "no command given; the commands are " + join(commands, ", ")
                       : "'" + command + "' wants one of: " + join(commands, ", "));
    return kExitUsage;
  }
  std::string where = w.path.empty() ? "" : w.path + ": ";
  std::vector<std::string> extras = app.remaining(true);
  if (dynamic_cast<const CLI::ExtrasError*>(&e) && !extras.empty()) {
    if (!report_unquoted_text(*w.level, command, extras)) {
      say(where + quoted_list(extras, "", " and ") + (extras.size() == 1 ? " was" : " were") +
          " not expected");
    }
  } else {
    say(where + e.what());
  }
  say("see '" + command + " --help'");
  return kExitUsage;
}

}  // namespace memos::shell
