// What a retrying thread says of a lasting trouble (cluster/trouble_log.h):
// once, not once a retry; again when it changes; its end once for each time
// it was said; a lasting one as an error.
#define BOOST_TEST_MODULE trouble_log
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/trouble_log.h"

using memos::cluster::TroubleLog;
using memos::store::Errc;
using memos::store::Status;

namespace {

// The default logger's lines while it lives, as "level: text".
struct CapturedLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> before = spdlog::default_logger();
  CapturedLog() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%l: %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(before); }
  std::vector<std::string> lines() const {
    std::vector<std::string> all;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) all.push_back(line);
    return all;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_trouble_that_comes_and_goes_is_said_once_and_its_end_once) {
  CapturedLog log;
  TroubleLog trouble("reading the log", "goes on");
  const Status down{Errc::unavailable, "JetStream system temporarily unavailable"};
  trouble.turn({});  // nothing said before: nothing ends
  for (int i = 0; i < 20; ++i) {
    trouble.turn(down);
    trouble.turn({});
  }
  const std::vector<std::string> said = log.lines();
  BOOST_REQUIRE_EQUAL(said.size(), 2u);
  BOOST_TEST(said[0] == "warning: reading the log: JetStream system temporarily unavailable");
  BOOST_TEST(said[1] == "info: reading the log: goes on");
}

BOOST_AUTO_TEST_CASE(another_trouble_is_said_and_a_lasting_one_is_an_error) {
  CapturedLog log;
  TroubleLog trouble("shard 3", "replication goes on");
  trouble.turn({Errc::unavailable, "no quorum"});
  trouble.turn({Errc::unavailable, "no quorum"});
  trouble.turn({Errc::unavailable, "no etcd endpoint answered"});
  trouble.turn({Errc::corrupt, "off the chain"}, true);
  trouble.turn({Errc::corrupt, "off the chain"}, true);
  const std::vector<std::string> said = log.lines();
  BOOST_REQUIRE_EQUAL(said.size(), 3u);
  BOOST_TEST(said[0] == "warning: shard 3: no quorum");
  BOOST_TEST(said[1] == "warning: shard 3: no etcd endpoint answered");
  BOOST_TEST(said[2] == "error: shard 3: off the chain");
}
