// peers.mjs — the peers' side of bench-peers (bench/peers.cpp). bench-peers
// exports a workload folder (data.mjs reads it), measures memosd itself
// through its C++ SDK, then runs this script once per peer system and passes
// its stdout on: one JSON line per figure (measure.mjs), nothing else; notes
// go to stderr. Each system (systems/) is measured the way
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
// Exit status: 0 done, 1 a failure (stderr says which), 2 a bad command line.
import fs from "node:fs";
import path from "node:path";
import { loadData } from "./data.mjs";
import { diskBytes, note, nowUs, percentile, printFigure, residentBytes } from "./measure.mjs";
import { parseOptions, UsageError } from "./options.mjs";

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
const kWriterCounts = [1, 16];
const kAddWarmupUs = 500000;
const kWarmupQueries = 50;
const kK = 10;

// A fresh store in a folder of its own, removed once the store is closed;
// `writers`: how many writers will add at once (none: only loaded).
let stores = 0;
async function withStore(options, label, writers, body) {
  const { system, dim } = options;
  const dir = path.join(options.work, `${++stores}-${label}`);
  fs.mkdirSync(dir, { recursive: true });
  const store = await system.open(dir, { ...options, dim, writers });
  try {
    return await body(store, dir);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const figure = (options, phase, fields) =>
  printFigure({
    system: options.system.name,
    phase,
    durability: options.system.durability,
    ...fields,
  });

// Add number i of the stream: item i's text and vector. Past the end of the
// exported items (a fast system at a long --seconds) the texts come round
// again under new ids, as bench-peers' own stream does for memosd.
function streamItem(items, i) {
  const { text, vector } = items[i % items.length];
  return { id: i, text, vector };
}

async function addPhase(options, items, writers) {
  const { name } = options.system;
  await withStore(options, `add-${writers}`, writers, async (store) => {
    const begin = nowUs() + kAddWarmupUs;
    const end = begin + options.seconds * 1e6;
    const latencies = [];
    let acknowledged = 0;
    const writer = async (w) => {
      const add = store.writer(w);
      for (let i = w; nowUs() < end; i += writers) {
        const start = nowUs();
        await add(streamItem(items, i));
        const done = nowUs();
        ++acknowledged;
        if (done >= begin && done < end) latencies.push(done - start);
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    // Whether every acknowledged add is in the store: a store that loses
    // racing writes shows it here. (memos-mcp refuses a text its cube
    // already holds, which the stream repeats only past its end.)
    const kept = await store.count();
    const refused = store.refused ?? 0;
    const lost = acknowledged - refused - kept;
    note(`${name}: ${writers} writers: ${acknowledged} adds acknowledged` +
      (refused > 0 ? ` (${refused} refused as repeated texts)` : "") +
      `, ${kept} in the store` + (lost > 0 ? `: ${lost} LOST` : ""));
    figure(options, "add", {
      writers,
      items: latencies.length,
      adds_per_s: latencies.length / options.seconds,
      p50_us: percentile(latencies, 0.5),
      p99_us: percentile(latencies, 0.99),
    });
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
  const { name, modes } = options.system;
  const rssBefore = residentBytes(process.pid);
  await withStore(options, `search-${scale}`, 0, async (store, dir) => {
    const t0 = nowUs();
    await store.load(data.items.slice(0, scale));
    note(`${name}: loaded ${scale} items in ${((nowUs() - t0) / 1e6).toFixed(1)} s`);
    for (const mode of modes) {
      const latencies = await timeQueries(options, store, mode, data.queries);
      figure(options, "search", {
        mode,
        items: scale,
        queries: latencies.length,
        p50_us: percentile(latencies, 0.5),
        p99_us: percentile(latencies, 0.99),
      });
    }
    // A store embedded in this process counts what the process grew by
    // since before it was opened: the workload this script holds is not
    // the store's (nor is Node's own runtime, which favours the peers).
    const pids = store.pids();
    let rss = pids.reduce((sum, pid) => sum + residentBytes(pid), 0);
    if (pids.includes(process.pid)) {
      note(`${name}: this process held ${(rssBefore / 1e6).toFixed(1)} MB before opening ` +
        `the store, ${(rss / 1e6).toFixed(1)} MB after`);
      rss -= rssBefore;
    }
    const disk = diskBytes(dir);
    figure(options, "footprint", { items: scale, rss_mb: rss / 1e6, disk_mb: disk / 1e6 });
  });
}

// recall@10 of one question: the share of its evidence in the top 10 (an
// id returned twice counts once).
function recallAt10(evidence, ranked) {
  const top = new Set(ranked.slice(0, kK));
  return evidence.filter((id) => top.has(id)).length / evidence.length;
}

async function recallPhase(options, data) {
  const { modes } = options.system;
  const sums = new Map(modes.map((m) => [m, 0]));
  let questions = 0;
  let turns = 0;
  for (const conv of data.conversations) {
    // Stores key by number (SQLite's rowid, the vector indexes' labels):
    // each turn is stored under its position and mapped back to its id.
    const items = conv.turns.map((turn, i) => ({ ...turn, id: i }));
    await withStore(options, `recall-${conv.name}`, 0, async (store) => {
      await store.load(items);
      for (const mode of modes) {
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
    figure(options, "recall", {
      mode,
      items: turns,
      queries: questions,
      recall_at_10: sum / questions,
    });
  }
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  options.system = await kSystems[options.system]();
  const data = loadData(options.data);
  options.dim = data.meta.dim;
  fs.mkdirSync(options.work, { recursive: true });
  for (const text of options.system.notes ?? []) note(`${options.system.name}: ${text}`);
  for (const writers of kWriterCounts) {
    if (writers > 1 && options.system.oneWriterOnly) {
      note(`${options.system.name}: no ${writers}-writer run: ${options.system.oneWriterOnly}`);
      continue;
    }
    await addPhase(options, data.items, writers);
  }
  for (const scale of data.meta.scales) await searchPhase(options, data, scale);
  await recallPhase(options, data);
}

main().catch((e) => {
  const usage = e instanceof UsageError;
  process.stderr.write(`peers.mjs: ${usage ? e.message : `failed: ${e.stack ?? e}`}\n`);
  process.exit(usage ? 2 : 1);
});
