// measure.mjs — timing, percentiles, footprint and the result line, the
// same way bench-peers measures memosd (bench/peers_memosd.h).
import fs from "node:fs";
import path from "node:path";

export const nowUs = () => Number(process.hrtime.bigint()) / 1000;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Nearest-rank percentile: always an observed sample (null with none).
export function percentile(samples, p) {
  if (samples.length === 0) return null;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

// A figure of a process's memory from /proc/PID/status, in bytes (VmRSS:
// resident; RssAnon: its own; RssFile: mapped files).
export function residentBytes(pid, field = "VmRSS") {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

// Space the files under `dir` take, as du counts it (allocated blocks).
export function diskBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).blocks * 512;
  }
  return total;
}

const round = (value, decimals) =>
  value === null || value === undefined ? null : Number(value.toFixed(decimals));

// One result line on stdout, with every key bench-peers reads
// (bench/peers_figures.h); a figure that does not apply is null.
export function printFigure(figure) {
  const line = {
    bench: "peers",
    system: figure.system,
    phase: figure.phase,
    mode: figure.mode ?? null,
    items: round(figure.items, 0),
    writers: round(figure.writers, 0),
    queries: round(figure.queries, 0),
    adds_per_s: round(figure.adds_per_s, 1),
    p50_us: round(figure.p50_us, 1),
    p99_us: round(figure.p99_us, 1),
    recall_at_10: round(figure.recall_at_10, 4),
    rss_mb: round(figure.rss_mb, 1),
    disk_mb: round(figure.disk_mb, 1),
    durability: figure.durability,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
}

export const note = (text) => process.stderr.write(`peers.mjs: ${text}\n`);
