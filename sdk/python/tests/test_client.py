"""The memos package against a real memosd: typed results, every error as its
own exception with `retryable`, context managers, batches, archives as
iterators, snapshots, the daemon's reports, hostile arguments, asyncio."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import memos


def test_items_are_written_read_and_versioned(client):
    cube = client.cube_create("notes", retriever="lexical")
    assert isinstance(cube, memos.Cube)
    assert cube.name == "notes" and cube.default_retriever == "lexical"
    item = client.add("notes", "Caroline flies to Lisbon in May", tags=["travel"],
                      meta={"source": "pytest"}, importance=0.5)
    assert isinstance(item, memos.Item)
    assert (item.version, item.text, item.tags, item.meta) == (
        1, "Caroline flies to Lisbon in May", ["travel"], {"source": "pytest"})
    assert item.tier == "plaintext" and item.state == "active" and item.deleted is False
    assert item.param is None
    assert memos.parse_id(memos.format_id(item.id)) == item.id

    updated = client.update("notes", item.id, "Caroline flies to Porto in June", tags=[])
    assert updated.version == 2 and updated.tags == [] and updated.meta == {"source": "pytest"}
    assert client.get("notes", item.id, version=1).text == "Caroline flies to Lisbon in May"
    diff = client.diff("notes", item.id, 1)
    assert diff.text_changed and diff.tags_removed == ["travel"] and diff.to.version == 2
    assert client.set_state("notes", item.id, "archived").state == "archived"
    tombstone = client.remove("notes", item.id)
    assert tombstone.deleted
    with pytest.raises(memos.NotFound):
        client.get("notes", item.id)
    assert not client.rollback("notes", item.id, 2).deleted
    history = client.history("notes", item.id)
    assert [v.version for v in history] == [1, 2, 3, 4, 5]
    assert dataclasses.asdict(history[0])["text"] == "Caroline flies to Lisbon in May"


def test_search_filters_modes_and_routes(client):
    client.cube_create("s")
    client.add_batch("s", [
        {"text": "the blue heron nests by the river", "tags": ["birds"]},
        {"text": "the red fox hunts by the river", "tags": ["mammals"]},
        "tax forms are due in April",
    ])
    for mode in ("dense", "lexical", "hybrid"):
        hits = client.search("s", "river", mode=mode, k=5)
        assert hits and all(isinstance(h, memos.Hit) for h in hits)
    birds = client.search("s", "river", tags=["birds"], explain=True)
    assert [h.item.text for h in birds] == ["the blue heron nests by the river"]
    assert birds[0].cube == "s" and birds[0].ranks
    routed = client.search_routed("s", "where does the heron nest", budget="mid",
                                  route="retrieve=high")
    assert routed.hits and routed.context
    assert routed.modules[0].module == "retrieve" and routed.modules[0].tier == "high"
    with pytest.raises(memos.BadRequest, match="retrieve=ultra"):
        client.search_routed("s", "q", route="retrieve=ultra")
    with pytest.raises(memos.BadRequest, match="mode"):
        client.search("s", "q", mode="fuzzy")


def test_errors_are_classes_carrying_the_message_and_retryable(client, daemon):
    with pytest.raises(memos.NotFound) as e:
        client.get("nosuch", 1)
    assert e.value.code == "notFound" and "nosuch" in e.value.message
    assert e.value.retryable is False and isinstance(e.value, memos.MemosError)
    client.cube_create("e")
    with pytest.raises(memos.AlreadyExists):
        client.cube_create("e")
    with pytest.raises(memos.ConnectFailed) as e:
        memos.Client.connect(str(daemon.folder / "no.sock"))
    assert e.value.retryable
    # Hostile arguments: refused here or by memosd, nothing written.
    with pytest.raises(memos.BadRequest, match="NUL"):
        client.add("e", "a\0b")
    with pytest.raises(memos.BadRequest):
        client.add("e", "")
    with pytest.raises(memos.TooLarge):
        client.add("e", "x" * (8 << 20))
    with pytest.raises(memos.BadRequest, match="tags"):
        client.add("e", "text", tags="not-a-list")
    with pytest.raises(memos.BadRequest, match="text"):
        client.add("e", 42)
    with pytest.raises(memos.BadRequest):
        memos.parse_id("not an id")
    assert client.cube_show("e").live_items == 0
    with pytest.raises(memos.Unavailable):
        client.chat("e", "hello")


def test_a_batch_reports_its_first_failure_after_every_reply(client):
    client.cube_create("b")
    with pytest.raises(memos.BadRequest):
        client.add_batch("b", ["one", "", "three"])
    assert client.cube_show("b").live_items == 2
    items = client.add_batch("b", [f"memory {i}" for i in range(100)])
    assert [i.text for i in items] == [f"memory {i}" for i in range(100)]


def test_archives_stream_as_iterators_and_snapshots_diff(client):
    client.cube_create("a")
    client.add("a", "first memory")
    snap = client.snapshot_create("a", "before")
    assert snap.tag == "before" and snap.live_items == 1
    client.add("a", "second memory")
    changes = client.snapshot_diff("a", "before")
    assert [(c.kind, c.text) for c in changes] == [("added", "second memory")]
    assert [s.tag for s in client.snapshot_list("a")] == ["before"]
    chunks = list(client.export_cube("a"))
    assert chunks and all(isinstance(c, bytes) for c in chunks)
    copy = client.import_cube(iter(chunks), name="copy")
    assert copy.name == "copy" and copy.live_items == 2
    archive = b"".join(chunks)
    with pytest.raises(memos.BadRequest):
        client.import_cube([archive[: len(archive) // 2]], name="broken")
    with pytest.raises(memos.NotFound):
        client.cube_show("broken")
    # An iterator that fails stops the import, and its error is raised.
    def failing():
        yield archive[:10]
        raise OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        client.import_cube(failing(), name="failed")
    # Stopping an export early is fine, and the client goes on.
    next(iter(client.export_cube("a")))
    assert client.cube_show("a").live_items == 2


def test_the_daemon_tenants_and_scheduler_report(client):
    status = client.status()
    assert status.pid > 0 and status.plugins and isinstance(status.plugins[0], memos.PluginInfo)
    plugins = client.plugin_list()
    assert client.plugin_info(plugins[0].name).name == plugins[0].name
    assert client.policy_show().text
    client.cube_create("t")
    item = client.add("t", "a memory to explain")
    usage = client.tenant_usage()
    assert (usage.cubes, usage.items) == (1, 1)
    assert client.kv_stats().model == ""
    assert client.kv_list("t") == []
    assert client.explain("t", item.id).item.id == item.id
    assert client.sched_run().at_ms > 0
    assert client.sched_status().passes >= 1
    cluster = client.cluster_status()
    assert isinstance(cluster, memos.ClusterStatus) and not cluster.enabled and cluster.nodes == []
    assert cluster.bucket == memos.BucketStatus(name="", blobs=0, bytes=0, note="")
    assert cluster.compaction == memos.CompactionStatus(
        snapshot_node="", snapshot_time_ms=0, snapshot_bytes=0, floor=[], note="")
    assert cluster.node_policies == [] and cluster.policies_differ is False
    assert cluster.log == memos.LogStatus(stream="", leader="", replicas=[], note="",
                                          previous_leader="")
    with pytest.raises(memos.Conflict, match="one node"):
        client.cluster_step_down()
    assert isinstance(client.sched_log(), list)
    assert client.job_list() == []
    assert memos.default_socket()


def test_a_closed_client_and_pipelined_pendings(daemon):
    with memos.Client.connect(daemon.socket) as c:
        pending = [c._send("memos_status_get", ()) for _ in range(20)]
        assert all(isinstance(p.wait(), memos.Status) for p in pending)
        assert c.in_flight == 0
    with pytest.raises(memos.BadRequest, match="closed"):
        c.status()


def test_max_staleness_is_checked_and_a_single_memosd_serves_it(daemon):
    for bad in (-1, 1 << 32):
        with pytest.raises(memos.BadRequest, match="max_staleness_ms"):
            memos.Client.connect(daemon.socket, max_staleness_ms=bad)
    with memos.Client.connect(daemon.socket, max_staleness_ms=250) as c:
        assert isinstance(c.cube_list(), list)


def test_asyncio_pipelines_on_one_connection(daemon):
    async def main():
        async with await memos.AsyncClient.open(daemon.socket, wait_searchable=True) as c:
            await c.cube_create("async")
            items = await asyncio.gather(*(c.add("async", f"async memory {i}") for i in range(50)))
            assert sorted(i.text for i in items) == sorted(f"async memory {i}" for i in range(50))
            hits = await c.search("async", "async memory 7", mode="lexical", k=3)
            assert hits
            with pytest.raises(memos.NotFound):
                await c.get("async", 1)
            archive = await c.export_cube("async")
            assert (await c.import_cube([archive], "async-copy")).live_items == 50
    asyncio.run(main())
