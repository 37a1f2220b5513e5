// memos-mcp end to end, driven by the official TypeScript MCP client
// (@modelcontextprotocol/sdk, pinned in package-lock.json) over stdio,
// against a running memosd. It starts no memosd: run_mcp_test.sh does.
//
// Environment:
//   MEMOS_SOCKET   the running memosd's socket
//   MEMOS_MCP      the memos-mcp script to test
//   MEMOS_LIBRARY, PYTHONPATH   passed on to memos-mcp (libmemos.so.1, the
//                  memos Python package), with PYTHONDONTWRITEBYTECODE and
//                  ASAN_OPTIONS when set
//   MEMOS_MCP_PRELOAD  LD_PRELOAD for memos-mcp alone (a sanitizer runtime)
//   MEMOS_MCP_CHAT 1 when that memosd has a model executor: then chat must
//                  be listed and answer; else it must not be listed
//
// Exits 0 with a one-line summary, else 1 with what failed.

import { spawn } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const TOOLS = ["add_memory", "search_memories", "get_memory", "update_memory", "delete_memory",
  "memory_history", "list_cubes", "create_cube"];

class TestFailure extends Error {}

function check(condition, what, detail) {
  if (!condition) {
    const shown = detail === undefined ? "" : `: ${JSON.stringify(detail).slice(0, 2000)}`;
    throw new TestFailure(`${what}${shown}`);
  }
  checks += 1;
}
let checks = 0;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`mcp_client_test: FAILED: ${name} is not set (run_mcp_test.sh sets it)`);
    process.exit(1);
  }
  return value;
}

const socket = requireEnv("MEMOS_SOCKET");
const withChat = process.env.MEMOS_MCP_CHAT === "1";
const server = requireEnv("MEMOS_MCP");
const serverEnv = { MEMOS_SOCKET: socket };
for (const name of ["MEMOS_LIBRARY", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "ASAN_OPTIONS"]) {
  if (process.env[name]) serverEnv[name] = process.env[name];
}
// A sanitizer build's libmemos.so needs its runtime preloaded into python3,
// and into nothing else: run_mcp_test.sh hands it over under this name.
if (process.env.MEMOS_MCP_PRELOAD) serverEnv.LD_PRELOAD = process.env.MEMOS_MCP_PRELOAD;

// A tool call that must succeed: its structured result (the SDK has
// already checked it against the tool's outputSchema).
async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  check(!result.isError, `${name} failed`, result.content);
  check(result.structuredContent !== undefined, `${name} gave no structuredContent`, result);
  const text = result.content?.[0]?.text;
  check(result.content?.[0]?.type === "text" &&
        JSON.stringify(JSON.parse(text)) === JSON.stringify(result.structuredContent),
        `${name}: the text content is not the structured content as JSON`, result);
  return result.structuredContent;
}

// A tool call that must be refused as a tool error: its message.
async function refused(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  check(result.isError === true, `${name}(${JSON.stringify(args)}) was not refused`, result);
  return result.content?.[0]?.text ?? "";
}

// A request that must fail with JSON-RPC error `code`.
async function rpcError(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof McpError && e.code === code, `${what}: not error ${code}`, String(e));
    return e;
  }
  throw new TestFailure(`${what}: succeeded, expected JSON-RPC error ${code}`);
}

async function checkTools(client) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const name of TOOLS) check(names.includes(name), `tools/list has no ${name}`, names);
  check(names.includes("chat") === withChat,
        withChat ? "chat is not listed, yet memosd has an executor"
                 : "chat is listed without an executor", names);
  for (const tool of tools) {
    check(tool.inputSchema?.type === "object", `${tool.name}: no object inputSchema`, tool);
    check(tool.outputSchema?.type === "object", `${tool.name}: no object outputSchema`, tool);
    check(typeof tool.description === "string" && tool.description.length > 20,
          `${tool.name}: no description`, tool);
  }
  const search = tools.find((t) => t.name === "search_memories").inputSchema;
  check(search.properties.cubes?.type === "array" && search.properties.mode?.enum?.length === 3,
        "search_memories: cubes or mode missing from its schema", search);
  check(["query", "cubes"].every((r) => search.required.includes(r)),
        "search_memories: query and cubes are not required", search);
  const add = tools.find((t) => t.name === "add_memory").inputSchema;
  check(["cube", "text"].every((r) => add.required.includes(r)) &&
        add.properties.metadata?.type === "object", "add_memory's schema", add);
  return tools.length;
}

