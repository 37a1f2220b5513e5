// fuzz_request — a client's byte stream into a kernel assembled in process:
// frames split by the FrameDecoder, each read as a Request with the limits
// a connection uses and handled by the RequestHandler over a real store in
// a temporary data folder, the real in-process plugins (hash embedder,
// FAISS, Xapian, the hybrid fuser), the writer thread, a worker pool and
// the executor lane, as Daemon::build_services() puts them together.
//
// The input is one session of one tenant (a fresh tenant per input, so
// inputs do not see each other's cubes). Requests are handled in order,
// each awaited: every request must be answered exactly once, with its id,
// within a generous time; anything else aborts. Item ids 1..15 in a request
// stand for the ids of the session's first adds, import sessions 1..15 for
// its first imports (request_seeds.h), so sessions reach past not_found.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "ipc/frame_decoder.h"
#include "ipc/message.h"
#include "kernel/access_log.h"
#include "kernel/activation_tier.h"
#include "kernel/config.h"
#include "kernel/index_set.h"
#include "kernel/jobs.h"
#include "kernel/plugin_manager.h"
#include "kernel/request_handler.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/serial_lane.h"
#include "kernel/tenant_registry.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"
#include "tests/fuzz/fuzz_seeds.h"
#include "tests/fuzz/request_seeds.h"

namespace {

using namespace memos;
using namespace memos::kernel;
using wire::Request;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "fuzz_request: %s\n", why.c_str());
  std::abort();
}

// The daemon's worker pool (libuv's there): closures off the loop thread.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  void post(std::function<void()> work) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return !queue_.empty(); });
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      // The daemon logs what escapes a worker and goes on, and that
      // request is never answered: a bug, so stop here with its message.
      try {
        work();
      } catch (const std::exception& e) {
        die(std::string("exception escaped a worker: ") + e.what());
      }
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;  // never joined: the pool lives as long as the process
};

// The replies of the request being awaited. A request is answered exactly
// once; a reply for an older request (whose handler threw after queueing
// work, so the connection had closed) is dropped, as the daemon drops it.
class Replies {
 public:
  std::uint64_t expect() {
    std::lock_guard lock(mutex_);
    frames_.clear();
    // Tokens long done need no count (a second reply comes within moments).
    answered_.erase(answered_.begin(), answered_.lower_bound(current_ > 64 ? current_ - 64 : 0));
    return ++current_;
  }
  Reply reply_for(std::uint64_t token) {
    return [this, token](Frame frame, bool last) {
      if (!last) return;  // a partial reply (a streamed chat's piece): not the answer
      std::lock_guard lock(mutex_);
      if (++answered_[token] > 1) die("a request was answered twice");
      if (token != current_) return;
      frames_.push_back(std::move(frame));
      cv_.notify_all();
    };
  }
  // The reply, or null after `timeout`.
  Frame wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !frames_.empty(); })) return nullptr;
    return frames_.front();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t current_ = 0;
  std::vector<Frame> frames_;
  std::map<std::uint64_t, int> answered_;
};

