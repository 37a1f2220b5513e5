// archive_ids.h — a cube's archive in a test: exported whole, fed back to
// an import, and the ids of its items read back with the real archive
// reader (the SDK has no call that lists a cube's items). Tests that use
// item_ids link memos_memcube.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/archive.h"
#include "memos/client.h"
#include "tests/support/printing.h"

namespace memos::testing {

// The cube's whole archive, as `memctl cube export` writes it.
inline std::string export_archive(memos::Client& c, const std::string& cube) {
  std::string archive;
  auto exported = c.export_cube(cube, [&](std::string_view bytes) {
    archive.append(bytes);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(exported.ok(), why(exported));
  return archive;
}

// What Client::import_cube reads `archive` through (it must outlive the
// import).
inline std::function<std::size_t(char*, std::size_t)> archive_source(const std::string& archive) {
  return [&archive, at = std::size_t{0}](char* buf, std::size_t n) mutable {
    const std::size_t k = std::min(n, archive.size() - at);
    std::copy_n(archive.data() + at, k, buf);
    at += k;
    return k;
  };
}

// Each once (an item's versions share its id): the plaintext items
// ascending, then the adapters ascending (archive.h).
inline std::vector<std::uint64_t> item_ids(memos::Client& c, const std::string& cube) {
  const std::string archive = export_archive(c, cube);
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
