// lancedb.mjs — LanceDB embedded: one table of {id, text, vector}; dense
// search without a vector index (exact, like memosd's default), full-text
// search on an FTS index, and hybrid search fused by LanceDB's RRF reranker.
import * as lancedb from "@lancedb/lancedb";
import { Field, FixedSizeList, Float32, Int32, Schema, Utf8 } from "apache-arrow";
import { note } from "../measure.mjs";

const kBatch = 10000; // rows per add when loading

// Lance retries a commit that raced another itself; this message is what it
// throws once those retries run out.
const kConflict = /commit conflict/i;

const row = (item) => ({ id: item.id, text: item.text, vector: Array.from(item.vector) });

class Store {
  static async open(dir, dim) {
    const db = await lancedb.connect(dir);
    const schema = new Schema([
      new Field("id", new Int32(), false),
      new Field("text", new Utf8(), false),
      new Field("vector", new FixedSizeList(dim, new Field("item", new Float32(), true)), false),
    ]);
    const store = new Store(db, await db.createEmptyTable("memories", schema));
    store.rrf = await lancedb.rerankers.RRFReranker.create();
    return store;
  }
  constructor(db, table) {
    this.db = db;
    this.table = table;
    this.retries = 0;
  }
  // Every writer shares the table: LanceDB's API is asynchronous, so one
  // Node program's concurrent adds are its concurrent writers. An add whose
  // commit lost every race is tried again: it counts once, when it lands.
  writer() {
    return async (item) => {
      for (;;) {
        try {
          return await this.table.add([row(item)]);
        } catch (e) {
          if (!kConflict.test(String(e?.message))) throw e;
          if (++this.retries === 1) note(`lancedb: an add's commit failed, again: ${e.message}`);
        }
      }
    };
  }
  async load(items) {
    for (let i = 0; i < items.length; i += kBatch) {
      await this.table.add(items.slice(i, i + kBatch).map(row));
    }
    await this.table.createIndex("text", { config: lancedb.Index.fts() });
  }
  async search(mode, query, k) {
    let q;
    if (mode === "dense") {
      q = this.table.vectorSearch(query.vector).distanceType("dot");
    } else if (mode === "lexical") {
      q = this.table.search(query.text, "fts");
    } else {
      q = this.table
        .query()
        .nearestTo(query.vector)
        .distanceType("dot")
        .fullTextSearch(query.text)
        .rerank(this.rrf);
    }
    const rows = await q.select(["id"]).limit(k).toArray();
    return rows.map((r) => r.id);
  }
  async count() {
    if (this.retries > 0) note(`lancedb: ${this.retries} adds tried again after commit conflicts`);
    return this.table.countRows();
  }
  pids() {
    return [process.pid];
  }
  async close() {
    this.table.close();
    this.db.close();
  }
}

export default {
  name: "lancedb",
  // Lance writes each version's files (data, transaction, manifest) to
  // temporary files renamed into place and never fsyncs them (strace shows
  // no fsync, fdatasync, sync_file_range or msync), and has no setting that
  // asks for it.
  durability: "none: a new table version per add, never fsynced",
  modes: ["dense", "lexical", "hybrid"],
  notes: ["dense search has no vector index: an exact scan, as memosd's default"],
  open: async (dir, { dim }) => Store.open(dir, dim),
};