struct Kernel {
  Kernel() {
    char templ[] = "/tmp/memos-fuzz-request-XXXXXX";
    if (!::mkdtemp(templ)) die("mkdtemp failed");
    dir = templ;
    config.data_dir = dir;
    config.plugins.paths = {MEMOS_PLUGIN_DIR};
    config.store.map_size_mb = 64;
    config.store.max_map_size_mb = 4096;
    config.search.snapshot_interval_s = 3600;
    plugins = std::make_unique<PluginManager>(config.plugins);
    loop_thread.bind();
    store::StoreOptions options;
    options.map_size_bytes = config.store.map_size_mb << 20;
    options.max_map_size_bytes = config.store.max_map_size_mb << 20;
    store::Status st;
    std::filesystem::create_directories(dir + "/store");
    store_ = store::Store::open(dir + "/store", options, &st);
    if (!store_) die("store: " + st.message);
    blobs = store::BlobStore::open(dir + "/blobs", &st);
    if (!blobs) die("blob store: " + st.message);
    plugins->scan();
    std::string model, error;
    auto embedder = plugins->load_embedder(&model, &error);
    if (!embedder) die("embedder: " + error);
    indexes.set_embedder(std::move(embedder), model);
    std::shared_ptr<PluginRetriever> r[3];
    const std::string* names[3] = {&config.plugins.dense, &config.plugins.lexical,
                                   &config.plugins.hybrid};
    for (int i = 0; i < 3; ++i) {
      std::string state_dir = dir + "/index/" + *names[i];
      std::filesystem::create_directories(state_dir);
      r[i] = plugins->load_retriever(*names[i], state_dir, &error);
      if (!r[i]) die("retriever: " + error);
    }
    indexes.set_retrievers(r[0], r[1], r[2]);
    std::size_t indexed = 0, rebuilt = 0;
    if (Status s = indexes.open_all(*store_, &indexed, &rebuilt); !s.ok()) die(s.message);
    // The indexer thread, as the daemon starts it before its writer.
    indexes.start(config.search.index_max_backlog,
                  static_cast<std::size_t>(config.search.index_max_backlog_mb) << 20);
    commits = std::make_unique<store::CommitQueue>(
        *store_, [](const store::Status& s) { die("commit failed: " + s.message); },
        config.store.group_commit);
    commits->set_after_group([this] { indexes.flush(); });
    activations = std::make_unique<ActivationTier>(*store_, *commits, *blobs, config.activation);
    handler = std::make_unique<RequestHandler>(
        Services{config, *store_, *commits, indexes, stats, access, *plugins, tenants,
                 [this](std::function<void()> work) { workers.post(std::move(work)); },
                 *activations, nullptr, lane, scheduler, loop_thread, nullptr, blobs.get(), &jobs});
    // Not before exit: the kernel is never destroyed (threads outlive it),
    // but its folder goes.
    static std::string remove_at_exit = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(remove_at_exit, ec);
    });
  }

  std::string dir;
  Config config;
  std::unique_ptr<PluginManager> plugins;
  // The built-in policies (no folder): every tenant admitted, unbounded.
  TenantRegistry tenants{"", "", 0, std::make_unique<policies::SystemDirectory>()};
  DaemonStats stats;
  scheduler::Scheduler scheduler{64};
  AccessLog access;
  ThreadAffinity loop_thread;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs;
  JobTable jobs;
  IndexSet indexes;
  std::unique_ptr<store::CommitQueue> commits;
  std::unique_ptr<ActivationTier> activations;
  SerialLane lane;
  WorkerPool workers{2};
  std::unique_ptr<RequestHandler> handler;
  Replies replies;
  std::uint32_t next_tenant = 100000;
  std::uint64_t next_connection = 1;
};

Kernel* the_kernel = nullptr;  // built once, in LLVMFuzzerInitialize; never freed

// What a session's small item ids and import sessions stand for.
struct SessionIds {
  std::vector<std::uint64_t> items, imports;
  std::uint64_t item(std::uint64_t n) const {
    return n >= 1 && n <= items.size() && n < 16 ? items[n - 1] : n;
  }
  std::uint64_t import(std::uint64_t n) const {
    return n >= 1 && n <= imports.size() && n < 16 ? imports[n - 1] : n;
  }
};

bool carries_ids(Request::Which which) {
  switch (which) {
    case Request::GET:
    case Request::UPDATE:
    case Request::REMOVE:
    case Request::HISTORY:
    case Request::SET_STATE:
    case Request::ROLLBACK:
    case Request::DIFF:
    case Request::KV_REMOVE:
    case Request::IMPORT_CHUNK:
    case Request::IMPORT_FINISH:
      return true;
    default:
      return false;
  }
}

