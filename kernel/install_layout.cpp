#include "kernel/install_layout.h"

#include <optional>
#include <system_error>

namespace memos::kernel {
namespace {

// The prefix of an install whose BINDIR holds `exe`; nullopt when `exe` is
// in no BINDIR, and an empty path when BINDIR is absolute (no prefix to
// tell, but `exe` is installed).
std::optional<std::filesystem::path> prefix_of(const std::filesystem::path& exe,
                                               std::string_view bindir) {
  const std::filesystem::path bin = std::filesystem::path(bindir).lexically_normal();
  const std::filesystem::path dir = exe.lexically_normal().parent_path();
  if (bin.is_absolute()) {
    if (dir != bin && dir / "" != bin) return std::nullopt;
    return std::filesystem::path();
  }
  // Walk up BINDIR's components, each of which must be the folder's.
  std::filesystem::path prefix = dir, rest = bin;
  while (!rest.empty() && rest != ".") {
    if (rest.filename().empty()) {  // a trailing slash
      rest = rest.parent_path();
      continue;
    }
    if (prefix.filename() != rest.filename()) return std::nullopt;
    prefix = prefix.parent_path();
    rest = rest.parent_path();
  }
  return prefix;
}

std::filesystem::path exe_path() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe;
}

}  // namespace

std::filesystem::path installed_config_file(const std::filesystem::path& exe,
                                            std::string_view bindir, std::string_view sysconfdir) {
  const std::filesystem::path etc(sysconfdir);
  auto prefix = prefix_of(exe, bindir);
  if (!prefix || (prefix->empty() && !etc.is_absolute())) return {};
  std::filesystem::path conf_dir;
  if (etc.is_absolute()) {
    conf_dir = etc;
  } else if (*prefix == "/usr") {
    conf_dir = std::filesystem::path("/") / etc;
  } else {
    conf_dir = *prefix / etc;
  }
  return (conf_dir / "memosd" / "memosd.conf").lexically_normal();
}

std::filesystem::path installed_lib_dir(const std::filesystem::path& exe, std::string_view bindir,
                                        std::string_view libdir) {
  const std::filesystem::path lib(libdir);
  auto prefix = prefix_of(exe, bindir);
  if (!prefix || (prefix->empty() && !lib.is_absolute())) return {};
  return ((lib.is_absolute() ? lib : *prefix / lib) / "memosd").lexically_normal();
}

std::filesystem::path installed_config_file() {
  auto exe = exe_path();
  if (exe.empty()) return {};
  return installed_config_file(exe, MEMOS_INSTALL_BINDIR, MEMOS_INSTALL_SYSCONFDIR);
}

std::filesystem::path installed_lib_dir() {
  auto exe = exe_path();
  if (exe.empty()) return {};
  return installed_lib_dir(exe, MEMOS_INSTALL_BINDIR, MEMOS_INSTALL_LIBDIR);
}

}  // namespace memos::kernel
