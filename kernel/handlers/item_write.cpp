#include "kernel/handlers/item_write.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <vector>

#include "kernel/index_set.h"
#include "kernel/quota.h"

namespace memos::kernel {
namespace {

// What a keyed write found of an earlier attempt with its key.
enum class Earlier { none, same_write };

// Looks up the outcome recorded under the request's idempotency key, in
// whichever transaction the caller reads (the worker's snapshot, then the
// writer's transaction: a key not seen in the first may have been recorded
// since). With the key unused, `*earlier` is none; used by this same write
// (same operation, same cube), same_write and `*first` holds the version
// the first attempt wrote. Errors: conflict (the key was used for another
// write), and the store's.
store::Status find_earlier(const store::ReadTxn& txn, const RequestContext& ctx, store::CubeId cube,
                           Earlier* earlier, store::Item* first) {
  *earlier = Earlier::none;
  store::IdempotencyRecord done;
  store::Status s = txn.find_idempotency(ctx.tenant, ctx.idempotency_key, &done);
  if (s.code == store::Errc::not_found) return {};
  if (!s.ok()) return s;
  if (done.operation != static_cast<std::uint16_t>(ctx.operation) || done.cube != cube) {
    return {store::Errc::conflict, "idempotency key was used for another write"};
  }
  *earlier = Earlier::same_write;
  return txn.get_item(done.cube, done.item, done.version, first);
}

// What the writer hands back.
struct Outcome {
  store::Cube cube;  // as the writer found it
  store::Item written;
  store::Item superseded;
  bool replayed = false;  // a retry answered from the key's record
};

// Answers with `item`, at once or, when the request asks to wait until
// searchable, once write `number` is indexed.
void answer(const Services& s, const RequestContext& ctx, const store::Item& item,
            std::uint64_t number) {
  if (!ctx.wait_searchable) return ctx.respond_item(item);
  s.indexes.when_indexed(number, [ctx, item] { ctx.respond_item(item); });
}

// Queues the write for the writer thread and answers it once committed.
void submit(const Services& s, const RequestContext& ctx, std::shared_ptr<ItemWrite> w) {
  auto out = std::make_shared<Outcome>();
  s.commits.submit({
      .apply = [ctx, w, out](store::WriteTxn& txn) -> store::Status {
        // The cube as it is now (it may have been removed, replaced or
        // unshared since the request came).
        store::Status st =
            find_cube_for(txn.reader(), w->ref, ctx.tenant, CubeUse::write, &out->cube);
        if (!st.ok()) return st;
        // The write, undone if it takes the cube's owner past a bound
        // (quota.h): a shared cube's memories are its owner's.
        auto apply = [&] {
          return within_quota(txn, w->ref.owner, *w->ref.owner_policy, [&] {
            return w->apply(txn, out->cube, &out->written, &out->superseded);
          });
        };
        if (ctx.idempotency_key.empty()) return apply();
        Earlier earlier;
        if (st = find_earlier(txn.reader(), ctx, out->cube.id, &earlier, &out->written); !st.ok())
          return st;
        if (earlier == Earlier::same_write) {
          out->replayed = true;
          return {};
        }
        if (st = apply(); !st.ok()) return st;
        const store::Item& written = out->written;
        return txn.put_idempotency(ctx.tenant, ctx.idempotency_key,
                                   {static_cast<std::uint16_t>(ctx.operation), out->cube.id,
                                    written.id, written.version, written.recorded_at_ms});
      },
      .done =
          [&s, ctx, out](const store::Status& st) {
            if (!st.ok()) return ctx.fail(Status::from(st));
            // A replayed outcome may be older than the item's head: leave the
            // index, which follows the head, alone (but a client that waits
            // for searchability waits for whatever is queued).
            std::uint64_t number = s.indexes.accepted();
            if (!out->replayed) {
              number = s.indexes.apply(out->cube, out->written,
                                       out->superseded.id != 0 ? &out->superseded : nullptr);
            }
            answer(s, ctx, out->written, number);
          },
      .shard = s.store.shard_of(w->ref.owner),
  });
}

}  // namespace

void commit_item_write(const Services& s, const RequestContext& ctx, ItemWrite write) {
  auto w = std::make_shared<ItemWrite>(std::move(write));
  // The common write goes from the loop straight to the writer, which finds
  // the cube and the item and checks the change against them: one thread
  // hop fewer than through a worker. A keyed write first looks for an
  // earlier attempt on a worker (a retry whose first attempt committed is
  // answered from the record, before any check judges the item as that
  // attempt left it: a retried remove would find it deleted), and a large
  // request is checked there too, so the loop never stalls on it.
  const bool shared = names_shared_cube(w->cube);
  if (!shared) w->ref = own_cube(ctx, w->cube);
  if (ctx.idempotency_key.empty() && w->check_bytes <= kLoopCheckBytes && !shared) {
    if (w->check) {
      if (Status st = w->check(); !st.ok()) return ctx.fail(st);
    }
    return submit(s, ctx, std::move(w));
  }
  s.run_on_worker([&s, ctx, w] {
    if (names_shared_cube(w->cube)) {
      if (Status st = resolve_cube(s.tenants, ctx, w->cube, &w->ref); !st.ok()) return ctx.fail(st);
    }
    if (!ctx.idempotency_key.empty()) {
      std::optional<store::ReadTxn> txn;
      store::Cube cube;
      store::Status st = s.store.begin_read(&txn);
      if (st.ok()) st = find_cube_for(*txn, w->ref, ctx.tenant, CubeUse::write, &cube);
      if (!st.ok()) return ctx.fail(Status::from(st));
      Earlier earlier;
      store::Item first;
      store::Status found = find_earlier(*txn, ctx, cube.id, &earlier, &first);
      if (!found.ok()) return ctx.fail(Status::from(found));
      if (earlier == Earlier::same_write) return answer(s, ctx, first, s.indexes.accepted());
    }
    if (w->check) {
      if (Status st = w->check(); !st.ok()) return ctx.fail(st);
    }
    submit(s, ctx, w);
  });
}

}  // namespace memos::kernel
