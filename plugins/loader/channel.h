// channel.h — one way to call a plugin, in process or isolated, with the
// same bytes either way.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "plugins/loader/library.h"

namespace memos::plugins {

class PluginChannel {
 public:
  virtual ~PluginChannel() = default;
  // One call, blocking until it completes or `timeout` passes. Thread-safe.
  // A failure the caller may retry (timeout, a crashed or restarting host)
  // is MEMOS_ERR_BUSY; see CallResult for the rest. The partials the
  // plugin reports go to `on_partial` while the call waits (PartialSink).
  virtual CallResult call(const std::string& request, std::chrono::milliseconds timeout,
                          std::size_t max_reply_bytes, const PartialSink& on_partial = {}) = 0;
  // "running", or what keeps it from running (restarting, quarantined).
  virtual std::string health() const = 0;
  // Changes each time what the plugin held in memory is lost (an isolated
  // host died): a caller that keeps state in the plugin, such as a
  // retriever's collections, compares it to what it last saw and rebuilds.
  // Thread-safe and cheap (an atomic load). An in-process plugin never
  // loses its memory short of memosd's own death: always 0 there.
  virtual std::uint64_t incarnation() const { return 0; }
  // Counts the deaths the plugin brought on itself: a crash, an exit, a
  // hang that memosd ended; not a kill from outside (SIGKILL from the OOM
  // killer or an operator). A caller may blame the request in flight for
  // these (a document that crashes the plugin), never for the others.
  virtual std::uint64_t plugin_faults() const { return 0; }
  // Ends the plugin's work for good (memosd is stopping): calls in flight
  // fail with MEMOS_ERR_BUSY, later ones at once. An in-process call cannot
  // be interrupted, so there it does nothing.
  virtual void stop() {}
  // Lets a quarantined plugin run again (`plugin reload`). Only an isolated
  // plugin is ever quarantined, so elsewhere it does nothing.
  virtual void reset_quarantine() {}
};

// The in-process channel: an instance in this address space.
class InProcessChannel final : public PluginChannel {
 public:
  explicit InProcessChannel(std::unique_ptr<PluginInstance> instance)
      : instance_(std::move(instance)) {}
  CallResult call(const std::string& request, std::chrono::milliseconds timeout,
                  std::size_t max_reply_bytes, const PartialSink& on_partial = {}) override {
    return instance_->call(request, timeout, max_reply_bytes, on_partial);
  }
  std::string health() const override { return "running"; }

 private:
  std::unique_ptr<PluginInstance> instance_;
};

}  // namespace memos::plugins
