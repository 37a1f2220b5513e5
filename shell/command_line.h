// command_line.h — how memctl talks about its own command line: help that
// shows what to type (not CLI11's "UINT:UINT in [1 - 4294967295]"), and
// parse errors that name what the user typed (an unknown command and the
// near ones, text that needed quotes), each line starting "memctl:".
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace memos::shell {

// Set on the root App before its subcommands are added (they copy it).
// Positionals show their name only; an option shows its value's kind (N,
// NUMBER, TEXT, PATH) or the names it accepts ({dense,lexical,hybrid}); the
// ranges and formats are in the descriptions.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override;
};

// The names among `names` the user may have meant by `typed`: those at most
// two edits away (a swap of neighbours is one), or that it begins; nearest
// first.
std::vector<std::string> near_names(std::string_view typed, const std::vector<std::string>& names);

// Reports a failed parse of `args` (argv without the program name) on
// stderr, or prints the help or version asked for on stdout. Returns the
// exit status: 0 for help and version, 2 (kExitUsage) otherwise.
int report_parse_error(CLI::App& app, const CLI::ParseError& e,
                       const std::vector<std::string>& args);

}  // namespace memos::shell
