// mcp_session.mjs — an MCP server started over stdio and driven by the
// official TypeScript client, as an agent's host would: the connection both
// MCP systems of bench-peers use.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

// Long enough for a search of the reference server at the largest scale
// (it rereads its whole file per call); the SDK's default is 60 s.
const kCallTimeoutMs = 600000;
// The client closes the connection on a reply longer than its read buffer
// (10 MB by default): the reference server's answer to a common word at
// 100k memories is longer (every match, twice: as text and structured).
const kMaxReplyBytes = 512 * 1024 * 1024;

export class McpSession {
  static async start(command, args, env) {
    const transport = new StdioClientTransport({
      command,
      args,
      env,
      stderr: "pipe",
      maxBufferSize: kMaxReplyBytes,
    });
    const session = new McpSession(transport);
    try {
      await session.client.connect(transport);
    } catch (e) {
      await session.close().catch(() => {});
      throw new Error(`${command} did not start: ${e.message}\n${session.log}`);
    }
    return session;
  }
  constructor(transport) {
    this.transport = transport;
    this.log = "";
    transport.stderr?.on("data", (d) => (this.log = (this.log + d).slice(-4000)));
    this.client = new Client({ name: "bench-peers", version: "1.0.0" });
    // What the transport saw go wrong before it closed the connection (a
    // reply over the read buffer, say): a failed call reports it.
    this.transportError = null;
    this.client.onerror = (e) => (this.transportError = e);
  }
  get pid() {
    return this.transport.pid;
  }
  // A tool's structured result; a tool error is thrown with its text.
  async call(name, args) {
    let result;
    try {
      result = await this.client.callTool({ name, arguments: args }, undefined, {
        timeout: kCallTimeoutMs,
      });
    } catch (e) {
      // The server died or broke the protocol: its last words say why.
      if (this.transportError) e.message += ` (the transport: ${this.transportError.message})`;
      e.message += `\n--- the server's stderr (end):\n${this.log}`;
      throw e;
    }
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
