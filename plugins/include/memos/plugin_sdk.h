// memos/plugin_sdk.h — write a memosd plugin in C++ without touching the C
// boundary.
//
// Derive from memos::plugin_sdk::Plugin, answer requests in handle() (or in
// handle_call(), to stream partial results), and name the class once with
// MEMOS_PLUGIN(...). The SDK exports
// memos_plugin_describe_v1(), parses configuration and requests with tight
// limits, builds the reply message, and catches every exception (C++ or
// Cap'n Proto) so none crosses into memosd: a throwing handle() becomes an
// `internal` error reply carrying the exception's message.
//
//   class Echo : public memos::plugin_sdk::Plugin {
//    public:
//     explicit Echo(const memos::plugin_sdk::Config&) {}
//     memos_status handle(const memos::plugin_sdk::Request& request,
//                         memos::plugin_sdk::Reply reply) override { ... }
//   };
//   MEMOS_PLUGIN(Echo, "echo", "1.0", MEMOS_KIND_EMBEDDER)
//
// Threading: handle() runs on the thread that called call(); memosd may
// call it from several threads at once, so keep shared state guarded.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/schema/plugin.capnp.h"
#include "memos/plugin.h"

namespace memos::plugin_sdk {

using Request = plugin_wire::PluginRequest::Reader;
using Reply = plugin_wire::PluginResponse::Builder;

// The plugin's settings: the manifest's [settings] overridden by the daemon's.
class Config {
 public:
  explicit Config(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  // Throws std::invalid_argument with a clear message if the value is not a
  // whole number in [lo, hi] (create() then fails with MEMOS_ERR_INVALID).
  long long get_int(const std::string& key, long long fallback, long long lo, long long hi) const;
  const std::map<std::string, std::string>& all() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

// What a plugin may ask of memosd while handling a call.
class Host {
 public:
  explicit Host(const memos_host_api* api) : api_(api) {}
  void log(int level, std::string_view message) const {
    api_->log(api_->host_data, level, message.data(), message.size());
  }
  bool cancelled(memos_call* call) const { return api_->is_cancelled(call) != 0; }
  std::uint32_t abi_minor() const { return api_->abi_minor; }

 private:
  const memos_host_api* api_;
};

// One call in progress, as handle_call() sees it.
class Call {
 public:
  Call(const memos_host_api* api, memos_call* call) : api_(api), call_(call) {}
  // Whether memosd has given up on the call (its client left, its deadline
  // passed): long work stops and answers MEMOS_ERR_CANCELLED.
  bool cancelled() const { return api_->is_cancelled(call_) != 0; }
  // Whether partial() reaches memosd: its ABI is minor 1 or later.
  bool streams() const {
    return api_->struct_size >= offsetof(memos_host_api, partial) + sizeof(api_->partial) &&
           api_->abi_minor >= 1 && api_->partial != nullptr;
  }
  // Sends the PluginPartial that `fill` builds (a callable taking a
  // plugin_wire::PluginPartial::Builder) ahead of the reply. Returns false,
  // sending nothing, when the host takes no partials (streams()). Throws
  // what building the message throws (std::bad_alloc, kj::Exception).
  template <class Fill>
  bool partial(Fill&& fill) const {
    if (!streams()) return false;
    capnp::MallocMessageBuilder message(64);
    fill(message.initRoot<plugin_wire::PluginPartial>());
    auto words = capnp::messageToFlatArray(message);
    auto bytes = words.asBytes();
    api_->partial(call_, bytes.begin(), bytes.size());
    return true;
  }

 private:
  const memos_host_api* api_;
  memos_call* call_;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  // Answers one request by filling `reply`. Return MEMOS_OK with a result
  // set, or an error status with reply.initError() filled (fail() does both).
  // A plugin overrides this or handle_call(); the default answers
  // `unsupported`.
  virtual memos_status handle(const Request& /*request*/, Reply reply) {
    return fail(reply, MEMOS_ERR_UNSUPPORTED, "this plugin answers no requests");
  }
  // handle() with the call in hand, to send partial results or poll for
  // cancellation. The default calls handle().
  virtual memos_status handle_call(const Request& request, Reply reply, const Call& /*call*/) {
    return handle(request, reply);
  }

  // Sets an error reply and returns its status.
  static memos_status fail(Reply reply, memos_status status, std::string_view message);

  void attach(const Host* host) { host_ = host; }
  const Host& host() const { return *host_; }

 private:
  const Host* host_ = nullptr;
};

namespace detail {

// Limits for messages from memosd: bounded reading of whatever arrives.
constexpr std::uint64_t kTraversalWordsPerWord = 2;
constexpr int kNestingLimit = 32;

// Runs `fn` on a word-aligned copy of `bytes` read as a message of Root.
template <class Root, class Fn>
void read(const std::uint8_t* bytes, std::size_t size, Fn&& fn) {
  if (size == 0 || size % sizeof(capnp::word) != 0) {
    throw std::invalid_argument("message size is not a whole number of words");
  }
  std::vector<capnp::word> words(size / sizeof(capnp::word));
  std::memcpy(words.data(), bytes, size);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * kTraversalWordsPerWord + 64;
  options.nestingLimit = kNestingLimit;
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()), options);
  fn(reader.getRoot<Root>());
}

struct Instance {
  const memos_host_api* api;
  Host host;
  std::unique_ptr<Plugin> plugin;
};

inline plugin_wire::ErrorCode code_of(memos_status status) {
  switch (status) {
    case MEMOS_ERR_INVALID:
      return plugin_wire::ErrorCode::INVALID;
    case MEMOS_ERR_UNSUPPORTED:
      return plugin_wire::ErrorCode::UNSUPPORTED;
    case MEMOS_ERR_RESOURCE:
      return plugin_wire::ErrorCode::RESOURCE;
    case MEMOS_ERR_CANCELLED:
      return plugin_wire::ErrorCode::CANCELLED;
    case MEMOS_ERR_BUSY:
      return plugin_wire::ErrorCode::BUSY;
    default:
      return plugin_wire::ErrorCode::INTERNAL;
  }
}

inline void complete(const memos_host_api* host, memos_call* call, memos_status status,
                     capnp::MallocMessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  host->complete(call, status, bytes.begin(), bytes.size());
}

inline void complete_error(const memos_host_api* host, memos_call* call, memos_status status,
                           std::string_view why) noexcept {
  try {
    capnp::MallocMessageBuilder message;
    auto e = message.initRoot<plugin_wire::PluginResponse>().initError();
    e.setCode(code_of(status));
    e.setMessage(capnp::Text::Reader(why.data(), why.size()));
    complete(host, call, status, message);
  } catch (...) {
    host->complete(call, status, nullptr, 0);  // even building the error failed
  }
}

template <class P>
memos_status create(const memos_host_api* host, const std::uint8_t* config, std::size_t size,
                    memos_instance** out) noexcept {
  std::string why;
  try {
    std::map<std::string, std::string> values;
    kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
      read<plugin_wire::PluginConfig>(config, size, [&](plugin_wire::PluginConfig::Reader c) {
        for (auto s : c.getSettings()) values[s.getKey()] = s.getValue();
      });
    });
    KJ_IF_MAYBE (e, failure) {
      why = std::string("configuration does not decode: ") + e->getDescription().cStr();
      host->log(host->host_data, MEMOS_LOG_ERROR, why.data(), why.size());
      return MEMOS_ERR_INVALID;
    }
    auto instance = std::make_unique<Instance>(Instance{host, Host(host), nullptr});
    instance->plugin = std::make_unique<P>(Config(std::move(values)));
    instance->plugin->attach(&instance->host);
    *out = reinterpret_cast<memos_instance*>(instance.release());
    return MEMOS_OK;
  } catch (const std::invalid_argument& e) {
    why = e.what();
    host->log(host->host_data, MEMOS_LOG_ERROR, why.data(), why.size());
    return MEMOS_ERR_INVALID;
  } catch (const std::bad_alloc&) {
    return MEMOS_ERR_RESOURCE;
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "unknown exception";
  }
  host->log(host->host_data, MEMOS_LOG_ERROR, why.data(), why.size());
  return MEMOS_ERR_INTERNAL;
}

