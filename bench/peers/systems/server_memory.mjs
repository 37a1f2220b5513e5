// server_memory.mjs — the reference MCP memory server
// (@modelcontextprotocol/server-memory): a knowledge graph kept in one JSON
// lines file, each memory one entity with the text as its observation.
// Its search_nodes keeps the entities whose name, type or an observation
// contains the query (lowercased), in file order.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { McpSession } from "./mcp_session.mjs";

const kServer = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-memory/dist/index.js", import.meta.url),
);
const kBatch = 1000; // entities per create_entities when loading

const entity = (item) => ({ name: `m${item.id}`, entityType: "memory", observations: [item.text] });
const idOf = (e) => Number(e.name.slice(1));

// The query's distinct words of 3 letters or more, lowercased: short words
// match inside almost every text as substrings.
const queryWords = (text) => [
  ...new Set(
    text
      .toLowerCase()
      .split(/[^a-z0-9\u0080-\uffff]+/)
      .filter((w) => w.length >= 3),
  ),
];

class Store {
  static async open(dir) {
    const env = { PATH: process.env.PATH, MEMORY_FILE_PATH: path.join(dir, "memory.jsonl") };
    return new Store(await McpSession.start(process.execPath, [kServer], env));
  }
  constructor(session) {
    this.session = session;
  }
  // One session for all writers: concurrent tools/call requests, each
  // writer awaiting its own.
  writer() {
    return (item) => this.session.call("create_entities", { entities: [entity(item)] });
  }
  async load(items) {
    for (let i = 0; i < items.length; i += kBatch) {
      const entities = items.slice(i, i + kBatch).map(entity);
      await this.session.call("create_entities", { entities });
    }
  }
  async count() {
    return (await this.session.call("read_graph", {})).entities.length;
  }
  async search(mode, query, k) {
    if (mode === "substring") {
      const found = await this.session.call("search_nodes", { query: query.text });
      return found.entities.slice(0, k).map(idOf);
    }
    // words: one search per word, entities ranked by how many words found
    // them, ties by first appearance: the best a client can do with this
    // server and no model.
    const votes = new Map();
    for (const word of queryWords(query.text)) {
      const found = await this.session.call("search_nodes", { query: word });
      for (const e of found.entities) votes.set(idOf(e), (votes.get(idOf(e)) ?? 0) + 1);
    }
    return [...votes.entries()]
      .sort((a, b) => b[1] - a[1]) // stable: ties keep first appearance
      .slice(0, k)
      .map(([id]) => id);
  }
  pids() {
    return [this.session.pid];
  }
  async close() {
    await this.session.close();
  }
}

export default {
  name: "server-memory",
  durability: "none: whole file rewritten per call (temporary file + rename), never fsynced",
  modes: ["substring", "words"],
  open: async (dir) => Store.open(dir),
};
