#include "plugins/loader/library.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "ipc/schema/plugin.capnp.h"

namespace memos::plugins {
namespace {

// The host side of one call: the plugin completes it through the C API,
// from any thread, exactly once; the caller waits on it.
struct PendingCall {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  bool abandoned = false;  // the caller gave up waiting
  std::size_t max_reply_bytes = 0;
  // The caller's, while it waits; null once it returned or if it takes none.
  const PartialSink* on_partial = nullptr;
  CallResult result;
};

void host_log(void* data, int level, const char* message, std::size_t size) {
  const auto* name = static_cast<const std::string*>(data);
  std::string_view text(message, size);
  switch (level) {
    case MEMOS_LOG_DEBUG:
      spdlog::debug("plugin {}: {}", *name, text);
      break;
    case MEMOS_LOG_INFO:
      spdlog::info("plugin {}: {}", *name, text);
      break;
    case MEMOS_LOG_WARN:
      spdlog::warn("plugin {}: {}", *name, text);
      break;
    default:
      spdlog::error("plugin {}: {}", *name, text);
      break;
  }
}

void host_complete(memos_call* call, memos_status status, const std::uint8_t* reply,
                   std::size_t size) {
  auto* pending = reinterpret_cast<PendingCall*>(call);
  // Everything under the lock, notify included: once it is released the
  // waiting caller may return and free the call. (A call the caller gave up
  // on is kept alive by its instance until destroy(), so a late completion
  // still lands here safely.)
  std::lock_guard lock(pending->mutex);
  if (pending->done) {
    spdlog::warn("a plugin completed a call twice; the second completion is ignored");
    return;
  }
  pending->done = true;
  pending->result.status = status;
  if (size > pending->max_reply_bytes) {
    pending->result.status = MEMOS_ERR_INTERNAL;
    pending->result.message = "the plugin's reply is larger than the limit";
  } else if (reply && size) {
    pending->result.reply.assign(reinterpret_cast<const char*>(reply), size);
  }
  pending->done_cv.notify_all();
}

void host_partial(memos_call* call, const std::uint8_t* message, std::size_t size) {
  auto* pending = reinterpret_cast<PendingCall*>(call);
  // Under the lock, like a completion: the caller cannot return (and free
  // its sink) while a partial is being delivered.
  std::lock_guard lock(pending->mutex);
  if (pending->done || pending->abandoned || !pending->on_partial || !message) return;
  if (size > kMaxPartialBytes) {
    spdlog::warn("a plugin sent a partial of {} bytes, over {}: dropped", size, kMaxPartialBytes);
    return;
  }
  (*pending->on_partial)(std::string_view(reinterpret_cast<const char*>(message), size));
}

int host_is_cancelled(memos_call* call) {
  auto* pending = reinterpret_cast<PendingCall*>(call);
  std::lock_guard lock(pending->mutex);
  return pending->abandoned ? 1 : 0;
}

}  // namespace

std::string validate_descriptor(const memos_plugin_descriptor* d, const Manifest& m) {
  const std::string who = "plugin " + m.name + " (" + m.library + ")";
  if (!d) return who + ": memos_plugin_describe_v1() returned null";
  // Read only what the plugin's own size covers before trusting the rest.
  if (d->struct_size < sizeof(memos_plugin_descriptor)) {
    return who + ": descriptor struct is too small (" + std::to_string(d->struct_size) + " < " +
           std::to_string(sizeof(memos_plugin_descriptor)) + ")";
  }
  if (d->magic != MEMOS_PLUGIN_MAGIC) return who + ": bad magic (not a memosd plugin)";
  if (d->abi_major != MEMOS_PLUGIN_ABI_MAJOR) {
    return who + ": built for plugin ABI " + std::to_string(d->abi_major) + ", this memosd has " +
           std::to_string(MEMOS_PLUGIN_ABI_MAJOR);
  }
  if (m.abi_major != MEMOS_PLUGIN_ABI_MAJOR) {
    return who + ": manifest says ABI " + std::to_string(m.abi_major);
  }
  if (!d->name || m.name != d->name) {
    return who + ": calls itself '" + std::string(d->name ? d->name : "(null)") +
           "', not the manifest's name";
  }
  if ((d->kinds & m.kind_bits) != m.kind_bits)
    return who + ": does not provide the manifest's kinds";
  const memos_plugin_vtable* v = d->vtable;
  if (!v) return who + ": has no vtable";
  if (v->struct_size < offsetof(memos_plugin_vtable, cancel)) {
    return who + ": vtable struct is too small";
  }
  if (!v->create || !v->destroy || !v->call) return who + ": vtable lacks create, destroy or call";
  return "";
}

std::string load_library(const Manifest& manifest, LoadedLibrary* out) {
  void* handle = ::dlopen(manifest.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return "plugin " + manifest.name + ": cannot load " + manifest.library + ": " +
           (why ? why : "unknown error");
  }
  // Never dlclose: see the header.
  auto describe =
      reinterpret_cast<memos_plugin_describe_fn>(::dlsym(handle, "memos_plugin_describe_v1"));
  if (!describe) {
    return "plugin " + manifest.name + ": " + manifest.library +
           " does not export memos_plugin_describe_v1";
  }
  const memos_plugin_descriptor* d = describe();
  if (std::string err = validate_descriptor(d, manifest); !err.empty()) return err;
  out->descriptor = d;
  out->manifest = manifest;
  return "";
}

std::string config_message(const std::map<std::string, std::string>& settings) {
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<plugin_wire::PluginConfig>().initSettings(
      static_cast<unsigned>(settings.size()));
  unsigned i = 0;
  for (const auto& [k, v] : settings) {
    list[i].setKey(k);
    list[i].setValue(v);
    ++i;
  }
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

std::unique_ptr<PluginInstance> PluginInstance::create(const LoadedLibrary& library,
                                                       std::string* error) {
  std::unique_ptr<PluginInstance> p(new PluginInstance(library));
  p->host_.struct_size = sizeof(memos_host_api);
  p->host_.abi_minor = MEMOS_PLUGIN_ABI_MINOR;
  p->host_.host_data = &p->library_.manifest.name;
  p->host_.log = &host_log;
  p->host_.complete = &host_complete;
  p->host_.is_cancelled = &host_is_cancelled;
  p->host_.partial = &host_partial;
  std::string config = config_message(library.manifest.settings);
  memos_status s = library.descriptor->vtable->create(
      &p->host_, reinterpret_cast<const std::uint8_t*>(config.data()), config.size(),
      &p->instance_);
  if (s != MEMOS_OK || !p->instance_) {
    *error = "plugin " + library.manifest.name + ": create() failed with status " +
             std::to_string(static_cast<int>(s));
    p->instance_ = nullptr;
    return nullptr;
  }
  return p;
}

PluginInstance::~PluginInstance() {
  if (instance_) library_.descriptor->vtable->destroy(instance_);
  // After destroy() no call can complete: the abandoned ones may go.
  std::lock_guard lock(abandoned_mutex_);
  abandoned_.clear();
}

CallResult PluginInstance::call(const std::string& request, std::chrono::milliseconds timeout,
                                std::size_t max_reply_bytes, const PartialSink& on_partial) const {
  auto pending = std::make_shared<PendingCall>();
  pending->max_reply_bytes = max_reply_bytes;
  if (on_partial) pending->on_partial = &on_partial;
  auto* call = reinterpret_cast<memos_call*>(pending.get());
  library_.descriptor->vtable->call(
      instance_, call, reinterpret_cast<const std::uint8_t*>(request.data()), request.size());
  std::unique_lock lock(pending->mutex);
  if (!pending->done_cv.wait_for(lock, timeout, [&] { return pending->done; })) {
    pending->abandoned = true;
    pending->on_partial = nullptr;
    lock.unlock();
    {
      std::lock_guard keep(abandoned_mutex_);
      abandoned_.push_back(pending);
    }
    if (library_.descriptor->vtable->cancel) library_.descriptor->vtable->cancel(instance_, call);
    return {MEMOS_ERR_BUSY, "", "plugin " + library_.manifest.name + " did not answer in time"};
  }
  return pending->result;
}

}  // namespace memos::plugins
