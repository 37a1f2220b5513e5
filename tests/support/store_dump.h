// store_dump.h — every row of a closed store, read straight from LMDB's
// files, and the first difference between two such dumps: how replication
// tests check that a follower holds exactly its leader's rows.
#pragma once

#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <map>
#include <string>

namespace memos::testing {

// table name -> key -> row, read straight from LMDB's files.
using Rows = std::map<std::string, std::map<std::string, std::string>>;

// Every row of every named table of the closed store in `dir`.
inline Rows dump(const std::string& dir) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 64);
  BOOST_REQUIRE(mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0600) == 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0);
  auto rows_of = [&](MDB_dbi dbi) {
    std::map<std::string, std::string> rows;
    MDB_cursor* cursor = nullptr;
    BOOST_REQUIRE(mdb_cursor_open(txn, dbi, &cursor) == 0);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      rows[std::string(static_cast<char*>(k.mv_data), k.mv_size)] =
          std::string(static_cast<char*>(v.mv_data), v.mv_size);
    }
    mdb_cursor_close(cursor);
    return rows;
  };
  MDB_dbi main_db;
  BOOST_REQUIRE(mdb_dbi_open(txn, nullptr, 0, &main_db) == 0);
  Rows all;
  for (const auto& [name, ignored] : rows_of(main_db)) {
    MDB_dbi dbi;
    BOOST_REQUIRE(mdb_dbi_open(txn, name.c_str(), 0, &dbi) == 0);
    all[name] = rows_of(dbi);
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return all;
}

// The first difference between two dumps, or "" if they are equal.
inline std::string difference(const Rows& a, const Rows& b) {
  for (const auto& [table, rows] : a) {
    auto other = b.find(table);
    if (other == b.end()) return "table " + table + " missing";
    for (const auto& [key, row] : rows) {
      auto it = other->second.find(key);
      if (it == other->second.end()) return table + ": a row is missing";
      if (it->second != row) return table + ": a row differs";
    }
    if (rows.size() != other->second.size()) return table + ": extra rows";
  }
  return a.size() == b.size() ? "" : "extra tables";
}

}  // namespace memos::testing
