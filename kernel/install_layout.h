// install_layout.h — where `cmake --install` put memosd's configuration,
// plugins and helper, found from where the memosd binary itself is.
//
// The prefix is chosen when installing (`cmake --install build --prefix
// DIR`), after memosd was compiled, so it is read from the binary's path
// rather than compiled in: PREFIX/BINDIR/memosd. The folders below the
// prefix (BINDIR, LIBDIR, SYSCONFDIR) are CMake's GNUInstallDirs values the
// build was configured with: relative to the prefix, or absolute. The rule
// for the configuration is cmake/install_config.cmake's (and GNUInstallDirs'):
// PREFIX/SYSCONFDIR/memosd/memosd.conf, except /SYSCONFDIR/memosd/memosd.conf
// for the prefix /usr (the .deb: /etc/memosd/memosd.conf).
#pragma once

#include <filesystem>
#include <string_view>

namespace memos::kernel {

// The configuration file installed for the memosd at `exe`. Empty when
// `exe` is not in a BINDIR (memosd run from the build tree), or when the
// prefix cannot be told from it (an absolute bindir with a relative
// sysconfdir). Whether the file exists is the caller's question.
std::filesystem::path installed_config_file(const std::filesystem::path& exe,
                                            std::string_view bindir, std::string_view sysconfdir);
// PREFIX/LIBDIR/memosd for the memosd at `exe`: its plugins/ folder and
// memos-plugin-host. Empty as installed_config_file.
std::filesystem::path installed_lib_dir(const std::filesystem::path& exe, std::string_view bindir,
                                        std::string_view libdir);

// The same for this process (/proc/self/exe) and the layout memosd was
// built for. Empty where /proc/self/exe cannot be read.
std::filesystem::path installed_config_file();
std::filesystem::path installed_lib_dir();

}  // namespace memos::kernel
