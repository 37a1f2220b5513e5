// item_write.h — the one path every item write takes (add, update, remove,
// setState, rollback):
//
//   loop:    the handler checks what it can without the store and builds
//            an ItemWrite; `check` runs (field limits, UTF-8);
//   writer:  the cube is found (by name, as it is now), the idempotency key
//            looked up, `apply` writes the version (checking it against the
//            item as it is) and the key's record in the same transaction;
//   after:   the commit is durable: the change is queued for the indexer
//            thread (IndexSet::apply, which embeds and indexes it behind
//            the reply) and the reply goes out, or, when the request asks
//            to wait until searchable, once the indexer has it.
//
// A keyed write, one whose `check` reads more than kLoopCheckBytes, and one
// to another tenant's cube (its owner is looked up through NSS) first go
// to a worker: the key's earlier attempt is looked up there (a
// retry of a committed write is answered from its record) and the check
// runs off the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kernel/cube_access.h"
#include "kernel/handlers/request_context.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel {

// Requests whose check reads more than this are checked on a worker.
inline constexpr std::size_t kLoopCheckBytes = 64 * 1024;

struct ItemWrite {
  std::string cube;  // as the request names it: "notes", or "alice/notes" (cube_access.h)
  // The cube resolved to its owner, by commit_item_write (on a worker when
  // it names another tenant's cube). The write must be shared with the
  // peer for writing, and counts against the owner's quotas.
  CubeRef ref;
  // Checks the request's own fields (no store). Empty: nothing to check.
  // Errors: any; they are the reply.
  std::function<Status()> check;
  // About how many bytes `check` reads (the text, tags, metadata).
  std::size_t check_bytes = 0;
  // Writer thread, inside the transaction: checks the change against the
  // item as it is and writes it, leaving the written version in `written`
  // and, for an add that supersedes another fact, that fact's new version
  // in `superseded`. Errors: the store's (not_found: the item, or that
  // version, does not exist; conflict: it is frozen, ...).
  std::function<store::Status(store::WriteTxn&, const store::Cube&, store::Item* written,
                              store::Item* superseded)>
      apply;
};

// Runs `write` for the request in `ctx` (its tenant, idempotency key and
// operation) and answers it: with the item as written (or, for a retry of a
// keyed write, as the first attempt wrote it), or with the error. Loop
// thread.
void commit_item_write(const Services& services, const RequestContext& ctx, ItemWrite write);

}  // namespace memos::kernel
