// The kernel's one error vocabulary: how store errors enter it, and what
// stays of a status as it is passed up.
#define BOOST_TEST_MODULE status
#include <boost/test/unit_test.hpp>

#include "kernel/status.h"

using namespace memos::kernel;
using memos::store::Errc;

BOOST_AUTO_TEST_CASE(store_errors_map_once) {
  struct Case {
    Errc from;
    Code to;
    bool retryable;
  };
  const Case cases[] = {
      {Errc::not_found, Code::not_found, false},
      {Errc::already_exists, Code::already_exists, false},
      {Errc::conflict, Code::conflict, false},
      {Errc::storage_full, Code::storage_full, true},
      {Errc::map_full, Code::storage_full, true},
      {Errc::unavailable, Code::unavailable, true},
      {Errc::corrupt, Code::internal, false},
      {Errc::io, Code::internal, false},
  };
  for (const Case& c : cases) {
    Status s = Status::from({c.from, "why"});
    BOOST_TEST((s.code == c.to), to_string(c.to));
    BOOST_TEST(s.retryable == c.retryable, to_string(c.to));
    BOOST_TEST(s.message == "why");
  }
  BOOST_TEST(Status::from({}).ok());
}

BOOST_AUTO_TEST_CASE(constructors_say_what_a_client_may_do) {
  BOOST_TEST(!Status::bad_request("x").retryable);
  BOOST_TEST(Status::unavailable("stopping").retryable);
  BOOST_TEST(!Status::unavailable("no model configured", false).retryable);
  Status busy = Status::plugin_failure("host restarting", true);
  BOOST_TEST((busy.code == Code::unavailable));
  BOOST_TEST(busy.retryable);
  Status broken = Status::plugin_failure("bad reply", false);
  BOOST_TEST((broken.code == Code::internal));
  BOOST_TEST(!broken.retryable);
}

BOOST_AUTO_TEST_CASE(prefixed_keeps_the_code) {
  Status s = Status::plugin_failure("retriever faiss: timed out", true);
  s.prefixed("search failed");
  BOOST_TEST(s.message == "search failed: retriever faiss: timed out");
  BOOST_TEST((s.code == Code::unavailable));
  BOOST_TEST(s.retryable);
  Status ok;
  ok.prefixed("search failed");
  BOOST_TEST(ok.ok());
  BOOST_TEST(ok.message.empty());
}

BOOST_AUTO_TEST_CASE(codes_print_as_the_protocol_spells_them) {
  BOOST_TEST(std::string(to_string(Code::not_found)) == "notFound");
  BOOST_TEST(std::string(to_string(Code::storage_full)) == "storageFull");
  BOOST_TEST(std::string(to_string(static_cast<Code>(200))) == "unknown");
}
