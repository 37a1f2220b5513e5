// memosd's command line and log as a user meets them (issue 15): --version,
// --help with its defaults, the configuration found without --config
// ($XDG_CONFIG_HOME, ~/.config, the system file), --print-config read back
// by memosd, the log's UTC times, log_format = "json", journald priorities
// when stderr is the journal, and what a SIGHUP reload applies and names.
#define BOOST_TEST_MODULE memosd_cli
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "kernel/config.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSetpriv = "/usr/bin/setpriv";

// Root reads no user file (config_discovery.h): as root, the user's side
// runs as nobody. The folder must then be open to nobody.
std::vector<std::string> as_a_user(const TempDir& dir) {
  if (geteuid() != 0) return {};
  chmod(dir.path().c_str(), 0777);
  return {kSetpriv, "--reuid=65534", "--regid=65534", "--clear-groups"};
}

boost::test_tools::assertion_result can_be_a_user(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(geteuid() != 0 || access(kSetpriv, X_OK) == 0);
  r.message() << "as root, needs " << kSetpriv << " to run memosd as a user";
  return r;
}

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
  chmod(path.c_str(), 0644);
}

// The TOML of --print-config without its comment lines (which name the
// file it came from).
std::string body(const std::string& printed) {
  std::istringstream in(printed);
  std::string line, out;
  while (std::getline(in, line)) {
    if (!line.starts_with("#")) out += line + "\n";
  }
  return out;
}

// Runs memosd with `args` and the environment variables `env` set (others
// as inherited), returning the exit status.
int memosd(const std::vector<std::string>& prefix, const std::vector<std::string>& args,
           std::string* out, std::string* err) {
  std::vector<std::string> argv = prefix;
  argv.push_back(MEMOS_MEMOSD);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, out, err);
}

// Sets an environment variable for the life of the object (Boost.Test runs
// the cases one at a time, and run_command() passes on the environment).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

