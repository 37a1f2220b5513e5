// llama.cpp as a dependency: its headers compile, it links, and its
// libraries load and run (a shared system llama.cpp needs its run-time path).
#define BOOST_TEST_MODULE llama_link
#include <boost/test/unit_test.hpp>

#include <llama.h>

#include <cstring>

BOOST_AUTO_TEST_CASE(the_backend_starts_and_reports_the_cpu) {
  llama_backend_init();
  const char* info = llama_print_system_info();
  BOOST_REQUIRE(info != nullptr);
  BOOST_TEST(std::strlen(info) > 0u);
  BOOST_TEST_MESSAGE(info);
  llama_backend_free();
}
