// config_discovery.h — which memosd.conf is read when --config names none.
//
// A user's daemon reads $XDG_CONFIG_HOME/memosd/memosd.conf (XDG_CONFIG_HOME
// defaults to ~/.config), else the system file SYSCONFDIR/memosd/memosd.conf
// (/etc/memosd/memosd.conf for a /usr install). Root's daemon is the system
// one (its socket and data folder are the system's, config.h), so it reads
// the system file only. With neither, every key takes its default. The
// shipped memosd.service names its file with --config: discovery plays no
// part there.
#pragma once

#include <string>
#include <vector>

namespace memos::kernel {

struct ConfigChoice {
  std::string path;                // empty: no file, the defaults apply
  std::string why;                 // how it was chosen, for the log
  std::vector<std::string> tried;  // the places looked at, in order
};

// The file to read: `named` (from --config) if not empty, else the first of
// user_config_path() (not for root) and system_config_path() that exists.
// A path that exists but cannot be read is still chosen, so that loading it
// reports why rather than silently falling back.
ConfigChoice choose_config_file(const std::string& named);

// $XDG_CONFIG_HOME/memosd/memosd.conf, or $HOME/.config/memosd/memosd.conf
// when XDG_CONFIG_HOME is unset or not absolute (as the XDG base directory
// specification says); empty without either.
std::string user_config_path();

// MEMOS_SYSCONFDIR/memosd/memosd.conf, the installed system configuration.
std::string system_config_path();

// The tenant policy folder used when policies_dir names none: tenants.d
// beside the configuration file memosd read (`config_path`), else beside
// the file it would have read (the user's for a user's daemon, the
// system's for root's). The daemon uses it only if it exists.
std::string default_policies_dir(const std::string& config_path);

// What choose_config_file() reports, one line for the log and --help.
std::string describe(const ConfigChoice& choice);

}  // namespace memos::kernel
