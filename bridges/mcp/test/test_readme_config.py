"""The README's MCP host configuration, started as a host would start it:
its command (memos-mcp, here the source tree's) with its arguments, then
initialize and tools/list over stdio. memos-mcp connects to memosd only when
a call needs it, so none runs here."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3]


def _readme_config() -> dict:
    readme = (SOURCE / "README.md").read_text()
    section = readme[readme.index("### MCP"):]
    block = re.search(r"^```json\n(.*?)^```$", section, re.S | re.M)
    assert block, "the README's MCP section has no ```json block"
    return json.loads(block.group(1))


def test_the_readme_configuration_starts_a_working_server():
    server = _readme_config()["mcpServers"]["memos"]
    assert server["command"] == "memos-mcp"
    command = [str(SOURCE / "bridges" / "mcp" / "memos-mcp"), *server["args"]]
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "readme-test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    run = subprocess.run(command, input="".join(json.dumps(r) + "\n" for r in requests),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    replies = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["id"] for r in replies] == [1, 2], run.stdout
    assert replies[0]["result"]["protocolVersion"] == "2025-06-18"
    assert replies[0]["result"]["serverInfo"]["name"] == "memos-mcp"
    tools = {t["name"] for t in replies[1]["result"]["tools"]}
    assert {"add_memory", "search_memories", "get_memory", "update_memory", "delete_memory",
            "memory_history", "list_cubes", "create_cube"} <= tools
