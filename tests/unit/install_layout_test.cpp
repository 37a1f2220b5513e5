// Where memosd finds what `cmake --install` put for its prefix, read from
// the binary's own path: the configuration by cmake/install_config.cmake's
// rule (PREFIX/etc, /etc for the prefix /usr), and the plugins and helper in
// PREFIX/LIBDIR/memosd.
#define BOOST_TEST_MODULE install_layout
#include <boost/test/unit_test.hpp>

#include "kernel/install_layout.h"

using memos::kernel::installed_config_file;
using memos::kernel::installed_lib_dir;

BOOST_AUTO_TEST_CASE(the_package_reads_etc) {
  BOOST_TEST(installed_config_file("/usr/bin/memosd", "bin", "etc") == "/etc/memosd/memosd.conf");
  BOOST_TEST(installed_config_file("/usr//bin/./memosd", "bin/", "etc") ==
             "/etc/memosd/memosd.conf");
}

BOOST_AUTO_TEST_CASE(another_prefix_reads_its_own_etc) {
  BOOST_TEST(installed_config_file("/usr/local/bin/memosd", "bin", "etc") ==
             "/usr/local/etc/memosd/memosd.conf");
  BOOST_TEST(installed_config_file("/home/maya/.local/bin/memosd", "bin", "etc") ==
             "/home/maya/.local/etc/memosd/memosd.conf");
  BOOST_TEST(installed_config_file("/opt/memos/sbin/x86/memosd", "sbin/x86", "conf") ==
             "/opt/memos/conf/memosd/memosd.conf");
  BOOST_TEST(installed_config_file("/bin/memosd", "bin", "etc") == "/etc/memosd/memosd.conf");
}

BOOST_AUTO_TEST_CASE(an_absolute_sysconfdir_is_used_as_it_is) {
  BOOST_TEST(installed_config_file("/home/maya/.local/bin/memosd", "bin", "/etc") ==
             "/etc/memosd/memosd.conf");
  BOOST_TEST(installed_config_file("/srv/bin/memosd", "/srv/bin", "/srv/conf") ==
             "/srv/conf/memosd/memosd.conf");
}

BOOST_AUTO_TEST_CASE(no_install_no_file) {
  // The build tree: build/kernel/memosd is in no BINDIR.
  BOOST_TEST(installed_config_file("/work/memosd/build/kernel/memosd", "bin", "etc").empty());
  // An absolute BINDIR elsewhere, or one that tells no prefix.
  BOOST_TEST(installed_config_file("/usr/bin/memosd", "/srv/bin", "/srv/conf").empty());
  BOOST_TEST(installed_config_file("/srv/bin/memosd", "/srv/bin", "etc").empty());
}

BOOST_AUTO_TEST_CASE(plugins_are_in_the_install_libdir) {
  BOOST_TEST(installed_lib_dir("/home/maya/.local/bin/memosd", "bin", "lib") ==
             "/home/maya/.local/lib/memosd");
  // Configured for the prefix /usr, GNUInstallDirs makes LIBDIR multiarch.
  BOOST_TEST(installed_lib_dir("/usr/bin/memosd", "bin", "lib/x86_64-linux-gnu") ==
             "/usr/lib/x86_64-linux-gnu/memosd");
  BOOST_TEST(installed_lib_dir("/srv/bin/memosd", "/srv/bin", "/srv/lib") == "/srv/lib/memosd");
  BOOST_TEST(installed_lib_dir("/work/memosd/build/kernel/memosd", "bin", "lib").empty());
  BOOST_TEST(installed_lib_dir("/srv/bin/memosd", "/srv/bin", "lib").empty());
}

BOOST_AUTO_TEST_CASE(this_test_is_not_installed) {
  // The test binary runs from the build tree (tests/), in no BINDIR.
  BOOST_TEST(installed_config_file().empty());
  BOOST_TEST(installed_lib_dir().empty());
}
