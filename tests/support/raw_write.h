// raw_write.h — a write straight to a closed store's LMDB files, behind the
// store's back: how tests plant rows an older memosd, another tool or a
// damaged disk left, to see what the store makes of them.
#pragma once

#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <string>

namespace memos::testing {

// Runs `fn(txn, dbi)` on a raw LMDB write transaction of the store in `dir`
// (closed), on the named table, and commits it.
template <class Fn>
void raw_write(const std::string& dir, const char* table, Fn&& fn) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 64);
  BOOST_REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0600) == 0);
  MDB_txn* t = nullptr;
  MDB_dbi dbi;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &t) == 0);
  BOOST_REQUIRE(mdb_dbi_open(t, table, 0, &dbi) == 0);
  fn(t, dbi);
  BOOST_REQUIRE(mdb_txn_commit(t) == 0);
  mdb_env_close(env);
}

// One row put that way.
inline void raw_put(const std::string& dir, const char* table, std::string key, std::string value) {
  raw_write(dir, table, [&](MDB_txn* t, MDB_dbi dbi) {
    MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
    BOOST_REQUIRE(mdb_put(t, dbi, &k, &v, 0) == 0);
  });
}

}  // namespace memos::testing
