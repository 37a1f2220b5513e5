// memos-plugin-host — runs one plugin in its own process for memosd
// (memos-plugin(7), ISOLATION). memosd starts it with one end of a
// socketpair; a crash, hang or exit here costs memosd nothing but the
// calls in flight.
//
//   memos-plugin-host --manifest FILE --fd N [--memory-mb MB]
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "plugins/loader/host_protocol.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"

namespace hp = memos::plugins::host_protocol;

namespace {

// AddressSanitizer and ThreadSanitizer map terabytes of shadow memory up
// front: no address space or data limit leaves them room to run.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerShadow = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitizerShadow = true;
#else
constexpr bool kSanitizerShadow = false;
#endif
#else
constexpr bool kSanitizerShadow = false;
#endif

// Limits the memory the plugin may allocate, so that one allocating without
// bound has its allocations fail (std::bad_alloc, which the SDK answers as an
// error) instead of exhausting the machine. RLIMIT_DATA counts the heap and
// every private writable mapping, not the mapped code and files (a model
// mapped read-only). Returns "" or why not.
std::string limit_memory(std::uint64_t mb) {
  if (mb == 0) return "";
  if (kSanitizerShadow) return "not enforced under a sanitizer's shadow memory";
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(mb) << 20;
  if (::setrlimit(RLIMIT_DATA, &limit) != 0)
    return std::string("setrlimit: ") + std::strerror(errno);
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string manifest_path;
  int fd = -1;
  std::vector<std::string> overrides;
  std::uint64_t memory_mb = 0;
  CLI::App app{"memos-plugin-host: runs one memosd plugin in its own process", "memos-plugin-host"};
  app.add_option("--manifest", manifest_path, "the plugin's manifest")->required();
  app.add_option("--fd", fd, "the socketpair end memosd gave us")->required();
  app.add_option("--setting", overrides, "KEY=VALUE over the manifest's [settings]");
  app.add_option("--memory-mb", memory_mb, "the memory the plugin may use, in MB (0: no limit)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // memosd gone: writes fail, we exit
  if (std::string why = limit_memory(memory_mb); !why.empty()) {
    std::fprintf(stderr, "memos-plugin-host: memory limit of %llu MB: %s\n",
                 static_cast<unsigned long long>(memory_mb), why.c_str());
  }
  auto ready = [&](std::uint8_t status, const std::string& why) {
    return hp::write_frame(fd, {hp::kReady, status, hp::kTextPayload, 0, why});
  };
  memos::plugins::Manifest manifest;
  std::string error = memos::plugins::read_manifest(manifest_path, &manifest);
  if (error.empty()) error = memos::plugins::check_trusted(manifest_path);
  for (const auto& kv : overrides) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "--setting " + kv + ": expected KEY=VALUE";
      break;
    }
    manifest.settings[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  memos::plugins::LoadedLibrary library;
  if (error.empty()) error = memos::plugins::load_library(manifest, &library);
  std::unique_ptr<memos::plugins::PluginInstance> instance;
  if (error.empty()) instance = memos::plugins::PluginInstance::create(library, &error);
  if (!instance) {
    ready(MEMOS_ERR_INVALID, error);
    std::fprintf(stderr, "memos-plugin-host: %s\n", error.c_str());
    return 1;
  }
  if (!ready(MEMOS_OK, "")) return 1;

  // Calls run on a small pool, so several may be in flight at once as in
  // process, without a thread created per call. memosd enforces deadlines;
  // here a call may take as long as it takes.
  std::mutex write_mutex, queue_mutex;
  std::condition_variable queue_cv;
  std::deque<hp::Frame> queue;
  auto worker = [&] {
    for (;;) {
      hp::Frame call;
      {
        std::unique_lock lock(queue_mutex);
        queue_cv.wait(lock, [&] { return !queue.empty(); });
        call = std::move(queue.front());
        queue.pop_front();
      }
      // Partials go out as they come, under the same lock as completions,
      // so that a call's partials precede its COMPLETE on the socket.
      auto send_partial = [&](std::string_view bytes) {
        std::lock_guard lock(write_mutex);
        hp::write_frame(fd, {hp::kPartial, 0, 0, call.id, std::string(bytes)});
      };
      auto r = instance->call(call.payload, std::chrono::hours(24), hp::kMaxPayload, send_partial);
      bool text = r.reply.empty();
      std::lock_guard lock(write_mutex);
      hp::write_frame(
          fd, {hp::kComplete, static_cast<std::uint8_t>(r.status),
               text ? hp::kTextPayload : std::uint8_t{0}, call.id, text ? r.message : r.reply});
    }
  };
  const unsigned workers = std::max(2u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < workers; ++i) std::thread(worker).detach();
  hp::Frame frame;
  while (hp::read_frame(fd, &frame)) {
    if (frame.kind != hp::kCall) return 1;  // memosd broke the protocol
    {
      std::lock_guard lock(queue_mutex);
      queue.push_back(std::move(frame));
    }
    queue_cv.notify_one();
  }
  // memosd closed its end: leave without unwinding plugin threads.
  std::_Exit(0);
}