bool log_has(const MemosdProcess& p, const std::string& text) {
  for (int i = 0; i < 250; ++i) {
    if (p.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Seconds between an RFC 3339 UTC time (2026-12-02T15:30:00.123Z) and now.
double seconds_from_now(const std::string& ts) {
  std::tm tm{};
  BOOST_REQUIRE(strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  return std::difftime(timegm(&tm), std::time(nullptr));
}

}  // namespace

BOOST_AUTO_TEST_CASE(version_is_the_project_version) {
  std::string out, err;
  BOOST_TEST(memosd({}, {"--version"}, &out, &err) == 0, err);
  BOOST_TEST(out == std::string("memosd ") + MEMOS_VERSION + "\n");
}

BOOST_AUTO_TEST_CASE(help_shows_each_default_without_type_noise) {
  TempDir dir;
  ScopedEnv data("XDG_DATA_HOME", (dir.path() + "/share").c_str());
  ScopedEnv runtime("XDG_RUNTIME_DIR", (dir.path() + "/run").c_str());
  ScopedEnv config("XDG_CONFIG_HOME", (dir.path() + "/config").c_str());
  std::string out, err;
  BOOST_TEST(memosd({}, {"--help"}, &out, &err) == 0, err);
  bool root = geteuid() == 0;
  for (const std::string& wanted :
       {std::string("--print-config"), std::string("--version"),
        std::string("(default: log_level of the configuration, else info)"),
        "(default: " + std::string(root ? "/var/lib/memosd" : dir.path() + "/share/memosd") + ")",
        "(default: " +
            std::string(root ? "/run/memosd/memosd.sock" : dir.path() + "/run/memosd.sock") + ")",
        std::string("/memosd/memosd.conf if it exists, else none)")}) {
    BOOST_TEST(out.find(wanted) != std::string::npos, wanted << " not in\n" << out);
  }
  if (!root) {
    BOOST_TEST(
        out.find(dir.path() + "/config/memosd/memosd.conf if it exists") != std::string::npos, out);
  }
  for (const char* noise : {"UINT", "TEXT", " in [", "NOT EMPTY"}) {
    BOOST_TEST(out.find(noise) == std::string::npos, noise << " in\n" << out);
  }
}

// Without --config a user's memosd reads $XDG_CONFIG_HOME/memosd/memosd.conf,
// else ~/.config/memosd/memosd.conf, and says which; a relative
// XDG_CONFIG_HOME is ignored, as the XDG specification says.
BOOST_AUTO_TEST_CASE(a_users_config_is_found_in_xdg_config_home,
                     *boost::unit_test::precondition(can_be_a_user)) {
  TempDir dir;
  auto prefix = as_a_user(dir);
  std::string xdg = dir.path() + "/xdg", home = dir.path() + "/home";
  write_file(xdg + "/memosd/memosd.conf", "[search]\nmax_k = 77\n");
  write_file(home + "/.config/memosd/memosd.conf", "[search]\nmax_k = 66\n");
  ScopedEnv home_env("HOME", home.c_str());
  std::string out, err;
  {
    ScopedEnv config("XDG_CONFIG_HOME", xdg.c_str());
    BOOST_TEST(memosd(prefix, {"--print-config"}, &out, &err) == 0, err);
    BOOST_TEST(out.find("max_k = 77") != std::string::npos, out);
    BOOST_TEST(out.find(xdg + "/memosd/memosd.conf (the user's)") != std::string::npos, out);
  }
  for (const char* unset_or_relative : {static_cast<const char*>(nullptr), "relative/xdg"}) {
    ScopedEnv config("XDG_CONFIG_HOME", unset_or_relative);
    BOOST_TEST(memosd(prefix, {"--print-config"}, &out, &err) == 0, err);
    BOOST_TEST(out.find("max_k = 66") != std::string::npos, out);
    BOOST_TEST(out.find(home + "/.config/memosd/memosd.conf (the user's)") != std::string::npos,
               out);
  }
  // --config wins over what would be found.
  write_file(dir.path() + "/named.conf", "[search]\nmax_k = 55\n");
  BOOST_TEST(
      memosd(prefix, {"--config", dir.path() + "/named.conf", "--print-config"}, &out, &err) == 0,
      err);
  BOOST_TEST(out.find("max_k = 55") != std::string::npos, out);
  BOOST_TEST(out.find("(named by --config)") != std::string::npos, out);
  // A found file with an error stops memosd, naming it: never a silent
  // fallback to the defaults.
  write_file(xdg + "/memosd/memosd.conf", "[search]\nmax_k = \"many\"\n");
  ScopedEnv config("XDG_CONFIG_HOME", xdg.c_str());
  BOOST_TEST(memosd(prefix, {"--print-config"}, &out, &err) == 1);
  BOOST_TEST(err.find(xdg + "/memosd/memosd.conf:2:") != std::string::npos, err);
}

// A real memosd started without --config logs the file it read (as root,
// that it reads no user file), or that it found none and where it looked.
BOOST_AUTO_TEST_CASE(a_daemon_logs_the_config_it_found) {
  TempDir dir;
  std::string xdg = dir.path() + "/xdg";
  write_file(xdg + "/memosd/memosd.conf", "log_level = \"debug\"\n");
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path());
  daemon.set_extra_env({"XDG_CONFIG_HOME=" + xdg});
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
  if (geteuid() == 0) {
    BOOST_TEST(daemon.log().find("(root reads no user file)") != std::string::npos, daemon.log());
  } else {
    BOOST_TEST(daemon.log().find("configuration " + xdg + "/memosd/memosd.conf (the user's)") !=
                   std::string::npos,
               daemon.log());
    BOOST_TEST(daemon.log().find(" debug ") != std::string::npos, daemon.log());
    std::filesystem::remove_all(xdg);
    BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
    BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
    // None there (unless this machine has a system file).
    BOOST_TEST((daemon.log().find("defaults apply (looked for " + xdg + "/memosd/memosd.conf") !=
                    std::string::npos ||
                daemon.log().find("(the system's)") != std::string::npos),
               daemon.log());
  }
}

// Root's memosd is the system one: it reads the system file only, never
// root's ~/.config.
BOOST_AUTO_TEST_CASE(root_reads_no_user_file,
                     *boost::unit_test::label("root") *
                         boost::unit_test::precondition(memos::testing::is_root)) {
  TempDir dir;
  std::string xdg = dir.path() + "/xdg";
  write_file(xdg + "/memosd/memosd.conf", "[search]\nmax_k = 77\n");
  ScopedEnv config("XDG_CONFIG_HOME", xdg.c_str());
  std::string out, err;
  BOOST_TEST(memosd({}, {"--print-config"}, &out, &err) == 0, err);
  BOOST_TEST(out.find("max_k = 77") == std::string::npos, out);
  BOOST_TEST(out.find("root reads no user file") != std::string::npos, out);
}

// --print-config writes every key in memosd.conf syntax; memosd reads that
// back to the same configuration (strings that need escapes, floats,
// arrays, plugin settings and the command line's values included).
BOOST_AUTO_TEST_CASE(print_config_reads_back_to_the_same_config) {
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  write_file(conf,
             "log_level = \"warn\"\nlog_format = \"json\"\nworker_threads = 3\n"
             "[ipc]\nmax_connections = 99\n"
             "[store]\ngroup_commit = false\nmax_text_bytes = 4096\n"
             "[search]\ndense_weight = 0.1\ndefault_mode = \"lexical\"\n"
             "[plugins]\npaths = [\"/opt/a\", \"/opt/b \\\"quoted\\\"\"]\n"
             "[plugins.settings.xapian-retriever]\nk1 = 1.5\nb = 0.5\n"
             "[plugins.settings.faiss-retriever]\nhnsw_m = 16\n"
             "[executor]\nkv_type = \"q8_0\"\n");
  std::string data = dir.path() + "/da\"ta \\ here";
  std::string out, err;
  BOOST_REQUIRE_MESSAGE(
      memosd({}, {"--config", conf, "--data", data, "--log-level", "error", "--print-config"}, &out,
             &err) == 0,
      err);
  BOOST_TEST(out.find("# with the command line over it: --data --log-level") != std::string::npos,
             out);
  for (const char* key :
       {"log_level = \"error\"", "log_format = \"json\"", "worker_threads = 3", "[ipc]",
        "max_connections = 99", "group_commit = false", "dense_weight = 0.1",
        "default_mode = \"lexical\"", "[plugins.settings.xapian-retriever]", "kv_type = \"q8_0\"",
        "[activation]", "max_state_mb = 200", "socket = "}) {
    BOOST_TEST(out.find(key) != std::string::npos, key << " not in\n" << out);
  }
  std::string printed = dir.path() + "/printed.conf";
  write_file(printed, out);
  std::string again;
  BOOST_TEST(memosd({}, {"--config", printed, "--print-config"}, &again, &err) == 0, err);
  BOOST_TEST(body(again) == body(out));
  BOOST_TEST(memosd({}, {"--check-config", printed}, &again, &err) == 0, err);

  // The defaults read back too.
  ScopedEnv config("XDG_CONFIG_HOME", (dir.path() + "/none").c_str());
  BOOST_TEST(memosd({}, {"--print-config"}, &out, &err) == 0, err);
  write_file(printed, out);
  BOOST_TEST(memosd({}, {"--config", printed, "--print-config"}, &again, &err) == 0, err);
  BOOST_TEST(body(again) == body(out));
}

BOOST_AUTO_TEST_CASE(a_bad_log_format_is_refused_at_start) {
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  write_file(conf, "log_level = \"info\"\nlog_format = \"yaml\"\n");
  std::string out, err;
  BOOST_TEST(memosd({}, {"--check-config", conf}, &out, &err) == 1);
  BOOST_TEST(err.find("memosd.conf:2:") != std::string::npos, err);
  BOOST_TEST(err.find("log_format must be text or json, not 'yaml'") != std::string::npos, err);
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_TEST(!daemon.start());
  BOOST_TEST(daemon.log().find("log_format must be text or json") != std::string::npos,
             daemon.log());
}

// The text log: RFC 3339 times in UTC ("Z"), the level, the message. A
// JOURNAL_STREAM that names another file is not the journal.
BOOST_AUTO_TEST_CASE(text_log_lines_carry_utc_times) {
  TempDir dir;
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path());
  daemon.set_extra_env({"JOURNAL_STREAM=1:1"});
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
  const std::regex line_format(
      R"(^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{3}Z (trace|debug|info|warning|error|critical) .+)");
  auto lines = lines_of(daemon.log());
  BOOST_REQUIRE(!lines.empty());
  for (const auto& line : lines) {
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_match(line, m, line_format), line);
    // Within a day of now whatever the local time zone: UTC, not local.
    BOOST_TEST(std::abs(seconds_from_now(m[1].str())) < 3600, line);
  }
  BOOST_TEST(daemon.log().find(" info memosd " MEMOS_VERSION " ready on ") != std::string::npos,
             daemon.log());
}

