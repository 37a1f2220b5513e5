// peers.mjs — the peers' side of bench-peers (bench/peers.cpp): runs one
// system on the workload bench-peers exported (data.mjs) and prints its
// figures as JSON lines on stdout (measure.mjs), which bench-peers checks,
// passes on and summarizes. Each system (systems/) is measured the way
// bench/peers_memosd.h measures memosd:
//   add        W writers (1 and 16), each with one add in flight, for a warm-up
//              then --seconds: adds per second and per-add latency;
//   search     at each scale a fresh store loaded by the system's fastest bulk
//              path, then per mode 50 warm-up queries (at most a third of
//              --search-seconds) and up to --queries timed one at a time
//              (k = 10), within --search-seconds;
//   footprint  resident memory of the processes holding the store, and disk;
//   recall     LoCoMo dev, a fresh store per conversation, recall@10 per mode.
// Usage: node peers.mjs --system NAME --data DIR --work DIR [--seconds S]
//   [--queries Q] [--search-seconds S] [--memosd PATH --memos-mcp PATH
//   --memos-library PATH --pythonpath DIR]   (the last four for memos-mcp)
import fs from "node:fs";
import path from "node:path";
import { loadData } from "./data.mjs";
import { diskBytes, note, nowUs, percentile, printFigure, residentBytes } from "./measure.mjs";

// Each system's module, loaded only when asked for (their native modules
// are large and each logs in its own way).
const kSystems = {
  lancedb: async () => (await import("./systems/lancedb.mjs")).default,
  sqlite: async () => (await import("./systems/sqlite.mjs")).default,
  hnswlib: async () => (await import("./systems/vectors.mjs")).hnswlibSystem,
  usearch: async () => (await import("./systems/vectors.mjs")).usearchSystem,
  "server-memory": async () => (await import("./systems/server_memory.mjs")).default,
  "memos-mcp": async () => (await import("./systems/memos_mcp.mjs")).default,
};
// LanceDB's engine warns on every query that a future release will stop
// returning the score column; the warnings say nothing about the results.
process.env.LANCEDB_LOG ??= "error";
const kAddWarmupUs = 500000;
const kWarmupQueries = 50;
const kK = 10;

class UsageError extends Error {}

function parseOptions(argv) {
  const options = { seconds: 3, queries: 1000, searchSeconds: 30 };
  const numbers = { "--seconds": "seconds", "--queries": "queries", "--search-seconds": "searchSeconds" };
  const strings = { "--system": "system", "--data": "data", "--work": "work", "--memosd": "memosd",
    "--memos-mcp": "memosMcp", "--memos-library": "memosLibrary", "--pythonpath": "pythonpath" };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag in numbers) {
      const n = Number(value);
      if (!(n > 0)) throw new UsageError(`${flag} needs a positive number, not '${value}'`);
      options[numbers[flag]] = n;
    } else if (flag in strings) {
      options[strings[flag]] = value;
    } else {
      throw new UsageError(`unknown option ${flag}`);
    }
  }
  for (const flag of ["--system", "--data", "--work"]) {
    if (!options[strings[flag]]) throw new UsageError(`${flag} is required`);
  }
  if (!(options.system in kSystems)) throw new UsageError(`unknown system '${options.system}'`);
  return options;
}

