// printing.h — lets Boost.Test print SDK values in failed checks.
#pragma once

#include <ostream>

#include "memos/client.h"

namespace memos {
inline std::ostream& operator<<(std::ostream& out, ErrorCode code) {
  return out << to_string(code);
}
}  // namespace memos
