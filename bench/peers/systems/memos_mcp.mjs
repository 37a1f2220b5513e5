// memos_mcp.mjs — memosd through MCP: a memosd of this build on a socket
// and data folder of the store's own, and bridges/mcp/memos-mcp over stdio
// in front of it, driven by the same MCP client as the reference server.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { McpSession } from "./mcp_session.mjs";
import { sleep } from "../measure.mjs";

const kCube = "peers";
const kLoadInFlight = 64;
const kStartTimeoutMs = 20000;

const canConnect = (socket) =>
  new Promise((resolve) => {
    const probe = net.connect(socket, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on("error", () => resolve(false));
  });

// memosd with no user configuration, once its socket accepts connections.
async function startMemosd(binary, dir) {
  const socket = path.join(dir, "memosd.sock");
  const configHome = path.join(dir, "no-user-config");
  fs.mkdirSync(configHome, { recursive: true });
  const child = spawn(binary, ["--socket", socket, "--data", path.join(dir, "data")], {
    env: { ...process.env, XDG_CONFIG_HOME: configHome },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + kStartTimeoutMs;
  while (!(await canConnect(socket))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const { code, signal } = await exited;
      throw new Error(`memosd exited with ${code ?? signal} before it answered:\n${log}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      const limit = `${kStartTimeoutMs / 1000} s`;
      throw new Error(`memosd did not answer on ${socket} within ${limit}:\n${log}`);
    }
    await sleep(20);
  }
  return { child, socket, exited, log: () => log };
}

class Store {
  static async open(dir, options) {
    const memosd = await startMemosd(options.memosd, dir);
    const env = {
      PATH: process.env.PATH,
      MEMOS_SOCKET: memosd.socket,
      MEMOS_LIBRARY: options.memosLibrary,
      PYTHONPATH: options.pythonpath,
      PYTHONDONTWRITEBYTECODE: "1",
    };
    let session = null;
    try {
      session = await McpSession.start(options.memosMcp, ["--socket", memosd.socket], env);
      await session.call("create_cube", { name: kCube });
      return new Store(memosd, session);
    } catch (e) {
      // No store to close: stop what was started.
      await session?.close().catch(() => {});
      memosd.child.kill("SIGKILL");
      throw e;
    }
  }
  constructor(memosd, session) {
    this.memosd = memosd;
    this.session = session;
    this.ids = new Map(); // memosd's id -> the item's
    this.refused = 0;
  }
  async add(item) {
    try {
      const added = await this.session.call("add_memory", { cube: kCube, text: item.text });
      this.ids.set(added.id, item.id);
    } catch (e) {
      // memosd keeps one live copy of a text per cube (memos-mcp offers no
      // allow_duplicate): the text is stored, under the first item's id.
      if (!(e.toolError && e.message.includes("already holds this exact text"))) throw e;
      ++this.refused;
    }
  }
  writer() {
    return (item) => this.add(item);
  }
  async load(items) {
    let next = 0;
    const lane = async () => {
      while (next < items.length) await this.add(items[next++]);
    };
    await Promise.all(Array.from({ length: kLoadInFlight }, lane));
  }
  async search(mode, query, k) {
    const found = await this.session.call("search_memories", {
      query: query.text,
      cubes: [kCube],
      k,
      mode,
    });
    return found.hits.map((hit) => this.ids.get(hit.memory.id));
  }
  async count() {
    const { cubes } = await this.session.call("list_cubes", {});
    return cubes.find((cube) => cube.name === kCube).live_items;
  }
  pids() {
    return [this.memosd.child.pid, this.session.pid];
  }
  async close() {
    await this.session.close();
    this.memosd.child.kill("SIGTERM");
    const { code, signal } = await this.memosd.exited;
    if (code !== 0) throw new Error(`memosd exited with ${code ?? signal}:\n${this.memosd.log()}`);
  }
}

export default {
  name: "memos-mcp",
  durability: "memosd: fsynced before the answer (LMDB, group commit)",
  modes: ["dense", "lexical", "hybrid"],
  open: async (dir, options) => Store.open(dir, options),
};