// A fresh folder for one store; removed by the caller's `finally`.
let stores = 0;
function storeDir(options, label) {
  const dir = path.join(options.work, `${++stores}-${label}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function withStore(options, label, writers, body) {
  const { system, dim } = options;
  const dir = storeDir(options, label);
  const store = await system.open(dir, { ...options, dim, writers });
  try {
    return await body(store, dir);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const figure = (options, phase, fields) =>
  printFigure({ system: options.system.name, phase, durability: options.system.durability, ...fields });

async function addPhase(options, items, writers) {
  await withStore(options, `add-${writers}`, writers, async (store) => {
    const begin = nowUs() + kAddWarmupUs;
    const end = begin + options.seconds * 1e6;
    const latencies = [];
    let acknowledged = 0;
    const lane = async (w) => {
      const writer = store.writer(w);
      for (let i = w; nowUs() < end; i += writers) {
        const start = nowUs();
        await writer.add(items[i % items.length]);
        const done = nowUs();
        ++acknowledged;
        if (done >= begin && done < end) latencies.push(done - start);
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => lane(w)));
    if (store.count) {
      const kept = await store.count();
      if (kept !== acknowledged) note(`${options.system.name}: ${acknowledged} adds acknowledged by ${writers} writers, ${kept} kept`);
    }
    figure(options, "add", { writers, items: latencies.length, adds_per_s: latencies.length / options.seconds,
      p50_us: percentile(latencies, 0.5), p99_us: percentile(latencies, 0.99) });
  });
}

async function timeQueries(options, store, mode, queries) {
  // Warm-up: 50 queries, or a third of the time the timed run may take.
  const warmupEnd = nowUs() + (options.searchSeconds * 1e6) / 3;
  for (let i = 0; i < kWarmupQueries && nowUs() < warmupEnd; i++) {
    await store.search(mode, queries[i % queries.length], kK);
  }
  const latencies = [];
  const started = nowUs();
  for (const query of queries.slice(0, options.queries)) {
    if (nowUs() - started > options.searchSeconds * 1e6) break;
    const t0 = nowUs();
    await store.search(mode, query, kK);
    latencies.push(nowUs() - t0);
  }
  return latencies;
}

async function searchPhase(options, data, scale) {
  const rssBefore = residentBytes(process.pid);
  await withStore(options, `search-${scale}`, 1, async (store, dir) => {
    const t0 = nowUs();
    await store.load(data.items.slice(0, scale));
    note(`${options.system.name}: loaded ${scale} items in ${((nowUs() - t0) / 1e6).toFixed(1)} s`);
    for (const mode of options.system.modes) {
      const latencies = await timeQueries(options, store, mode, data.queries);
      figure(options, "search", { mode, items: scale, queries: latencies.length,
        p50_us: percentile(latencies, 0.5), p99_us: percentile(latencies, 0.99) });
    }
    // A store embedded in this process counts what the process grew by
    // since before it was opened: the workload this script holds is not
    // the store's (nor is Node's own runtime, which favours the peers).
    let rss = store.pids().reduce((sum, pid) => sum + residentBytes(pid), 0);
    if (store.pids().includes(process.pid)) {
      note(`${options.system.name}: this process held ${(rssBefore / 1e6).toFixed(1)} MB before opening the store, ${(rss / 1e6).toFixed(1)} MB after`);
      rss -= rssBefore;
    }
    figure(options, "footprint", { items: scale, rss_mb: rss / 1e6, disk_mb: diskBytes(dir) / 1e6 });
  });
}

// recall@10 of one question: the share of its evidence in the top 10.
function recallAt10(evidence, ranked) {
  const top = new Set(ranked.slice(0, kK));
  return evidence.filter((id) => top.has(id)).length / evidence.length;
}

async function recallPhase(options, data) {
  const sums = new Map(options.system.modes.map((m) => [m, 0]));
  let questions = 0;
  let turns = 0;
  for (const conv of data.conversations) {
    const items = conv.turns.map((turn, i) => ({ ...turn, id: i }));
    await withStore(options, `recall-${conv.name}`, 1, async (store) => {
      await store.load(items);
      for (const mode of options.system.modes) {
        for (const q of conv.questions) {
          const ranked = (await store.search(mode, q, kK)).map((i) => conv.turns[i]?.id);
          sums.set(mode, sums.get(mode) + recallAt10(q.evidence, ranked));
        }
      }
    });
    questions += conv.questions.length;
    turns += conv.turns.length;
  }
  for (const [mode, sum] of sums) {
    figure(options, "recall", { mode, items: turns, queries: questions, recall_at_10: sum / questions });
  }
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  options.system = await kSystems[options.system]();
  const data = loadData(options.data);
  options.dim = data.meta.dim;
  fs.mkdirSync(options.work, { recursive: true });
  for (const writers of options.system.writers) await addPhase(options, data.items, writers);
  for (const scale of data.meta.scales) await searchPhase(options, data, scale);
  await recallPhase(options, data);
}

main().catch((e) => {
  process.stderr.write(`peers.mjs: ${e instanceof UsageError ? "" : "failed: "}${e.stack ?? e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
