// archive_ids.h — the ids of a cube's items, read back from the cube's own
// export with the real archive reader (the SDK has no call that lists a
// cube's items). Tests that use it link memos_memcube.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/archive.h"
#include "memos/client.h"
#include "tests/support/printing.h"

namespace memos::testing {

// Each once (an item's versions share its id): the plaintext items
// ascending, then the adapters ascending (archive.h).
inline std::vector<std::uint64_t> item_ids(memos::Client& c, const std::string& cube) {
  std::string archive;
  auto exported = c.export_cube(cube, [&](std::string_view bytes) {
    archive.append(bytes);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(exported.ok(), why(exported));
  std::vector<std::uint64_t> ids;
  store::ArchiveReader r(64 << 20);
  store::Status read =
      r.feed(archive, {[](const store::ArchiveManifest&) { return store::Status{}; },
                       [&](store::Item item) {
                         if (ids.empty() || ids.back() != item.id) ids.push_back(item.id);
                         return store::Status{};
                       },
                       [](store::Snapshot) { return store::Status{}; },
                       {},
                       {}});
  BOOST_REQUIRE_MESSAGE(read.ok() && r.complete(), read.message);
  return ids;
}

}  // namespace memos::testing
