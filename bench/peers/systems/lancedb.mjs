// lancedb.mjs — LanceDB embedded: one table of {id, text, vector}; dense
// search without a vector index (exact, like memosd's default), full-text
// search on an FTS index, and hybrid search fused by LanceDB's RRF reranker.
import * as lancedb from "@lancedb/lancedb";
import { Field, FixedSizeList, Float32, Int32, Schema, Utf8 } from "apache-arrow";

const kBatch = 10000; // rows per add when loading

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
  }
  // Every writer shares the table: LanceDB's API is asynchronous, so one
  // Node program's concurrent adds are its concurrent writers.
  writer() {
    return { add: (item) => this.table.add([row(item)]) };
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
  // Lance writes each version's files and never fsyncs them (strace shows no
  // fsync or fdatasync), and LanceDB has no setting that asks for it.
  durability: "none: a new table version per add, never fsynced",
  modes: ["dense", "lexical", "hybrid"],
  writers: [1, 16],
  open: async (dir, { dim }) => Store.open(dir, dim),
};