async function checkMemories(client) {
  const cube = `mcp-test-${process.pid}`;
  const other = `${cube}-work`;
  const created = await call(client, "create_cube", { name: cube });
  check(created.name === cube && created.live_items === 0, "create_cube's result", created);
  await call(client, "create_cube", { name: other, retriever: "lexical" });

  const peanuts = await call(client, "add_memory", {
    cube, text: "Maya is allergic to peanuts; she carries an EpiPen.",
    tags: ["health"], metadata: { source: "chat" }, importance: 0.9 });
  check(/^[0-9A-Z]{13}$/.test(peanuts.id) && peanuts.version === 1, "add_memory's id", peanuts);
  check(peanuts.metadata.source === "chat" && peanuts.tags[0] === "health",
        "add_memory kept no tags or metadata", peanuts);
  await call(client, "add_memory", { cube, text: "Maya swims at the pool every Saturday." });
  await call(client, "add_memory", { cube, text: "Maya's brother Tiago lives in Porto.",
    valid_from: "2020-05-01" });
  const meeting = await call(client, "add_memory", { cube: other,
    text: "The team meets on Friday at ten." });

  let found = await call(client, "search_memories", { cubes: [cube],
    query: "what is Maya allergic to", k: 3 });
  check(found.hits.length > 0 && found.hits[0].memory.id === peanuts.id,
        "search_memories did not find the allergy first", found);
  found = await call(client, "search_memories", { cubes: [cube, other], query: "Friday team",
    mode: "lexical" });
  check(found.hits.some((h) => h.cube === other && h.memory.id === meeting.id),
        "a search of two cubes did not find the second cube's memory", found);
  found = await call(client, "search_memories", { cubes: [cube], query: "peanuts",
    tags: ["health"], valid_at: Date.now() });
  check(found.hits.length === 1 && found.hits[0].memory.id === peanuts.id,
        "the tag filter and valid_at as epoch ms", found);
  found = await call(client, "search_memories", { cubes: [cube], query: "Tiago Porto",
    valid_at: "2019-01-01" });
  check(found.hits.length === 0, "valid_at before the fact held still found it", found);
  found = await call(client, "search_memories", { cubes: [cube], query: "peanuts",
    recorded_since: "2999-01-01T00:00:00Z" });
  check(found.hits.length === 0, "recorded_since in the future still found memories", found);

  const updated = await call(client, "update_memory", { cube, id: peanuts.id,
    text: "Maya is allergic to peanuts and cashews." });
  check(updated.id === peanuts.id && updated.version === 2, "update_memory's version", updated);
  const history = await call(client, "memory_history", { cube, id: peanuts.id });
  check(history.versions.length === 2 && history.versions[0].version === 1 &&
        history.versions[1].text.includes("cashews"), "memory_history", history);
  const first = await call(client, "get_memory", { cube, id: peanuts.id, version: 1 });
  check(first.text.includes("EpiPen") && first.version === 1, "get_memory of version 1", first);
  const latest = await call(client, "get_memory", { cube, id: peanuts.id });
  check(latest.version === 2, "get_memory of the latest version", latest);

  const deleted = await call(client, "delete_memory", { cube, id: peanuts.id });
  check(deleted.deleted === true && deleted.id === peanuts.id, "delete_memory", deleted);
  found = await call(client, "search_memories", { cubes: [cube], query: "peanuts cashews" });
  check(!found.hits.some((h) => h.memory.id === peanuts.id),
        "a deleted memory is still found", found);

  if (withChat) {
    const answer = await call(client, "chat", { cube, prompt: "Where does Tiago live?", k: 2,
      max_tokens: 8 });
    check(answer.generated_tokens > 0 && answer.text.length > 0 && answer.memories.length > 0 &&
          answer.memories.every((id) => /^[0-9A-Z]{13}$/.test(id)), "chat's answer", answer);
  }

  const { cubes } = await call(client, "list_cubes", {});
  const listed = cubes.find((c) => c.name === cube);
  check(listed?.live_items === 2 && cubes.some((c) => c.name === other),
        "list_cubes", cubes);
  return { cube, live: listed.live_items };
}

async function checkResources(client, cube) {
  const { resources } = await client.listResources();
  const uri = `memos://cube/${cube}`;
  const entry = resources.find((r) => r.uri === uri);
  check(entry?.name === cube && entry.mimeType === "application/json" &&
        entry.description.includes("2 live"), "resources/list", resources);
  const read = await client.readResource({ uri });
  const body = JSON.parse(read.contents[0].text);
  check(read.contents[0].uri === uri && body.cube.name === cube && body.cube.live_items === 2 &&
        Array.isArray(body.snapshots), "resources/read", read);
  const { resourceTemplates } = await client.listResourceTemplates();
  check(resourceTemplates[0]?.uriTemplate === "memos://cube/{name}", "templates",
        resourceTemplates);
  await rpcError(client.readResource({ uri: "memos://cube/no-such-cube" }), -32002,
                 "reading a missing cube");
}

