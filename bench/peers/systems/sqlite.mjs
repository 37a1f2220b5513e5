// sqlite.mjs — SQLite FTS5 through better-sqlite3: lexical search ranked by
// bm25(), one table of texts; each writer a worker thread of its own.
import path from "node:path";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { openDatabase } from "./sqlite_schema.mjs";

// The query's words, each quoted and joined with OR (as bench-locomo-recall
// queries FTS5): everything but ASCII letters, digits and bytes of UTF-8
// sequences separates words, so no FTS5 syntax survives.
export function ftsQuery(text) {
  const words = text.split(/[^A-Za-z0-9\u0080-\uffff]+/).filter((w) => w.length > 0);
  return words.map((w) => `"${w}"`).join(" OR ");
}

class Writer {
  constructor(file) {
    this.worker = new Worker(new URL("./sqlite_writer.mjs", import.meta.url), {
      workerData: { file },
    });
    this.pending = null;
    this.worker.on("message", (reply) => {
      const { resolve, reject } = this.pending;
      this.pending = null;
      if (reply.ok) resolve();
      else reject(new Error(reply.error));
    });
    this.worker.on("error", (e) => this.pending?.reject(e));
  }
  add(item) {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ id: item.id, text: item.text });
    });
  }
}

class Store {
  constructor(dir, writers) {
    this.file = path.join(dir, "memory.db");
    this.db = openDatabase(Database, this.file);
    this.writers = Array.from({ length: writers }, () => new Writer(this.file));
    this.search_ = this.db.prepare(
      "SELECT rowid AS id FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?",
    );
  }
  writer(w) {
    return this.writers[w];
  }
  // One transaction for all: SQLite's fastest documented bulk load.
  async load(items) {
    const insert = this.db.prepare("INSERT INTO t(rowid, text) VALUES (?, ?)");
    this.db.transaction(() => items.forEach((item) => insert.run(item.id, item.text)))();
  }
  async search(mode, query, k) {
    const match = ftsQuery(query.text);
    if (match.length === 0) return [];
    return this.search_.all(match, k).map((row) => row.id);
  }
  pids() {
    return [process.pid];
  }
  async close() {
    await Promise.all(this.writers.map((w) => w.worker.terminate()));
    this.db.close();
  }
}

export default {
  name: "sqlite",
  durability: "WAL, synchronous=FULL, one transaction per add",
  modes: ["lexical"],
  writers: [1, 16],
  open: async (dir, { writers }) => new Store(dir, writers),
};