BOOST_AUTO_TEST_CASE(json_log_lines_parse) {
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  write_file(conf, "log_format = \"json\"\n");
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());
  auto lines = lines_of(daemon.log());
  BOOST_REQUIRE(!lines.empty());
  bool ready = false;
  for (const auto& line : lines) {
    auto object = nlohmann::json::parse(line, nullptr, false);
    BOOST_TEST_REQUIRE(object.is_object(), line);
    BOOST_TEST(object["ts"].get<std::string>().ends_with("Z"), line);
    BOOST_TEST(std::abs(seconds_from_now(object["ts"].get<std::string>())) < 3600, line);
    BOOST_TEST(object["level"].is_string(), line);
    BOOST_TEST(object["msg"].is_string(), line);
    BOOST_TEST(object["thread"].is_number(), line);
    if (object["msg"].get<std::string>().starts_with("memosd " MEMOS_VERSION " ready on")) {
      ready = true;
      BOOST_TEST(object["level"] == "info");
    }
  }
  BOOST_TEST(ready, daemon.log());
}

// With stderr on the journal (JOURNAL_STREAM names its device and inode,
// as systemd sets it), each line starts with its sd-daemon(3) priority and
// carries no time of its own. SIGHUP: a bad file is an error (<3>), keys
// that need a restart are a warning (<4>) naming them, and log_format
// applies at once.
BOOST_AUTO_TEST_CASE(journal_priorities_and_what_a_reload_applies) {
  TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  write_file(conf, "log_level = \"info\"\n");
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path(), {"--config", conf});
  // The log file memosd's stderr is opened on (O_APPEND), made first to
  // learn its device and inode.
  write_file(daemon.log_path(), "");
  struct stat st {};
  BOOST_REQUIRE(stat(daemon.log_path().c_str(), &st) == 0);
  daemon.set_extra_env(
      {"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)});
  BOOST_REQUIRE_MESSAGE(daemon.start(), daemon.log());
  BOOST_TEST(log_has(daemon, "<6>memosd " MEMOS_VERSION " ready on "), daemon.log());

  write_file(conf, "log_level = \"loud\"\n");
  kill(daemon.pid(), SIGHUP);
  BOOST_TEST(log_has(daemon, "<3>SIGHUP: configuration not reloaded"), daemon.log());

  write_file(conf,
             "log_level = \"info\"\nlog_format = \"json\"\n[search]\nmax_k = 5\n"
             "[ipc]\nmax_connections = 100\n");
  kill(daemon.pid(), SIGHUP);
  BOOST_TEST(log_has(daemon, "applied only at a restart: ipc.max_connections, search.max_k"),
             daemon.log());
  BOOST_TEST(daemon.stop(SIGTERM) == 0, daemon.log());

  bool warned = false, json_after_reload = false;
  for (const auto& line : lines_of(daemon.log())) {
    BOOST_TEST_REQUIRE(std::regex_search(line, std::regex("^<[2-7]>")), line);
    if (line.starts_with("<6>{")) {
      auto object = nlohmann::json::parse(line.substr(3), nullptr, false);
      BOOST_TEST_REQUIRE(object.is_object(), line);
      if (object["msg"].get<std::string>().find("log format json") != std::string::npos) {
        json_after_reload = true;
      }
    } else if (line.starts_with("<4>{")) {
      auto object = nlohmann::json::parse(line.substr(3), nullptr, false);
      BOOST_TEST_REQUIRE(object.is_object(), line);
      warned =
          object["level"] == "warning" &&
          object["msg"].get<std::string>().find(
              "applied only at a restart: ipc.max_connections, search.max_k") != std::string::npos;
    } else if (!line.starts_with("<3>") && !line.starts_with("<4>")) {
      // The text format under the journal: no time, no level.
      BOOST_TEST(!std::regex_search(line, std::regex(R"(^<\d>\d{4}-)")), line);
    }
  }
  BOOST_TEST(json_after_reload, daemon.log());
  BOOST_TEST(warned, daemon.log());
}
