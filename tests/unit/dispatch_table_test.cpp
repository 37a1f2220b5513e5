// The dispatch table: one handler per operation, found by the operation,
// and the schema's requests that nothing serves named.
#define BOOST_TEST_MODULE dispatch_table
#include <capnp/message.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "kernel/handlers/dispatch_table.h"

using namespace memos::kernel;
using memos::wire::Request;

BOOST_AUTO_TEST_CASE(finds_the_handler_of_its_operation) {
  DispatchTable table;
  std::vector<std::string> called;
  table.add(Request::ADD, [&](const RequestContext&, Request::Reader) { called.push_back("add"); });
  table.add(Request::KV_STATS,
            [&](const RequestContext&, Request::Reader) { called.push_back("kvStats"); });
  BOOST_TEST(table.find(Request::GET) == nullptr);
  BOOST_TEST(table.find(Request::STATUS) == nullptr);
  const Handler* add = table.find(Request::ADD);
  const Handler* stats = table.find(Request::KV_STATS);
  BOOST_REQUIRE(add != nullptr);
  BOOST_REQUIRE(stats != nullptr);
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<Request>();
  (*stats)(RequestContext{}, request.asReader());
  (*add)(RequestContext{}, request.asReader());
  BOOST_TEST(called == (std::vector<std::string>{"kvStats", "add"}),
             boost::test_tools::per_element());
}

// An operation past the end of the table (a newer client's) is not found.
BOOST_AUTO_TEST_CASE(an_unknown_operation_has_no_handler) {
  DispatchTable table;
  table.add(Request::STATUS, [](const RequestContext&, Request::Reader) {});
  BOOST_TEST(table.find(static_cast<Request::Which>(60000)) == nullptr);
  BOOST_TEST(DispatchTable().find(Request::STATUS) == nullptr);
}

BOOST_AUTO_TEST_CASE(names_the_requests_nothing_serves) {
  DispatchTable table;
  std::vector<std::string> all = table.unserved();
  BOOST_TEST(all.size() >= 29u);  // every request of the schema
  BOOST_TEST((std::find(all.begin(), all.end(), "search") != all.end()));
  table.add(Request::SEARCH, [](const RequestContext&, Request::Reader) {});
  std::vector<std::string> rest = table.unserved();
  BOOST_TEST(rest.size() == all.size() - 1);
  BOOST_TEST((std::find(rest.begin(), rest.end(), "search") == rest.end()));
}
