// sqlite_schema.mjs — a connection to sqlite.mjs's database at SQLite's
// safest documented durability: WAL with synchronous=FULL, so a commit is
// fsynced before it returns.
export function openDatabase(Database, file) {
  const db = new Database(file);
  db.pragma("busy_timeout = 10000"); // writers take turns on WAL's one write lock
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE VIRTUAL TABLE IF NOT EXISTS t USING fts5(text)");
  return db;
}
