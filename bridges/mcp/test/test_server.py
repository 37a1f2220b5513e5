"""memos-mcp's protocol layer without memosd: JSON-RPC framing, hostile
input, the MCP methods, tool arguments and errors, resources, over a fake
memos package (fake_memos.py). Runs under unittest or pytest:

    python3 -m unittest discover -s bridges/mcp/test -p 'test_*.py'
    python3 -m pytest bridges/mcp/test/test_server.py
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import sys
import unittest
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # bridges/mcp: memos_mcp

import fake_memos  # noqa: E402
from memos_mcp import arguments, server, session, timestamps  # noqa: E402
from memos_mcp.daemon import Daemon  # noqa: E402

# The server's log is its stderr; here it would only hide the results.
logging.getLogger("memos-mcp").addHandler(logging.NullHandler())

TOOL_NAMES = ["add_memory", "search_memories", "get_memory", "update_memory", "delete_memory",
              "memory_history", "list_cubes", "create_cube"]


class Harness(unittest.TestCase):
    """A server over a fresh fake memosd, fed lines as stdin would."""

    def setUp(self) -> None:
        self.memosd = fake_memos.Memosd()
        fake_memos.Client.memosd = self.memosd
        fake_memos.Client.refuse = None
        self.daemon = Daemon(fake_memos, "/fake/memosd.sock")
        self.session = session.Session(self.daemon)
        self.server = server.Server(self.session.methods(), self.session.notifications())
        self.next_id = 0

    def line(self, line: bytes | str) -> dict[str, Any] | None:
        return self.server.handle_line(line.encode() if isinstance(line, str) else line)

    def send(self, message: Any) -> dict[str, Any] | None:
        return self.line(json.dumps(message))

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        reply = self.send(message)
        assert reply is not None
        self.assertEqual(reply["id"], self.next_id)
        return reply

    def result(self, method: str, params: Any = None) -> dict[str, Any]:
        reply = self.request(method, params)
        self.assertIn("result", reply, reply)
        return reply["result"]

    def error_code(self, reply: dict[str, Any] | None) -> int:
        assert reply is not None
        self.assertNotIn("result", reply)
        return reply["error"]["code"]

    def tool(self, name: str, /, **args: Any) -> dict[str, Any]:
        return self.result("tools/call", {"name": name, "arguments": args})

    def tool_ok(self, name: str, /, **args: Any) -> dict[str, Any]:
        result = self.tool(name, **args)
        self.assertNotIn("isError", result, result)
        self.assertEqual(json.loads(result["content"][0]["text"]), result["structuredContent"])
        return result["structuredContent"]

    def tool_error(self, name: str, /, **args: Any) -> str:
        result = self.tool(name, **args)
        self.assertIs(result.get("isError"), True, result)
        self.assertNotIn("structuredContent", result)
        return result["content"][0]["text"]


class FramingTest(Harness):
    def test_unparseable_lines_are_parse_errors_with_a_null_id(self) -> None:
        for line in [b"not json", b'{"jsonrpc": "2.0", "id": 1,', b"\xff\xfe{}",
                     b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":NaN}}',
                     b"[" * 100000, b'{"a":' * 100000, b"1" * 5000]:
            reply = self.line(line)
            self.assertEqual(self.error_code(reply), server.PARSE_ERROR, line[:40])
            self.assertIsNone(reply["id"])

    def test_messages_that_are_not_requests(self) -> None:
        for message in [[{"jsonrpc": "2.0", "id": 1, "method": "ping"}], [], 42, "ping", None,
                        {}, {"jsonrpc": "2.0", "params": {}}]:
            reply = self.send(message)
            self.assertEqual(self.error_code(reply), server.INVALID_REQUEST, message)
            self.assertIsNone(reply["id"])

    def test_ids_must_be_strings_or_integers(self) -> None:
        for bad in [None, 1.5, True, {"a": 1}, [1]]:
            reply = self.send({"jsonrpc": "2.0", "id": bad, "method": "ping"})
            self.assertEqual(self.error_code(reply), server.INVALID_REQUEST, bad)
            self.assertIsNone(reply["id"])
        for good in [0, -7, 2**70, "", "a\nb", "\u00e9"]:
            reply = self.send({"jsonrpc": "2.0", "id": good, "method": "ping"})
            self.assertEqual(reply, {"jsonrpc": "2.0", "id": good, "result": {}})

    def test_malformed_requests_keep_their_id(self) -> None:
        reply = self.send({"id": 5, "method": "ping"})
        self.assertEqual((self.error_code(reply), reply["id"]), (server.INVALID_REQUEST, 5))
        reply = self.send({"jsonrpc": "1.0", "id": 6, "method": "ping"})
        self.assertEqual((self.error_code(reply), reply["id"]), (server.INVALID_REQUEST, 6))
        reply = self.send({"jsonrpc": "2.0", "id": 7, "method": 12})
        self.assertEqual((self.error_code(reply), reply["id"]), (server.INVALID_REQUEST, 7))
        reply = self.send({"jsonrpc": "2.0", "id": "x", "method": "ping", "params": [1]})
        self.assertEqual((self.error_code(reply), reply["id"]), (server.INVALID_PARAMS, "x"))

    def test_unknown_methods(self) -> None:
        for method in ["nope", "", "tools/delete", "logging/setLevel", "prompts/list"]:
            reply = self.request(method)
            self.assertEqual(self.error_code(reply), server.METHOD_NOT_FOUND, method)
            self.assertIn(method, reply["error"]["message"])

    def test_notifications_are_never_answered(self) -> None:
        for message in [{"jsonrpc": "2.0", "method": "notifications/initialized"},
                        {"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": 3}},
                        {"jsonrpc": "2.0", "method": "notifications/initialized", "params": [1]},
                        {"jsonrpc": "2.0", "method": "no/such/notification"},
                        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": 1}},
                        {"method": "ping"}]:
            self.assertIsNone(self.send(message), message)
        self.assertEqual(self.memosd.calls, [])

    def test_responses_and_blank_lines_get_no_reply(self) -> None:
        self.assertIsNone(self.send({"jsonrpc": "2.0", "id": 1, "result": {}}))
        self.assertIsNone(self.send({"jsonrpc": "2.0", "id": 2, "error": {"code": 1}}))
        self.assertIsNone(self.line(b""))
        self.assertIsNone(self.line(b"   \t"))

    def test_a_failing_handler_costs_one_error(self) -> None:
        def broken(params: dict[str, Any]) -> dict[str, Any]:
            raise KeyError("boom")
        s = server.Server({"broken": broken, "ping": lambda p: {}}, {})
        reply = s.handle_line(b'{"jsonrpc":"2.0","id":1,"method":"broken"}')
        self.assertEqual(self.error_code(reply), server.INTERNAL_ERROR)
        reply = s.handle_line(b'{"jsonrpc":"2.0","id":2,"method":"ping"}')
        self.assertEqual(reply["result"], {})

    def test_stream(self) -> None:
        # CRLF line ends, a blank line, an id with a newline and one with a
        # lone surrogate: every reply is one line of JSON, in order.
        stdin = io.BytesIO(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\r\n\n'
                           b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
                           b'{"jsonrpc":"2.0","id":"a\\nb","method":"ping"}\n'
                           b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}\n'
                           b'garbage\n'
                           b'{"jsonrpc":"2.0","id":3,"method":"ping"}')  # no final newline
        stdout = io.BytesIO()
        self.server.serve(stdin, stdout)
        lines = stdout.getvalue().split(b"\n")
        self.assertEqual(lines[-1], b"")
        replies = [json.loads(line) for line in lines[:-1]]
        self.assertEqual([r["id"] for r in replies], [1, "a\nb", "\ud800", None, 3])
        self.assertEqual(replies[3]["error"]["code"], server.PARSE_ERROR)

    def test_oversized_lines_are_refused_unread(self) -> None:
        s = server.Server({"ping": lambda p: {}}, {}, max_line_bytes=1000)
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping",
                          "params": {"x": "y" * 100000}}).encode()
        stdin = io.BytesIO(big + b"\n" + b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n' + big)
        stdout = io.BytesIO()
        s.serve(stdin, stdout)
        replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
        self.assertEqual(len(replies), 3)
        self.assertEqual((replies[0]["id"], replies[0]["error"]["code"]),
                         (None, server.INVALID_REQUEST))
        self.assertIn("1000 bytes", replies[0]["error"]["message"])
        self.assertEqual(replies[1], {"jsonrpc": "2.0", "id": 2, "result": {}})
        self.assertEqual(replies[2]["error"]["code"], server.INVALID_REQUEST)

    def test_random_hostile_messages(self) -> None:
        # Valid requests with a random part replaced by a random value, and
        # random bytes: each line gets at most one reply, always a JSON-RPC
        # message, and the server serves on.
        rng = random.Random(20250618)
        values: list[Any] = [None, True, -1, 0, 2**64, 1e308, -0.5, "", "\u0000", "\ud800",
                             "x" * 5000, [], [None], {}, {"": {}}, [[[[[]]]]], "2024-06-01",
                             "0000000000001", "memos://cube/", ["maya", 5]]
        templates = [
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "add_memory", "arguments": {"cube": "maya", "text": "t"}}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "search_memories",
                        "arguments": {"cubes": ["maya"], "query": "q", "k": 3,
                                      "valid_at": "2024-01-01", "tags": ["a"]}}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
             "params": {"name": "update_memory",
                        "arguments": {"cube": "maya", "id": "0000000000001", "text": "t",
                                      "metadata": {"k": "v"}}}},
            {"jsonrpc": "2.0", "id": 4, "method": "resources/read",
             "params": {"uri": "memos://cube/maya"}},
            {"jsonrpc": "2.0", "id": 5, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}}},
        ]
        self.tool_ok("create_cube", name="maya")

        def mutate(node: Any) -> Any:
            if isinstance(node, dict) and node and rng.random() < 0.7:
                key = rng.choice(list(node))
                return dict(node, **{key: mutate(node[key])})
            if isinstance(node, list) and node and rng.random() < 0.7:
                i = rng.randrange(len(node))
                return node[:i] + [mutate(node[i])] + node[i + 1:]
            return rng.choice(values)

        for _ in range(3000):
            if rng.random() < 0.1:
                line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            else:
                line = json.dumps(mutate(rng.choice(templates))).encode()
            reply = self.server.handle_line(line)
            if reply is not None:
                self.assertEqual(reply["jsonrpc"], "2.0")
                self.assertTrue(("result" in reply) != ("error" in reply), reply)
                # An internal error is a handler that raised: a bug.
                self.assertNotEqual(reply.get("error", {}).get("code"), server.INTERNAL_ERROR,
                                    (line[:300], reply))
                self.assertNotIn(b"\n", server.encode(reply)[:-1])
        self.assertEqual(self.result("ping"), {})

    def test_unencodable_results_become_errors(self) -> None:
        s = server.Server({"nan": lambda p: {"x": float("nan")}}, {})
        stdout = io.BytesIO()
        s.serve(io.BytesIO(b'{"jsonrpc":"2.0","id":1,"method":"nan"}\n'), stdout)
        reply = json.loads(stdout.getvalue())
        self.assertEqual((reply["id"], reply["error"]["code"]), (1, server.INTERNAL_ERROR))


class LifecycleTest(Harness):
    def initialize(self, version: Any) -> dict[str, Any]:
        return self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                           "clientInfo": {"name": "t", "version": "1"}})

    def test_initialize(self) -> None:
        result = self.initialize("2025-06-18")["result"]
        self.assertEqual(result["protocolVersion"], "2025-06-18")
        self.assertEqual(result["serverInfo"]["name"], "memos-mcp")
        self.assertIn("version", result["serverInfo"])
        self.assertEqual(set(result["capabilities"]), {"tools", "resources"})
        # memosd is not reached before a tool needs it.
        self.assertEqual(self.memosd.connects, 0)

    def test_other_versions_are_answered_with_ours(self) -> None:
        for version in ["2024-11-05", "2025-11-25", "1999-01-01", ""]:
            self.assertEqual(self.initialize(version)["result"]["protocolVersion"], "2025-06-18")

    def test_bad_initialize_params(self) -> None:
        for params in [{}, {"protocolVersion": 20250618},
                       {"protocolVersion": "2025-06-18", "capabilities": []},
                       {"protocolVersion": "2025-06-18", "clientInfo": "me"}]:
            self.assertEqual(self.error_code(self.request("initialize", params)),
                             server.INVALID_PARAMS, params)

    def test_ping(self) -> None:
        self.assertEqual(self.result("ping"), {})
        self.assertEqual(self.result("ping", {"_meta": {"progressToken": 1}}), {})


class ToolListTest(Harness):
    def test_tools_without_an_executor(self) -> None:
        tools = self.result("tools/list")["tools"]
        self.assertEqual([t["name"] for t in tools], TOOL_NAMES)
        for t in tools:
            self.assertEqual(t["inputSchema"]["type"], "object")
            self.assertIs(t["inputSchema"]["additionalProperties"], False)
            self.assertEqual(t["outputSchema"]["type"], "object")
            schema = t["inputSchema"]
            self.assertTrue(set(schema["required"]) <= set(schema["properties"]))
            self.assertIn("readOnlyHint", t["annotations"])

    def test_chat_is_listed_with_an_executor(self) -> None:
        self.memosd.model = "tiny"
        names = [t["name"] for t in self.result("tools/list")["tools"]]
        self.assertEqual(names, TOOL_NAMES + ["chat"])

    def test_tools_are_listed_while_memosd_is_down(self) -> None:
        fake_memos.Client.refuse = fake_memos.ConnectFailed("no memosd at /fake/memosd.sock")
        names = [t["name"] for t in self.result("tools/list")["tools"]]
        self.assertEqual(names, TOOL_NAMES)

    def test_cursors_are_refused(self) -> None:
        for method in ["tools/list", "resources/list", "resources/templates/list"]:
            reply = self.request(method, {"cursor": "abc"})
            self.assertEqual(self.error_code(reply), server.INVALID_PARAMS, method)


class ToolCallTest(Harness):
    def setUp(self) -> None:
        super().setUp()
        self.tool_ok("create_cube", name="maya")

    def add(self, text: str, **more: Any) -> dict[str, Any]:
        return self.tool_ok("add_memory", cube="maya", text=text, **more)

    def test_memories_round_trip(self) -> None:
        item = self.add("Maya is allergic to peanuts", tags=["health"],
                        metadata={"source": "chat"}, importance=0.5, valid_from="2024-06-01")
        self.assertEqual(len(item["id"]), 13)
        self.assertEqual(item["metadata"], {"source": "chat"})
        self.assertEqual(item["valid_from"], "2024-06-01T00:00:00.000Z")
        self.assertIsNone(item["valid_to"])
        self.add("Maya swims on Saturdays")
        hits = self.tool_ok("search_memories", cubes=["maya"], query="allergic peanuts")["hits"]
        self.assertEqual(hits[0]["memory"]["id"], item["id"])
        self.assertEqual(hits[0]["cube"], "maya")
        updated = self.tool_ok("update_memory", cube="maya", id=item["id"], text="peanuts, cashews")
        self.assertEqual((updated["version"], updated["tags"]), (2, ["health"]))
        versions = self.tool_ok("memory_history", cube="maya", id=item["id"])["versions"]
        self.assertEqual([v["version"] for v in versions], [1, 2])
        first = self.tool_ok("get_memory", cube="maya", id=item["id"], version=1)
        self.assertEqual(first["text"], "Maya is allergic to peanuts")
        gone = self.tool_ok("delete_memory", cube="maya", id=item["id"])
        self.assertIs(gone["deleted"], True)
        cubes = self.tool_ok("list_cubes")["cubes"]
        self.assertEqual([(c["name"], c["live_items"]) for c in cubes], [("maya", 1)])

    def test_search_options_reach_memosd(self) -> None:
        self.tool_ok("create_cube", name="work", retriever="lexical")
        self.tool_ok("search_memories", cubes=["maya", "work"], query="q", k=3, mode="dense",
                     tags=["a"], recorded_since="2024-01-01T00:00:00Z",
                     recorded_until=1717200000000, valid_at="2024-06-01T01:00:00+01:00")
        name, args, kwargs = self.memosd.calls[-1]
        self.assertEqual((name, args), ("search", ("maya", "q")))
        self.assertEqual(kwargs, {"k": 3, "mode": "dense", "tags": ["a"],
                                  "recorded_since_ms": 1704067200000,
                                  "recorded_until_ms": 1717200000000,
                                  "as_of_ms": 1717200000000, "more_cubes": ["work"],
                                  "fresh": True})

    def test_update_replaces_tags_and_metadata_only_when_given(self) -> None:
        item = self.add("x", tags=["t"], metadata={"k": "v"})
        self.tool_ok("update_memory", cube="maya", id=item["id"], text="y")
        self.assertEqual(self.memosd.calls[-1][2], {"tags": None, "meta": None})
        cleared = self.tool_ok("update_memory", cube="maya", id=item["id"], text="z", tags=[],
                               metadata={})
        self.assertEqual((cleared["tags"], cleared["metadata"]), ([], {}))

    def test_invalid_arguments_are_tool_errors(self) -> None:
        item_id = self.add("x")["id"]
        calls_before = len(self.memosd.calls)
        cases = [
            ("add_memory", {"cube": "maya"}, "missing required argument: text"),
            ("add_memory", {"cube": "maya", "text": "   "}, "text must not be empty"),
            ("add_memory", {"cube": "maya", "text": 5}, "text must be a string"),
            ("add_memory", {"cube": "maya", "text": "x", "tags": "a"}, "tags must be an array"),
            ("add_memory", {"cube": "maya", "text": "x", "metadata": {"a": 1}}, "metadata"),
            ("add_memory", {"cube": "maya", "text": "x", "importance": 2}, "importance"),
            ("add_memory", {"cube": "maya", "text": "x", "importance": True}, "importance"),
            ("add_memory", {"cube": "maya", "text": "a\u0000b"}, "NUL"),
            ("add_memory", {"cube": "maya", "text": "\ud800"}, "surrogate"),
            ("add_memory", {"cube": "maya", "text": "x", "valid_from": "soon"}, "valid_from"),
            ("add_memory", {"cube": "maya", "text": "x", "valid_from": 0}, "valid_from"),
            ("add_memory", {"cube": "maya", "text": "x", "colour": "red"}, "unknown argument"),
            ("add_memory", {"cube": "maya", "text": "x", "supersedes": "zz"}, "not an item id"),
            ("search_memories", {"cubes": [], "query": "q"}, "cubes"),
            ("search_memories", {"cubes": "maya", "query": "q"}, "cubes"),
            ("search_memories", {"cubes": ["maya"]}, "query"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "k": 0}, "k must be between"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "k": 2.5}, "k must be an int"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "k": 10**30}, "k must be"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "mode": "fuzzy"}, "mode"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "valid_at": [1]}, "valid_at"),
            ("search_memories", {"cubes": ["maya"], "query": "q", "valid_at": "1969-12-31"},
             "valid_at"),
            ("get_memory", {"cube": "maya", "id": item_id, "version": -1}, "version"),
            ("get_memory", {"cube": "maya"}, "missing required argument: id"),
            ("get_memory", {"cube": "maya", "id": 12}, "id must be a string"),
            ("create_cube", {"name": "x", "retriever": "grep"}, "retriever"),
        ]
        for name, args, expected in cases:
            with self.subTest(name=name, args=args):
                text = self.result("tools/call", {"name": name, "arguments": args})
                self.assertIs(text.get("isError"), True, text)
                self.assertIn("invalid arguments", text["content"][0]["text"])
                self.assertIn(expected, text["content"][0]["text"])
        # None of them reached memosd.
        self.assertEqual(len(self.memosd.calls), calls_before)

    def test_memosd_refusals_are_tool_errors(self) -> None:
        text = self.tool_error("get_memory", cube="nope", id="0000000000001")
        self.assertEqual(text, "notFound: no cube named 'nope'")
        self.assertEqual(self.tool_error("create_cube", name="maya"),
                         "alreadyExists: cube 'maya' exists")
        self.memosd.fail_next = fake_memos.RateLimited("too many writes", retryable=True,
                                                       retry_after_ms=250)
        self.assertEqual(self.tool_error("add_memory", cube="maya", text="x"),
                         "rateLimited: too many writes (retry after 250 ms)")

    def test_chat(self) -> None:
        item = self.add("Maya drinks green tea")
        text = self.tool_error("chat", cube="maya", prompt="tea")
        self.assertTrue(text.startswith("unavailable:"), text)
        self.memosd.model = "tiny"
        reply = self.tool_ok("chat", cube="maya", prompt="green tea", k=2, max_tokens=16)
        self.assertEqual(reply["memories"], [item["id"]])
        self.assertEqual(reply["generated_tokens"], 2)

    def test_malformed_calls_are_protocol_errors(self) -> None:
        for params in [{"name": "no_such_tool", "arguments": {}}, {"arguments": {}},
                       {"name": ["add_memory"]}, {"name": "list_cubes", "arguments": [1]},
                       {"name": "list_cubes", "arguments": "x"}]:
            reply = self.request("tools/call", params)
            self.assertEqual(self.error_code(reply), server.INVALID_PARAMS, params)
        # Arguments left out are no arguments.
        result = self.result("tools/call", {"name": "list_cubes"})
        self.assertIn("cubes", result["structuredContent"])

    def test_a_lost_connection_is_made_again(self) -> None:
        # A write is not retried (it may have been done): the error is the
        # model's to see, and the next call connects again.
        self.memosd.fail_next = fake_memos.ConnectionLost("memosd closed the connection")
        text = self.tool_error("add_memory", cube="maya", text="x")
        self.assertEqual(text, "connectionLost: memosd closed the connection")
        connects = self.memosd.connects
        self.tool_ok("add_memory", cube="maya", text="x")
        self.assertEqual(self.memosd.connects, connects + 1)
        # A read is retried at once on a new connection.
        self.memosd.fail_next = fake_memos.ConnectionLost("memosd closed the connection")
        self.tool_ok("list_cubes")
        self.assertEqual(self.memosd.connects, connects + 2)

    def test_memosd_down(self) -> None:
        self.daemon.close()
        fake_memos.Client.refuse = fake_memos.ConnectFailed("no memosd at /fake/memosd.sock")
        self.assertEqual(self.tool_error("list_cubes"),
                         "connectFailed: no memosd at /fake/memosd.sock")
        fake_memos.Client.refuse = None
        self.tool_ok("list_cubes")


class ResourceTest(Harness):
    def setUp(self) -> None:
        super().setUp()
        self.tool_ok("create_cube", name="maya")
        self.tool_ok("create_cube", name="a/b c")
        self.tool_ok("add_memory", cube="maya", text="x")

    def test_list_and_read(self) -> None:
        resources = self.result("resources/list")["resources"]
        self.assertEqual([r["uri"] for r in resources],
                         ["memos://cube/maya", "memos://cube/a%2Fb%20c"])
        self.assertEqual(resources[0]["mimeType"], "application/json")
        self.assertIn("1 live", resources[0]["description"])
        for resource in resources:
            contents = self.result("resources/read", {"uri": resource["uri"]})["contents"]
            body = json.loads(contents[0]["text"])
            self.assertEqual(body["cube"]["name"], resource["name"])
            self.assertEqual(body["snapshots"][0]["tag"], "before")
        templates = self.result("resources/templates/list")["resourceTemplates"]
        self.assertEqual(templates[0]["uriTemplate"], "memos://cube/{name}")

    def test_bad_reads(self) -> None:
        for uri in ["memos://cube/nope", "memos://cube/", "file:///etc/passwd", ""]:
            reply = self.request("resources/read", {"uri": uri})
            self.assertEqual(self.error_code(reply), server.RESOURCE_NOT_FOUND, uri)
            self.assertEqual(reply["error"]["data"], {"uri": uri})
        for params in [{}, {"uri": 5}]:
            reply = self.request("resources/read", params)
            self.assertEqual(self.error_code(reply), server.INVALID_PARAMS, params)

    def test_memosd_down(self) -> None:
        self.daemon.close()
        fake_memos.Client.refuse = fake_memos.ConnectFailed("no memosd")
        reply = self.request("resources/list")
        self.assertEqual(self.error_code(reply), server.INTERNAL_ERROR)
        self.assertIn("connectFailed: no memosd", reply["error"]["message"])


class TimestampTest(unittest.TestCase):
    def test_parse(self) -> None:
        parse = timestamps.parse_time
        self.assertEqual(parse("2024-06-01"), 1717200000000)
        self.assertEqual(parse("2024-06-01T00:00:00Z"), 1717200000000)
        self.assertEqual(parse("2024-06-01T01:00:00+01:00"), 1717200000000)
        self.assertEqual(parse("2024-06-01T00:00:00.123"), 1717200000123)
        self.assertEqual(parse(1717200000000), 1717200000000)
        for bad in ["", "June", "2024-13-01", 0, -5, True, 1.5, None, {}, "0001-01-01",
                    10**20]:
            with self.assertRaises(timestamps.BadTime, msg=repr(bad)):
                parse(bad)

    def test_format(self) -> None:
        self.assertEqual(timestamps.format_time(1717200000123), "2024-06-01T00:00:00.123Z")
        self.assertIsNone(timestamps.format_time(0))

    def test_arguments_name_the_bad_one(self) -> None:
        with self.assertRaisesRegex(arguments.InvalidArguments, "unknown argument.*zz"):
            arguments.Arguments({"zz": 1}, ["a"])


if __name__ == "__main__":
    unittest.main()
