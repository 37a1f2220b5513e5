// lexical_transfer.cpp — LexicalCollection's database moved between nodes
// as one file: export_to() writes a saved collection's database as a
// transfer file (transfer_file.h), import_file() checks one and makes it a
// closed collection's database.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <new>
#include <system_error>
#include <unordered_set>

#include "plugins/xapian-retriever/document_data.h"
#include "plugins/xapian-retriever/lexical_collection.h"
#include "plugins/xapian-retriever/lexical_internal.h"
#include "plugins/xapian-retriever/transfer_file.h"

namespace memos::lexical {

using namespace detail;

namespace {

namespace fs = std::filesystem;

Error refused(const std::string& why) {
  return Error(Error::Kind::invalid, "snapshot refused: " + why);
}

// The version `db` records, checked as opening checks it.
std::uint64_t version_of(const Xapian::Database& db) {
  std::string text = db.get_metadata(kVersionKey);
  if (text.empty()) return 0;  // never saved
  auto version = parse_number(text);
  if (!version) throw refused("its version '" + text + "' is not a number");
  return *version;
}

// Every document's data is ours and each item is held once: what opening
// would refuse, found before anything changes.
void check_documents(const Xapian::Database& db) {
  std::unordered_set<std::uint64_t> ids;
  for (auto it = db.postlist_begin(std::string()); it != db.postlist_end(std::string()); ++it) {
    auto stored = decode_document_data(db.get_document(*it).get_data());
    if (!stored) throw refused("document " + std::to_string(*it) + " has foreign data");
    if (!ids.insert(stored->id).second) {
      throw refused("item " + std::to_string(stored->id) + " is held twice");
    }
  }
}

// What `db` holds, once it is a database opening would load for
// `collection`; else Error(invalid) saying why not.
CollectionInfo check_import(const Xapian::Database& db, std::uint64_t collection) {
  try {
    std::uint64_t version = version_of(db);
    std::string recorded = db.get_metadata(kCollectionKey);
    if (!recorded.empty() && parse_number(recorded) != collection) {
      throw refused("the file holds collection '" + recorded + "', not " +
                    std::to_string(collection));
    }
    std::string language = db.get_metadata(kLanguageKey);
    Xapian::doccount documents = db.get_doccount();
    if (language.empty() && documents > 0) throw refused("it records no language");
    check_documents(db);
    return CollectionInfo{version, documents,
                          "imported glass database, " + std::to_string(documents) +
                              " documents at version " + std::to_string(version) + ", language " +
                              language,
                          false};
  } catch (const Error&) {
    throw;
  } catch (const Xapian::Error& e) {
    throw refused(describe(e));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // Xapian reading a damaged structure can throw the standard library's
    // errors (std::length_error was seen); the checksum makes that a file
    // crafted to pass it.
    throw refused(e.what());
  }
}

void remove_folder(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw Error(Error::Kind::resource, "cannot delete " + path + ": " + ec.message());
}

// fsyncs `path`, a file or a folder.
void sync(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(Error::Kind::resource, "cannot open " + path + " to fsync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(Error::Kind::resource, "cannot fsync " + path);
}

// fsyncs every file of the folder `dir`, then the folder: Xapian's
// compaction leaves that to its caller.
void sync_folder(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) sync(entry.path().string());
  }
  if (ec) throw Error(Error::Kind::resource, "cannot list " + dir + ": " + ec.message());
  sync(dir);
}

// Moves the folder `staged` to `path`, replacing what is there: the old
// folder is renamed aside first and deleted last, so a crash leaves the new
// database, or none (the collection then opens empty: memosd rebuilds it).
void swap_in(const std::string& staged, const std::string& path) {
  std::string aside = path + ".old";
  remove_folder(aside);
  std::error_code ec;
  bool had = fs::exists(path, ec);
  if (had) fs::rename(path, aside, ec);
  if (ec) throw Error(Error::Kind::resource, "cannot move " + path + " aside: " + ec.message());
  fs::rename(staged, path, ec);
  if (ec) {
    std::error_code back;
    if (had) fs::rename(aside, path, back);
    throw Error(Error::Kind::resource, "cannot rename " + staged + ": " + ec.message());
  }
  sync(fs::path(path).parent_path().string());
  remove_folder(aside);
}

// Compacts `db` into a database folder beside `path` and swaps it in.
void install(Xapian::Database& db, const std::string& path) {
  std::string staged = path + ".import";
  remove_folder(staged);  // left by an import that crashed
  try {
    db.compact(staged);
    sync_folder(staged);
    swap_in(staged, path);
  } catch (const Xapian::Error& e) {
    std::error_code ec;
    fs::remove_all(staged, ec);
    throw Error(Error::Kind::resource, "writing " + staged + ": " + describe(e));
  } catch (const Error&) {
    std::error_code ec;
    fs::remove_all(staged, ec);
    throw;
  }
}

}  // namespace

void LexicalCollection::finish_interrupted_import(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path + ".import", ec);
  const std::string aside = path + ".old";
  if (!fs::exists(aside, ec)) return;
  if (fs::exists(path, ec)) {
    fs::remove_all(aside, ec);
  } else {
    fs::rename(aside, path, ec);
  }
}

CollectionInfo LexicalCollection::export_to(const std::string& file) {
  if (in_memory()) {
    std::lock_guard lock(mutex_);
    check_open();
    throw Error(Error::Kind::unsupported,
                "the collection is in memory (no state_dir): there is nothing to export");
  }
  std::lock_guard merging(merge_mutex_);
  std::uint64_t version = merge_locked(true);
  // merge_mutex_ keeps every other commit out until the file is written:
  // merges, saves and closing take it, and buffered deletions stay below
  // the count at which Glass commits on its own. So the last commit, the one
  // written, is this save's.
  Xapian::doccount documents = write_transfer_file(path_, file);
  return CollectionInfo{version, documents,
                        "exported " + path_ + ": " + std::to_string(documents) +
                            " documents at version " + std::to_string(version),
                        false};
}

CollectionInfo LexicalCollection::import_file(const std::string& file, const std::string& path,
                                              std::uint64_t collection) {
  Xapian::Database db = open_transfer_file(file);
  CollectionInfo info = check_import(db, collection);
  install(db, path);
  return info;
}

}  // namespace memos::lexical
