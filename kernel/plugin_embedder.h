// plugin_embedder.h — text to vectors through an embedder plugin.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/loader/library.h"

namespace memos::kernel {

class PluginEmbedder {
 public:
  // `instance` is an embedder plugin; calls wait at most `timeout`.
  PluginEmbedder(std::unique_ptr<plugins::PluginInstance> instance,
                 std::chrono::milliseconds timeout, std::uint32_t max_batch)
      : instance_(std::move(instance)), timeout_(timeout), max_batch_(max_batch) {}

  // Embeds `texts` at `dimension`: out->size() == texts.size() * dimension,
  // row-major. Thread-safe. Returns "" or why it failed (the plugin's error,
  // a timeout, or a reply that does not decode or has the wrong shape).
  std::string embed(const std::vector<std::string_view>& texts, std::uint32_t dimension,
                    std::vector<float>* out) const;
  std::string embed(std::string_view text, std::uint32_t dimension, std::vector<float>* out) const {
    return embed(std::vector<std::string_view>{text}, dimension, out);
  }

  const plugins::PluginInstance& instance() const { return *instance_; }

 private:
  std::unique_ptr<plugins::PluginInstance> instance_;
  std::chrono::milliseconds timeout_;
  std::uint32_t max_batch_;
};

}  // namespace memos::kernel
