// Item requests: add, get, update, remove, history, setState, rollback,
// diff. Writes go through commit_item_write() (item_write.h); reads run on
// a worker in one read snapshot, except a get, which runs on the loop while
// that is cheap (inline_reads.h).
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ipc/wire_vocabulary.h"
#include "kernel/access_log.h"
#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/handlers/item_write.h"
#include "kernel/inline_reads.h"
#include "kernel/policy_use.h"
#include "kernel/quota.h"
#include "kernel/request_checks.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/scheduler/scheduler.h"
#include "memcube/item_diff.h"
#include "memos/vocabulary.h"

namespace memos::kernel {
namespace {

// Every field a client may set on an item, against the configured limits.
Status check_fields(const Services& s, const std::string* text,
                    const std::vector<std::string>* tags,
                    const std::vector<store::MetaEntry>* meta) {
  Status st;
  if (text) st = check_text(*text, s.config.store);
  if (st.ok() && tags) st = check_tags(*tags, s.config.store);
  if (st.ok() && meta) st = check_meta(*meta, s.config.store);
  return st;
}

// What check_fields() reads, to decide where it runs (item_write.h).
std::size_t field_bytes(const std::string* text, const std::vector<std::string>* tags,
                        const std::vector<store::MetaEntry>* meta) {
  std::size_t bytes = text ? text->size() : 0;
  if (tags) {
    for (const auto& t : *tags) bytes += t.size();
  }
  if (meta) {
    for (const auto& m : *meta) bytes += m.key.size() + m.value.size();
  }
  return bytes;
}

void add(const Services& s, const RequestContext& ctx, wire::AddItem::Reader args) {
  auto draft = std::make_shared<store::ItemDraft>();
  draft->text = exact(args.getText());
  draft->tags = copy_texts(args.getTags());
  draft->meta = copy_meta(args.getMeta());
  draft->importance = args.getImportance();
  draft->valid_from_ms = args.getValidFromMs();
  draft->valid_to_ms = args.getValidToMs();
  draft->provenance.writer = ctx.tenant;
  draft->provenance.session = exact(args.getSessionId());
  for (auto source : args.getSources()) draft->provenance.sources.push_back(source);
  std::int64_t ttl_ms = args.getTtlMs();
  // Without a TTL of its own, a memory gets its tenant's default, if any.
  if (ttl_ms == 0 && ctx.policy->retention_ttl_s) {
    ttl_ms = static_cast<std::int64_t>(*ctx.policy->retention_ttl_s) * 1000;
  }
  const std::uint64_t supersedes = args.getSupersedes();
  const bool allow_duplicate = args.getAllowDuplicate();
  if (Status st = check_not_blank(draft->text); !st.ok()) return ctx.fail(st);
  if (Status st = check_item_bytes(*ctx.policy, draft->text.size()); !st.ok()) return ctx.fail(st);
  if (Status st = check_tier(*ctx.policy, store::Tier::plaintext); !st.ok()) return ctx.fail(st);
  if (args.getTier() != wire::Tier::PLAINTEXT) {
    return ctx.fail(Status::bad_request("only plaintext items can be added so far"));
  }
  if (!(draft->importance >= 0 && draft->importance <= 1)) {
    return ctx.fail(Status::bad_request("importance must be between 0 and 1"));
  }
  if (ttl_ms < 0) return ctx.fail(Status::bad_request("ttl must not be negative"));
  if (draft->valid_from_ms < 0 || draft->valid_to_ms < 0) {
    return ctx.fail(Status::bad_request("valid times must not be negative"));
  }
  if (draft->provenance.sources.size() > s.config.store.max_tags)
    return ctx.fail(Status::too_large("source list longer than max_tags"));
  if (Status st = check_session(draft->provenance.session, s.config.store); !st.ok())
    return ctx.fail(st);
  ItemWrite w;
  w.cube = exact(args.getCube());
  w.check = [&s, draft] { return check_fields(s, &draft->text, &draft->tags, &draft->meta); };
  w.check_bytes = field_bytes(&draft->text, &draft->tags, &draft->meta);
  w.apply = [draft, ttl_ms, supersedes, allow_duplicate](store::WriteTxn& txn,
                                                         const store::Cube& cube, store::Item* out,
                                                         store::Item* superseded) -> store::Status {
    // In the write transaction, which sees the adds committed before it and
    // those earlier in its own commit group: two adds of one text refuse
    // the second, however they were pipelined.
    if (!allow_duplicate) {
      store::ItemId existing = 0;
      store::Status found = txn.reader().find_live_text(cube.id, draft->text, &existing);
      if (found.ok()) {
        return {store::Errc::already_exists, "cube '" + cube.name +
                                                 "' already holds this exact text as item " +
                                                 format_id(existing)};
      }
      if (found.code != store::Errc::not_found) return found;
    }
    std::int64_t now = now_ms();
    // Saturates: a TTL past the end of time never expires (now + ttl would
    // wrap negative and expire the item at once).
    const std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
    draft->expires_at_ms = ttl_ms <= 0 ? 0 : ttl_ms > kNever - now ? kNever : now + ttl_ms;
    return txn.add_item(cube.id, *draft, supersedes, now, out, superseded);
  };
  commit_item_write(s, ctx, std::move(w));
}

void update(const Services& s, const RequestContext& ctx, wire::UpdateItem::Reader args) {
  auto patch = std::make_shared<store::ItemPatch>();
  const std::uint64_t item = args.getItemId();
  if (item == 0) return ctx.fail(Status::bad_request("item id 0 does not exist"));
  patch->text = exact(args.getText());
  if (args.getReplaceTags()) patch->tags = copy_texts(args.getTags());
  if (args.getReplaceMeta()) patch->meta = copy_meta(args.getMeta());
  patch->writer = ctx.tenant;
  patch->session = exact(args.getSessionId());
  if (Status st = check_not_blank(*patch->text); !st.ok()) return ctx.fail(st);
  if (Status st = check_item_bytes(*ctx.policy, patch->text->size()); !st.ok()) {
    return ctx.fail(st);
  }
  if (Status st = check_tier(*ctx.policy, store::Tier::plaintext); !st.ok()) return ctx.fail(st);
  // One check of the session for every write (update once stored any).
  if (Status st = check_session(patch->session, s.config.store); !st.ok()) return ctx.fail(st);
  ItemWrite w;
  w.cube = exact(args.getCube());
  const auto* tags = patch->tags ? &*patch->tags : nullptr;
  const auto* meta = patch->meta ? &*patch->meta : nullptr;
  w.check = [&s, patch, tags, meta] { return check_fields(s, &*patch->text, tags, meta); };
  w.check_bytes = field_bytes(&*patch->text, tags, meta);
  w.apply = [patch, item](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                          store::Item*) {
    return txn.update_item(cube.id, item, *patch, now_ms(), out);
  };
  commit_item_write(s, ctx, std::move(w));
}

void remove(const Services& s, const RequestContext& ctx, wire::ItemRef::Reader args) {
  const std::uint64_t item = args.getItemId();
  const std::uint32_t tenant = ctx.tenant;
  ItemWrite w;
  w.cube = exact(args.getCube());
  w.apply = [tenant, item](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                           store::Item*) {
    return txn.remove_item(cube.id, item, tenant, now_ms(), out);
  };
  commit_item_write(s, ctx, std::move(w));
}

void set_state(const Services& s, const RequestContext& ctx, wire::SetState::Reader args) {
  const std::uint64_t item = args.getItemId();
  const std::uint32_t tenant = ctx.tenant;
  // Deleting is remove's; an unknown state is a newer client's.
  const std::optional<State> state = ipc::from_wire(args.getState());
  if (!state || *state == State::deleted) {
    return ctx.fail(Status::bad_request("the state must be active, archived or frozen"));
  }
  const store::State to = to_store(*state);
  ItemWrite w;
  w.cube = exact(args.getCube());
  w.apply = [tenant, item, to](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                               store::Item*) {
    return txn.set_state(cube.id, item, to, tenant, now_ms(), out);
  };
  commit_item_write(s, ctx, std::move(w));
}

void rollback(const Services& s, const RequestContext& ctx, wire::Rollback::Reader args) {
  const std::uint64_t item = args.getItemId();
  const std::uint32_t version = args.getVersion();
  const std::uint32_t tenant = ctx.tenant;
  if (version == 0) return ctx.fail(Status::bad_request("versions are counted from 1"));
  ItemWrite w;
  w.cube = exact(args.getCube());
  w.apply = [tenant, item, version](store::WriteTxn& txn, const store::Cube& cube, store::Item* out,
                                    store::Item*) {
    return txn.rollback_item(cube.id, item, version, tenant, now_ms(), out);
  };
  commit_item_write(s, ctx, std::move(w));
}

// One item: a single read, served on the loop when that is cheap
// (inline_reads.h), else on a worker.
void get(const Services& s, const RequestContext& request, wire::GetItem::Reader args) {
  auto read = [&s, cube_name = exact(args.getCube()), item = args.getItemId(),
               version = args.getVersion()](const RequestContext& ctx) {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    store::Item found;
    store::AccessStats stats;
    store::Status st = txn->get_item(cube.id, item, version, &found);
    if (st.ok()) st = txn->access_stats(cube.id, item, &stats);
    txn.reset();  // before the reply: the snapshot is no longer needed
    if (!st.ok()) return ctx.fail(Status::from(st));
    const bool owner = cube.owner == ctx.tenant;
    scheduler::record_use(s.access, scheduler::settings_for(s.config, *ctx.policy), owner, cube.id,
                          item, scheduler::Recall::read, now_ms());
    // A memory the scheduler archived comes back when its owner reads it
    // (on the node that writes: a cluster's follower leaves it to the owner).
    if (owner && version == 0 && found.state == store::State::archived &&
        found.provenance.session == scheduler::kSchedulerSession && s.writable().ok()) {
      s.scheduler.restore(s, cube, item);
    }
    ctx.respond([&](wire::Response::Builder r) {
      auto b = r.initItem();
      set_item(b, found);
      set_access(b, stats);
    });
  };
  auto defer = [&] { s.run_on_worker([read, request] { read(request); }); };
  // Another tenant's cube is found through NSS (its owner's name): never
  // on the loop.
  if (!s.inline_reads || names_shared_cube(exact_view(args.getCube()))) return defer();
  s.inline_reads->run([&] { read(request); }, defer);
}

// Every version of one item, oldest first: what diff reads.
// Errors: not_found, and the store's.
Status read_versions(const Services& s, const RequestContext& ctx, const std::string& cube_name,
                     std::uint64_t item, std::vector<store::Item>* versions) {
  std::optional<store::ReadTxn> txn;
  store::Cube cube;
  if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok()) return st;
  return Status::from(txn->history(cube.id, item, versions));
}

// Versions are read only up to what one reply carries, so a long history
// of large texts costs the daemon one reply's worth of memory, paged or not.
void history(const Services& s, const RequestContext& ctx, wire::ItemRef::Reader args) {
  std::string cube_name = exact(args.getCube());
  const std::uint64_t item = args.getItemId();
  const bool paged = args.getPaged();
  const std::uint32_t after = paged ? args.getPageAfter() : 0;
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name), item, paged, after] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    std::vector<store::Item> versions;
    bool more = false;
    if (store::Status st =
            txn->history_page(cube.id, item, after, ctx.reply_budget(), &versions, &more);
        !st.ok()) {
      return ctx.fail(Status::from(st));
    }
    if (!paged && more) {
      return ctx.fail(
          Status::too_large("the history is larger than one reply (the message limit is " +
                            std::to_string(ctx.max_reply_bytes) + " bytes): ask for it in pages"));
    }
    ctx.respond([&](wire::Response::Builder r) {
      auto fill = [&](auto list) {
        for (unsigned i = 0; i < versions.size(); ++i) set_item(list[i], versions[i]);
      };
      if (!paged) return fill(r.initHistory(static_cast<unsigned>(versions.size())));
      auto page = r.initHistoryPage();
      fill(page.initVersions(static_cast<unsigned>(versions.size())));
      page.setMore(more);
    });
  });
}

