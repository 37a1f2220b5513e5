// options.mjs — peers.mjs's command line. A bad one is a UsageError, which
// peers.mjs reports with exit status 2 (any other failure: 1).

export class UsageError extends Error {}

export const kSystemNames = [
  "lancedb",
  "sqlite",
  "hnswlib",
  "usearch",
  "server-memory",
  "memos-mcp",
];

const kNumbers = {
  "--seconds": "seconds",
  "--queries": "queries",
  "--search-seconds": "searchSeconds",
};
const kStrings = {
  "--system": "system",
  "--data": "data",
  "--work": "work",
  "--memosd": "memosd",
  "--memos-mcp": "memosMcp",
  "--memos-library": "memosLibrary",
  "--pythonpath": "pythonpath",
};
// What memos-mcp needs to start memosd and itself (bench-peers passes them).
const kMemosMcpFlags = ["--memosd", "--memos-mcp", "--memos-library", "--pythonpath"];

export function parseOptions(argv) {
  const options = { seconds: 3, queries: 1000, searchSeconds: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (!(flag in kNumbers) && !(flag in kStrings)) throw new UsageError(`unknown option ${flag}`);
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag in kNumbers) {
      const n = Number(value);
      const count = flag === "--queries";
      if (!(n > 0) || !Number.isFinite(n) || (count && !Number.isInteger(n))) {
        const what = count ? "a positive integer" : "a positive number";
        throw new UsageError(`${flag} needs ${what}, not '${value}'`);
      }
      options[kNumbers[flag]] = n;
    } else {
      options[kStrings[flag]] = value;
    }
  }
  for (const flag of ["--system", "--data", "--work"]) {
    if (!options[kStrings[flag]]) throw new UsageError(`${flag} is required`);
  }
  if (!kSystemNames.includes(options.system)) {
    throw new UsageError(`unknown system '${options.system}' (${kSystemNames.join(", ")})`);
  }
  if (options.system === "memos-mcp") {
    for (const flag of kMemosMcpFlags) {
      if (!options[kStrings[flag]]) throw new UsageError(`memos-mcp needs ${flag}`);
    }
  }
  return options;
}
