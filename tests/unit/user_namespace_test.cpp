// Reading /proc/self/uid_map: which namespaces make peer uids unreliable,
// and which peers memosd then refuses (kernel/user_namespace.h).
#define BOOST_TEST_MODULE user_namespace
#include <boost/test/unit_test.hpp>

#include "kernel/user_namespace.h"

using memos::kernel::is_full_identity_map;
using memos::kernel::UserNamespace;

BOOST_AUTO_TEST_CASE(only_the_full_identity_map_is_complete) {
  BOOST_TEST(is_full_identity_map("         0          0 4294967295\n"));
  BOOST_TEST(!is_full_identity_map("         0          0          1\n"));  // --map-root-user
  BOOST_TEST(!is_full_identity_map("0 100000 65536\n"));                    // subuid range
  BOOST_TEST(!is_full_identity_map("0 0 1000\n1000 1000 4294966295\n"));    // two ranges
  BOOST_TEST(!is_full_identity_map(""));
  BOOST_TEST(!is_full_identity_map("garbage"));
}

BOOST_AUTO_TEST_CASE(the_overflow_uid_is_refused_only_in_a_partial_namespace) {
  UserNamespace host;                                  // the initial namespace
  BOOST_TEST(host.unmapped_peer(65534, 65534) == "");  // the real `nobody`
  BOOST_TEST(host.start_warning() == "");

  UserNamespace partial;
  partial.uids_complete = false;
  partial.gids_complete = false;
  partial.uid_map = "0 0 1";
  BOOST_TEST(partial.unmapped_peer(0, 0) == "");
  BOOST_TEST(partial.unmapped_peer(1000, 1000) == "");  // mapped elsewhere: real
  std::string why = partial.unmapped_peer(65534, 65534);
  BOOST_TEST(why.find("your uid is not visible in memosd's user namespace") == 0u, why);
  BOOST_TEST(partial.unmapped_peer(0, 65534).find("your gid") == 0u);
  BOOST_TEST(partial.start_warning().find("0 0 1") != std::string::npos);

  partial.overflow_uid = 4000;  // /proc/sys/kernel/overflowuid set otherwise
  BOOST_TEST(partial.unmapped_peer(65534, 1) == "");
  BOOST_TEST(partial.unmapped_peer(4000, 1) != "");
}

BOOST_AUTO_TEST_CASE(the_current_namespace_reads) {
  UserNamespace ns = UserNamespace::current();
  BOOST_TEST(ns.overflow_uid > 0u);
  // Whatever this machine is, the reading is consistent with the map text.
  if (!ns.uid_map.empty()) BOOST_TEST(ns.uids_complete == is_full_identity_map(ns.uid_map));
}