void set_diff(wire::ItemDiff::Builder d, const store::Item& a, const store::Item& b) {
  const store::ItemDiff diff = store::diff_items(a, b);
  set_item(d.initFrom(), a);
  set_item(d.initTo(), b);
  d.setTextChanged(diff.text_changed);
  auto added = d.initTagsAdded(static_cast<unsigned>(diff.tags_added.size()));
  for (unsigned i = 0; i < added.size(); ++i) added.set(i, text(diff.tags_added[i]));
  auto removed = d.initTagsRemoved(static_cast<unsigned>(diff.tags_removed.size()));
  for (unsigned i = 0; i < removed.size(); ++i) removed.set(i, text(diff.tags_removed[i]));
  auto meta = d.initMetaChanges(static_cast<unsigned>(diff.meta_changes.size()));
  for (unsigned i = 0; i < meta.size(); ++i) {
    const store::MetaChange& c = diff.meta_changes[i];
    meta[i].setKey(text(c.key));
    meta[i].setHadBefore(c.before.has_value());
    meta[i].setHasAfter(c.after.has_value());
    if (c.before) meta[i].setBefore(text(*c.before));
    if (c.after) meta[i].setAfter(text(*c.after));
  }
  d.setStateChanged(diff.state_changed);
  d.setValidityChanged(diff.validity_changed);
}