async function checkRefusals(client, cube) {
  let text = await refused(client, "get_memory", { cube: "no-such-cube", id: "038J5N9AMC000" });
  check(text.startsWith("notFound:") && text.includes("no-such-cube"),
        "a missing cube's refusal does not carry memosd's code and message", text);
  text = await refused(client, "add_memory", { cube });
  check(text.includes("invalid arguments") && text.includes("text"),
        "add_memory without text: the message does not say so", text);
  text = await refused(client, "get_memory", { cube, id: "not an id" });
  check(text.includes("not an item id"), "a malformed id", text);
  text = await refused(client, "search_memories", { cubes: [cube], query: "x", k: 0 });
  check(text.includes("k must be between"), "k out of range", text);
  text = await refused(client, "search_memories", { cubes: [cube], query: "x",
    valid_at: "yesterday-ish" });
  check(text.includes("valid_at"), "a malformed time", text);
  await rpcError(client.callTool({ name: "no_such_tool", arguments: {} }), -32602,
                 "an unknown tool");
}

// Outside the SDK: every line memos-mcp writes to stdout is a JSON-RPC 2.0
// message, even when its input is garbage, and garbage gets -32700.
async function checkRawStdout() {
  const child = spawn(server, ["--socket", socket], { env: { ...process.env, ...serverEnv },
    stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", () => {});
  const lines = [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18",
      capabilities: {}, clientInfo: { name: "raw", version: "0" } } },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    "this is not json",
    { jsonrpc: "2.0", id: 2, method: "no/such/method" },
    { jsonrpc: "2.0", id: 3, method: "ping" },
  ].map((m) => (typeof m === "string" ? m : JSON.stringify(m)));
  child.stdin.end(lines.join("\n") + "\n");
  const code = await new Promise((resolve) => child.on("close", resolve));
  check(code === 0, "memos-mcp did not exit 0 at the end of its input", code);
  const replies = out.split("\n").filter((l) => l !== "").map((l) => {
    let m;
    try { m = JSON.parse(l); } catch { throw new TestFailure(`stdout holds a non-JSON line: ${l}`); }
    check(m.jsonrpc === "2.0", "a stdout line is not JSON-RPC 2.0", l);
    return m;
  });
  check(replies.length === 4, "not one reply per request (and none to the notification)",
        replies);
  check(replies[0].result?.protocolVersion === "2025-06-18", "initialize's version", replies[0]);
  check(replies[1].id === null && replies[1].error?.code === -32700, "a parse error",
        replies[1]);
  check(replies[2].id === 2 && replies[2].error?.code === -32601, "an unknown method",
        replies[2]);
  check(replies[3].id === 3 && JSON.stringify(replies[3].result) === "{}", "ping", replies[3]);
}

async function main() {
  const transport = new StdioClientTransport({ command: server, args: ["--socket", socket],
    env: serverEnv, stderr: "pipe" });
  let log = "";
  transport.stderr?.on("data", (d) => { log += d; });
  // The stdio transport has no protocol version of its own; the client
  // hands it the negotiated one if it can take it.
  let negotiated = null;
  transport.setProtocolVersion = (v) => { negotiated = v; };
  const client = new Client({ name: "memos-mcp-test", version: "1.0.0" });
  // The SDK reports a stdout line that is not JSON-RPC here, and goes on.
  const transportErrors = [];
  client.onerror = (e) => transportErrors.push(String(e));
  try {
    await client.connect(transport);
    check(client.getServerVersion()?.name === "memos-mcp", "serverInfo",
          client.getServerVersion());
    check(negotiated === "2025-06-18", "the negotiated protocol version", negotiated);
    const caps = client.getServerCapabilities();
    check(caps?.tools && caps?.resources, "capabilities", caps);
    await client.ping();
    const tools = await checkTools(client);
    const { cube } = await checkMemories(client);
    await checkResources(client, cube);
    await checkRefusals(client, cube);
    check(transportErrors.length === 0, "the SDK saw stdout that is not JSON-RPC",
          transportErrors);
    await client.close();
    await checkRawStdout();
    console.log(`mcp_client_test: ok, ${checks} checks: ${tools} tools` +
                `${withChat ? " (chat answered)" : " (no chat without an executor)"}, memories, ` +
                "resources, refusals and stdout hygiene through @modelcontextprotocol/sdk");
  } catch (e) {
    console.error(`mcp_client_test: FAILED: ${e instanceof TestFailure ? e.message : e.stack}`);
    if (log) console.error(`--- memos-mcp's stderr\n${log}`);
    await client.close().catch(() => {});
    process.exit(1);
  }
}

await main();
