// vectors.mjs — in-process vector indexes, hnswlib (hnswlib-node) and
// usearch, both HNSW over inner product on the normalised hash-v1 vectors,
// at their libraries' default graph settings. Dense search only, nothing on
// disk: what a Node agent embedding a vector library gets.
import hnswlib from "hnswlib-node";
import usearch from "usearch";

const kInitialCapacity = 1 << 14;

class Hnswlib {
  constructor(dim) {
    this.index = new hnswlib.HierarchicalNSW("ip", dim);
    this.index.initIndex(kInitialCapacity);
  }
  add(item) {
    // Grows by doubling, as a program not knowing its final size would.
    if (this.index.getCurrentCount() >= this.index.getMaxElements()) {
      this.index.resizeIndex(this.index.getMaxElements() * 2);
    }
    this.index.addPoint(Array.from(item.vector), item.id);
  }
  count() {
    return this.index.getCurrentCount();
  }
  search(vector, k) {
    const n = Math.min(k, this.index.getCurrentCount());
    return n === 0 ? [] : this.index.searchKnn(Array.from(vector), n).neighbors;
  }
}

class Usearch {
  constructor(dim) {
    this.index = new usearch.Index({ dimensions: dim, metric: "ip", connectivity: 0 });
  }
  add(item) {
    this.index.add(BigInt(item.id), item.vector);
  }
  count() {
    return this.index.size();
  }
  search(vector, k) {
    return Array.from(this.index.search(vector, k, 1).keys, Number);
  }
}

class Store {
  constructor(Engine, dim) {
    this.engine = new Engine(dim);
  }
  writer() {
    return async (item) => this.engine.add(item);
  }
  async load(items) {
    for (const item of items) this.engine.add(item);
  }
  async search(mode, query, k) {
    return this.engine.search(query.vector, k);
  }
  async count() {
    return this.engine.count();
  }
  pids() {
    return [process.pid];
  }
  async close() {}
}

const inMemory = (name, Engine) => ({
  name,
  durability: "none: in memory",
  modes: ["dense"],
  oneWriterOnly: "its adds are synchronous calls in single-threaded JavaScript, so more " +
    "writers would only take turns",
  open: async (dir, { dim }) => new Store(Engine, dim),
});

export const hnswlibSystem = inMemory("hnswlib", Hnswlib);
export const usearchSystem = inMemory("usearch", Usearch);
