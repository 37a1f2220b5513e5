// item_write.h — the one path every item write takes (add, update, remove,
// setState, rollback):
//
//   loop:    the handler checks what it can without the store and builds
//            an ItemWrite;
//   worker:  a read snapshot finds the cube, answers a retried keyed write
//            from its record, runs `prepare` (checks against the item as
//            it is);
//   writer:  the cube is found again (it may have gone), the key checked
//            again, `apply` writes the version and the key's record in the
//            same transaction;
//   after:   the commit is durable: the change is queued for the indexer
//            thread (IndexSet::apply, which embeds and indexes it behind
//            the reply) and the reply goes out, or, when the request asks
//            to wait until searchable, once the indexer has it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kernel/handlers/request_context.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel {

struct ItemWrite {
  std::string cube;
  // Worker thread, in a read snapshot: checks the change against the item
  // as it is. Errors: any; they are the reply.
  std::function<Status(const store::ReadTxn&, const store::Cube&)> prepare;
  // Writer thread, inside the transaction: writes the change, leaving the
  // written version in `written` and, for an add that supersedes another
  // fact, that fact's new version in `superseded`. Errors: the store's.
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