// Rewrites the small ids of a copy of the request. True if it changed any.
bool map_ids(Request::Builder r, const SessionIds& ids) {
  auto map = [&](auto b) {
    std::uint64_t before = b.getItemId();
    b.setItemId(ids.item(before));
    return b.getItemId() != before;
  };
  switch (r.which()) {
    case Request::GET:
      return map(r.getGet());
    case Request::UPDATE:
      return map(r.getUpdate());
    case Request::REMOVE:
      return map(r.getRemove());
    case Request::HISTORY:
      return map(r.getHistory());
    case Request::SET_STATE:
      return map(r.getSetState());
    case Request::ROLLBACK:
      return map(r.getRollback());
    case Request::DIFF:
      return map(r.getDiff());
    case Request::KV_REMOVE:
      return map(r.getKvRemove());
    case Request::IMPORT_CHUNK: {
      auto c = r.getImportChunk();
      std::uint64_t before = c.getSession();
      c.setSession(ids.import(before));
      return c.getSession() != before;
    }
    case Request::IMPORT_FINISH: {
      std::uint64_t before = r.getImportFinish();
      r.setImportFinish(ids.import(before));
      return r.getImportFinish() != before;
    }
    default:
      return false;
  }
}

// Handles one frame as Connection::dispatch() does. False when the
// connection would now close (a request it cannot read).
bool handle_frame(kj::Array<capnp::word>& frame, std::uint32_t tenant, std::uint64_t connection,
                  SessionIds& ids) {
  std::uint64_t token = 0;
  std::uint64_t request_id = 0;
  bool handled = false;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(
        frame, ipc::frame_reader_options(frame.size(), the_kernel->config.ipc.nesting_limit));
    Request::Reader request = reader.getRoot<Request>();
    request_id = request.getId();
    // Only a request with ids is copied (a copy reads the whole message,
    // which a handler may never do).
    capnp::MallocMessageBuilder copy;
    if (carries_ids(request.which())) {
      copy.setRoot(request);
      if (map_ids(copy.getRoot<Request>(), ids)) request = copy.getRoot<Request>().asReader();
    }
    token = the_kernel->replies.expect();
    handled = true;
    the_kernel->handler->handle(the_kernel->tenants.peer(tenant, nullptr), connection, request,
                                the_kernel->replies.reply_for(token),
                                std::chrono::steady_clock::now());
  });
  if (failure != nullptr) return false;  // the connection replies "malformed" and closes
  if (!handled) return true;
  Frame reply = the_kernel->replies.wait(std::chrono::seconds(60));
  if (!reply) die("a request was not answered within 60 s");
  capnp::FlatArrayMessageReader reader(*reply);
  auto response = reader.getRoot<wire::Response>();
  if (response.getId() != request_id) die("a reply carries another request's id");
  if (response.isItem()) {
    std::uint64_t id = response.getItem().getId();
    if (std::find(ids.items.begin(), ids.items.end(), id) == ids.items.end()) {
      ids.items.push_back(id);
    }
  }
  if (response.isImportSession()) ids.imports.push_back(response.getImportSession());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked([](const fuzz::EmitSeed& emit) {
    for (const auto& [name, bytes] : fuzz::request_sessions()) emit(name, bytes);
  });
  spdlog::set_level(std::getenv("MEMOS_FUZZ_LOG") ? spdlog::level::debug : spdlog::level::off);
  the_kernel = new Kernel();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint32_t tenant = the_kernel->next_tenant++;
  const std::uint64_t connection = the_kernel->next_connection++;
  ipc::FrameDecoder decoder(
      {the_kernel->config.ipc.max_message_bytes, the_kernel->config.ipc.max_segments});
  std::vector<kj::Array<capnp::word>> frames;
  decoder.feed(std::span(reinterpret_cast<const std::byte*>(data), size), frames);
  SessionIds ids;
  for (auto& frame : frames) {
    if (!handle_frame(frame, tenant, connection, ids)) break;
  }
  the_kernel->handler->connection_closed(connection);
  return 0;
}
