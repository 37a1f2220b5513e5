// preconditions.h — Boost.Test preconditions for test cases that need what a
// machine may not give them (root, a tool). Without it such a case is
// reported as skipped, with the reason, never as passed:
//
//   BOOST_AUTO_TEST_CASE(name, *boost::unit_test::label("root") *
//                                  boost::unit_test::precondition(memos::testing::is_root))
//
// The label gives it a CTest test of its own (memos_test's SKIPPABLE in
// tests/CMakeLists.txt), shown as skipped there too.
#pragma once

#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <string>

#include "tests/support/engine_servers.h"

namespace memos::testing {

// Connecting as another uid, mounting: only root can.
inline boost::test_tools::assertion_result is_root(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(::geteuid() == 0);
  r.message() << "needs root (runs as uid " << ::geteuid() << ")";
  return r;
}

// A program the case runs.
struct HasProgram {
  std::string path;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(::access(path.c_str(), X_OK) == 0);
    r.message() << path << " is not installed";
    return r;
  }
};

// The engines of cluster mode (engine_servers.h): nats-server and etcd.
inline boost::test_tools::assertion_result engines_installed(boost::unit_test::test_unit_id) {
  const bool nats = ::access(kNatsServer, X_OK) == 0;
  const bool etcd = ::access(kEtcd, X_OK) == 0;
  boost::test_tools::assertion_result r(nats && etcd);
  r.message() << (nats ? kEtcd : kNatsServer) << " is not installed";
  return r;
}

}  // namespace memos::testing