inline void destroy(memos_instance* instance) noexcept {
  delete reinterpret_cast<Instance*>(instance);
}

inline void call(memos_instance* handle, memos_call* call, const std::uint8_t* request,
                 std::size_t size) noexcept {
  auto* instance = reinterpret_cast<Instance*>(handle);
  const memos_host_api* host = instance->api;
  std::string why;
  memos_status status = MEMOS_ERR_INTERNAL;
  try {
    capnp::MallocMessageBuilder message;
    kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
      read<plugin_wire::PluginRequest>(request, size, [&](Request r) {
        status = instance->plugin->handle_call(r, message.initRoot<plugin_wire::PluginResponse>(),
                                               Call(host, call));
      });
    });
    KJ_IF_MAYBE (e, failure) {
      why = e->getDescription().cStr();
    } else {
      return complete(host, call, status, message);
    }
  } catch (const std::bad_alloc&) {
    return complete_error(host, call, MEMOS_ERR_RESOURCE, "out of memory");
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "unknown exception";
  }
  complete_error(host, call, MEMOS_ERR_INTERNAL, why);
}

template <class P>
const memos_plugin_descriptor* describe(const char* name, const char* version,
                                        std::uint32_t kinds) noexcept {
  static const memos_plugin_vtable vtable = {sizeof(memos_plugin_vtable), &create<P>, &destroy,
                                             &call, nullptr};
  static const memos_plugin_descriptor descriptor = {
    sizeof(memos_plugin_descriptor),
    0,
    MEMOS_PLUGIN_MAGIC,
    MEMOS_PLUGIN_ABI_MAJOR,
    MEMOS_PLUGIN_ABI_MINOR,
    kinds,
    name,
    version,
#if defined(__GNUC__)
    "gcc-" __VERSION__,
#else
    "unknown",
#endif
    &vtable
  };
  return &descriptor;
}

}  // namespace detail

inline long long Config::get_int(const std::string& key, long long fallback, long long lo,
                                 long long hi) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (...) {
    used = 0;
  }
  if (used != it->second.size() || it->second.empty() || v < lo || v > hi) {
    throw std::invalid_argument("setting " + key + " = '" + it->second +
                                "' is not a whole number in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  }
  return v;
}

inline memos_status Plugin::fail(Reply reply, memos_status status, std::string_view message) {
  auto e = reply.initError();
  e.setCode(detail::code_of(status));
  e.setMessage(capnp::Text::Reader(message.data(), message.size()));
  return status;
}

}  // namespace memos::plugin_sdk

// Exports the plugin: CLASS derives from memos::plugin_sdk::Plugin and has a
// constructor taking `const memos::plugin_sdk::Config&`.
#define MEMOS_PLUGIN(CLASS, NAME, VERSION, KINDS)                                                \
  extern "C" MEMOS_PLUGIN_EXPORT const memos_plugin_descriptor* memos_plugin_describe_v1(void) { \
    return ::memos::plugin_sdk::detail::describe<CLASS>(NAME, VERSION, KINDS);                   \
  }