void diff(const Services& s, const RequestContext& ctx, wire::DiffVersions::Reader args) {
  std::string cube_name = exact(args.getCube());
  const std::uint64_t item = args.getItemId();
  const std::uint32_t from = args.getFromVersion(), to = args.getToVersion();
  if (from == 0) return ctx.fail(Status::bad_request("versions are counted from 1"));
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name), item, from, to] {
    std::vector<store::Item> versions;
    if (Status st = read_versions(s, ctx, cube_name, item, &versions); !st.ok())
      return ctx.fail(st);
    std::uint32_t last = to == 0 ? versions.back().version : to;
    if (from > versions.size() || last > versions.size()) {
      return ctx.fail(
          Status::not_found("item has " + std::to_string(versions.size()) + " versions"));
    }
    ctx.respond([&](wire::Response::Builder r) {
      set_diff(r.initDiff(), versions[from - 1], versions[last - 1]);
    });
  });
}

}  // namespace

void add_item_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::ADD, [&s](const RequestContext& c, R::Reader r) { add(s, c, r.getAdd()); });
  table.add(R::GET, [&s](const RequestContext& c, R::Reader r) { get(s, c, r.getGet()); });
  table.add(R::UPDATE, [&s](const RequestContext& c, R::Reader r) { update(s, c, r.getUpdate()); });
  table.add(R::REMOVE, [&s](const RequestContext& c, R::Reader r) { remove(s, c, r.getRemove()); });
  table.add(R::HISTORY,
            [&s](const RequestContext& c, R::Reader r) { history(s, c, r.getHistory()); });
  table.add(R::SET_STATE,
            [&s](const RequestContext& c, R::Reader r) { set_state(s, c, r.getSetState()); });
  table.add(R::ROLLBACK,
            [&s](const RequestContext& c, R::Reader r) { rollback(s, c, r.getRollback()); });
  table.add(R::DIFF, [&s](const RequestContext& c, R::Reader r) { diff(s, c, r.getDiff()); });
}

}  // namespace memos::kernel
