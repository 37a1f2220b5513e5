// plugin_embedder.h — text to vectors through an embedder plugin.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/status.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

class PluginEmbedder {
 public:
  // `channel` reaches an embedder plugin, in process or isolated; calls
  // wait at most `timeout`. `dimension` is the one it described as its own
  // (0 if it named none).
  PluginEmbedder(std::string name, std::shared_ptr<plugins::PluginChannel> channel,
                 std::chrono::milliseconds timeout, std::uint32_t max_batch,
                 std::uint32_t dimension = 0)
      : name_(std::move(name)),
        channel_(std::move(channel)),
        timeout_(timeout),
        max_batch_(max_batch),
        dimension_(dimension) {}

  // Embeds `texts` at `dimension`: out->size() == texts.size() * dimension,
  // row-major. Thread-safe. Errors (call_plugin): unavailable, retryable,
  // when the plugin's host died or timed out; internal for the plugin's own
  // error or a reply that does not decode or has the wrong shape.
  Status embed(const std::vector<std::string_view>& texts, std::uint32_t dimension,
               std::vector<float>* out) const;
  Status embed(std::string_view text, std::uint32_t dimension, std::vector<float>* out) const {
    return embed(std::vector<std::string_view>{text}, dimension, out);
  }

  const std::shared_ptr<plugins::PluginChannel>& channel() const { return channel_; }
  // The embedder's own dimension: a GGUF model's, or hash-v1's default.
  std::uint32_t dimension() const { return dimension_; }

 private:
  std::string name_;
  std::shared_ptr<plugins::PluginChannel> channel_;
  std::chrono::milliseconds timeout_;
  std::uint32_t max_batch_;
  std::uint32_t dimension_;
};

}  // namespace memos::kernel
