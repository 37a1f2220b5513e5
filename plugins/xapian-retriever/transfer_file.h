// transfer_file.h — a collection's Glass database as one file, for memosd
// to move between nodes (plugin.capnp, exportSnapshot and importSnapshot).
//
// The file is the database compacted into a single file
// (Xapian::DBCOMPACT_SINGLE_FILE), then a trailer of 20 bytes:
//   u64     length of the database part
//   u32     format version (kTransferFormat)
//   "MXRS"  magic
//   u32     CRC-32C of the database part and the 16 trailer bytes above
// Host byte order. Xapian opens it as the database it holds (whatever
// follows a single-file database is ignored: one may be embedded in another
// file), so xapian-delve and friends read it as it is.
//
// The trailer is what Glass lacks: it keeps no checksums. A flipped byte in
// the middle of a posting list, a document's terms or its data is not
// noticed when the database opens, nor by Xapian::Database::check() (of
// every single-byte flip of a small database, about half went unnoticed),
// and some truncations still open. memosd moves the bytes through other
// nodes and an object store: what comes back must be what was written.
#pragma once

#include <xapian.h>

#include <cstdint>
#include <string>

namespace memos::lexical {

inline constexpr std::uint32_t kTransferFormat = 1;

// Writes the last commit of the Glass database in the folder `database` as
// a transfer file at `path`: compacted into <path>.tmp, the trailer
// appended, fsynced, renamed to `path`, and path's folder fsynced, so
// `path` is never half written. Answers how many documents it holds.
// Throws Error(resource) (then `path` is as it was and no .tmp is left).
Xapian::doccount write_transfer_file(const std::string& database, const std::string& path);

// Opens the transfer file at `path` once its trailer and checksum are right.
// Throws Error(invalid) saying why not: nothing there, a symbolic link or
// not a regular file, too short, not a transfer file, another format
// version, a checksum mismatch, or a database Xapian refuses.
Xapian::Database open_transfer_file(const std::string& path);

}  // namespace memos::lexical
