// sqlite_writer.mjs — one writer of sqlite.mjs, in a worker thread with its
// own connection: better-sqlite3 is synchronous, so writers that run at
// once need threads, as they would in a server using SQLite.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { openDatabase } from "./sqlite_schema.mjs";

const db = openDatabase(Database, workerData.file);
const insert = db.prepare("INSERT INTO t(rowid, text) VALUES (?, ?)");
parentPort.postMessage({ ok: true }); // open: the writer may start
parentPort.on("message", ({ id, text }) => {
  try {
    insert.run(id, text); // autocommit: one durable transaction per add
    parentPort.postMessage({ ok: true });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: String(e) });
  }
});
