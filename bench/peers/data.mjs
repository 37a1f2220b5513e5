// data.mjs — reads the folder bench-peers exports (bench/peers_export.h):
// texts as JSON lines, their hash-v1 vectors as rows of little-endian
// float32, row i belonging to line i.
import fs from "node:fs";
import path from "node:path";

function readLines(file) {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

// The rows of `file` as Float32Array views, `dim` floats each.
function readVectors(file, dim, count) {
  const bytes = fs.readFileSync(file);
  if (bytes.length !== count * dim * 4) {
    throw new Error(`${file}: ${bytes.length} bytes, expected ${count} vectors of ${dim}`);
  }
  // Copied into an aligned buffer: a Buffer from readFileSync may start at
  // any offset of a shared pool, and Float32Array needs 4-byte alignment.
  const floats = new Float32Array(bytes.length / 4);
  new Uint8Array(floats.buffer).set(bytes);
  const rows = [];
  for (let i = 0; i < count; i++) rows.push(floats.subarray(i * dim, (i + 1) * dim));
  return rows;
}

// `stem`.jsonl with each line's vector from `stem`.f32 as `vector`.
function readSet(stem, dim) {
  const lines = readLines(`${stem}.jsonl`);
  const vectors = readVectors(`${stem}.f32`, dim, lines.length);
  return lines.map((line, i) => ({ ...line, vector: vectors[i] }));
}

export function loadData(dir) {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8"));
  const items = readSet(path.join(dir, "synthetic", "items"), meta.dim);
  items.forEach((item, i) => (item.id = i));
  const queries = readSet(path.join(dir, "synthetic", "queries"), meta.dim);
  const conversations = meta.conversations.map((name) => ({
    name,
    turns: readSet(path.join(dir, "locomo", name, "turns"), meta.dim),
    questions: readSet(path.join(dir, "locomo", name, "questions"), meta.dim),
  }));
  return { meta, items, queries, conversations };
}
