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

// One writer thread (sqlite_writer.mjs): it answers once when its
// connection is open, then once per add.
class Writer {
  static async start(file) {
    const writer = new Writer(file);
    await writer.reply();
    return writer;
  }
  constructor(file) {
    this.worker = new Worker(new URL("./sqlite_writer.mjs", import.meta.url), {
      workerData: { file },
    });
    this.pending = null;
    this.failure = null;
    this.worker.on("message", (reply) => this.settle(reply.ok ? null : new Error(reply.error)));
    this.worker.on("error", (e) => this.settle((this.failure = e)));
    this.worker.on("exit", (code) => this.settle((this.failure ??= new Error(`exited ${code}`))));
  }
  settle(error) {
    const pending = this.pending;
    this.pending = null;
    if (error) pending?.reject(error);
    else pending?.resolve();
  }
  reply() {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }
  add(item) {
    const replied = this.reply();
    this.worker.postMessage({ id: item.id, text: item.text });
    return replied;
  }
  async stop() {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}

class Store {
  // `writers` threads, each with its connection open before the clock
  // starts; none for a store only searched, whose footprint would
  // otherwise count their V8 heaps.
  static async open(dir, writers) {
    const file = path.join(dir, "memory.db");
    const db = openDatabase(Database, file);
    const started = Array.from({ length: writers }, () => Writer.start(file));
    return new Store(db, await Promise.all(started));
  }
  constructor(db, writers) {
    this.db = db;
    this.writers = writers;
    this.search_ = db.prepare("SELECT rowid AS id FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?");
  }
  writer(w) {
    return (item) => this.writers[w].add(item);
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
  async count() {
    return this.db.prepare("SELECT count(*) AS n FROM t").get().n;
  }
  pids() {
    return [process.pid];
  }
  async close() {
    await Promise.all(this.writers.map((w) => w.stop()));
    this.db.close();
  }
}

export default {
  name: "sqlite",
  durability: "WAL, synchronous=FULL, one transaction per add",
  modes: ["lexical"],
  open: async (dir, { writers }) => Store.open(dir, writers),
};
