// prometheus_text.h — the Prometheus text exposition format (version
// 0.0.4), as `memctl metrics` prints it and metrics.textfile holds it: a
// HELP and TYPE line per family, then its samples, one a line. Label
// values are escaped (backslash, double quote, newline), so a plugin or
// tenant name can never break a line or forge a sample.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memos::kernel {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

class PrometheusText {
 public:
  // Starts a family: `type` is counter, gauge or histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// `value` as a label value: \ " and newline escaped.
std::string escape_label(std::string_view value);

}  // namespace memos::kernel
