// Snapshot requests: snapshotCreate, snapshotList, snapshotDiff.
#include <optional>
#include <string>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/request_checks.h"

namespace memos::kernel {
namespace {

void create(const Services& s, const RequestContext& ctx, wire::SnapshotRef::Reader args) {
  std::string cube_name = exact(args.getCube());
  std::string tag = exact(args.getTag());
  if (Status st = check_snapshot_tag(tag); !st.ok()) return ctx.fail(st);
  if (Status st = check_owners_cube(cube_name, "make its snapshots"); !st.ok()) return ctx.fail(st);
  auto snap = std::make_shared<store::Snapshot>();
  const std::uint32_t tenant = ctx.tenant;
  s.commits.submit({
      .apply =
          [=](store::WriteTxn& txn) {
            store::Cube cube;
            store::Status st = find_client_cube(txn.reader(), tenant, cube_name, &cube);
            if (!st.ok()) return st;
            return txn.create_snapshot(cube.id, tag, tenant, now_ms(), snap.get());
          },
      .done =
          [ctx, snap](const store::Status& st) {
            if (!st.ok()) return ctx.fail(Status::from(st));
            ctx.respond([&](wire::Response::Builder r) { set_snapshot(r.initSnapshot(), *snap); });
          },
      .shard = s.store.shard_of(tenant),
  });
}

void list(const Services& s, const RequestContext& ctx, wire::CubeRef::Reader args) {
  s.run_on_worker([&s, ctx, cube_name = exact(args.getName())] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    std::vector<store::Snapshot> snaps;
    if (store::Status st = txn->list_snapshots(cube.id, &snaps); !st.ok())
      return ctx.fail(Status::from(st));
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initSnapshots(static_cast<unsigned>(snaps.size()));
      for (unsigned i = 0; i < snaps.size(); ++i) set_snapshot(list[i], snaps[i]);
    });
  });
}

// The items that differ between a snapshot and another one, or the head.
void diff(const Services& s, const RequestContext& ctx, wire::SnapshotDiff::Reader args) {
  std::string cube_name = exact(args.getCube());
  std::string from_tag = exact(args.getFromTag());
  std::string to_tag = exact(args.getToTag());  // empty: the cube's head
  if (from_tag.empty()) return ctx.fail(Status::bad_request("name the snapshot to diff from"));
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name), from_tag = std::move(from_tag),
                   to_tag = std::move(to_tag)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    store::Snapshot from, to;
    store::Status st = txn->find_snapshot(cube.id, from_tag, &from);
    if (st.ok() && !to_tag.empty()) st = txn->find_snapshot(cube.id, to_tag, &to);
    if (to_tag.empty()) to.cube_version = cube.head_version;
    std::vector<store::SnapshotChange> changes;
    if (st.ok())
      st = txn->diff_cube_versions(cube.id, from.cube_version, to.cube_version, &changes);
    if (!st.ok()) return ctx.fail(Status::from(st));
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initChanges(static_cast<unsigned>(changes.size()));
      for (unsigned i = 0; i < changes.size(); ++i) {
        list[i].setItemId(changes[i].item);
        list[i].setKind(static_cast<wire::ChangeKind>(changes[i].kind));
        list[i].setFromVersion(changes[i].from_version);
        list[i].setToVersion(changes[i].to_version);
        list[i].setText(text(changes[i].text));
      }
    });
  });
}

}  // namespace

void add_snapshot_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::SNAPSHOT_CREATE,
            [&s](const RequestContext& c, R::Reader r) { create(s, c, r.getSnapshotCreate()); });
  table.add(R::SNAPSHOT_LIST,
            [&s](const RequestContext& c, R::Reader r) { list(s, c, r.getSnapshotList()); });
  table.add(R::SNAPSHOT_DIFF,
            [&s](const RequestContext& c, R::Reader r) { diff(s, c, r.getSnapshotDiff()); });
}

}  // namespace memos::kernel
