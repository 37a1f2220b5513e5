// mcp_session.mjs — an MCP server started over stdio and driven by the
// official TypeScript client, as an agent's host would: the connection both
// MCP systems of bench-peers use.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

// Long enough for a search of the reference server at the largest scale
// (it rereads its whole file per call); the SDK's default is 60 s.
const kCallTimeoutMs = 600000;

export class McpSession {
  static async start(command, args, env) {
    const transport = new StdioClientTransport({ command, args, env, stderr: "pipe" });
    const session = new McpSession(transport);
    await session.client.connect(transport);
    return session;
  }
  constructor(transport) {
    this.transport = transport;
    this.log = "";
    transport.stderr?.on("data", (d) => (this.log = (this.log + d).slice(-4000)));
    this.client = new Client({ name: "bench-peers", version: "1.0.0" });
  }
  get pid() {
    return this.transport.pid;
  }
  // A tool's structured result; a tool error is thrown with its text.
  async call(name, args) {
    const result = await this.client.callTool({ name, arguments: args }, undefined, {
      timeout: kCallTimeoutMs,
    });
    if (result.isError) {
      const error = new Error(`${name}: ${result.content?.[0]?.text ?? "failed"}`);
      error.toolError = true;
      throw error;
    }
    return result.structuredContent;
  }
  async close() {
    await this.client.close();
  }
}
