/**
 * What `writ serve` does with slow, greedy and stalled clients, over raw TCP against the server as
 * the CLI starts it:
 *
 *   - a chunked body over an endpoint's limit is refused (413, its documented reason) as soon as the
 *     limit is passed, while the client is still sending, and the connection is closed — before,
 *     the broker, the approvals API and the admin API waited for the end of the body;
 *   - headers or a body that never finish are cut after the configured timeouts (408), an idle
 *     kept-alive connection after its timeout — before, Node's defaults held them 60 s to 5 min;
 *   - connections over the per-address limit are answered 429 `too_many_connections` and closed;
 *   - the limits' flags are checked at start.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateProof } from "dpop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliFailure } from "../../src/cli/output.js";
import { agentToken } from "../gateway/support.js";
import {
  GATEWAY_YAML,
  quickstartCopy,
  type Raw,
  rawConnection,
  rawJsonBody,
  type Served,
  serveInProcess,
} from "./support.js";

let dir: string;
let config: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-limits-"));
  config = await quickstartCopy(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Sends a request head announcing a chunked body, then `bytes` of it in 8 KiB chunks, never the end. */
async function stalledChunkedPost(
  raw: Raw,
  path: string,
  contentType: string,
  bytes: number,
  headers: Record<string, string> = {},
): Promise<void> {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  raw.socket.write(
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\ntransfer-encoding: chunked\r\n${extra}\r\n`,
  );
  const chunk = Buffer.alloc(8192, "a");
  for (let sent = 0; sent < bytes && !raw.socket.destroyed; sent += chunk.length) {
    // one frame, written whole: a write that reports backpressure has still queued its bytes
    const more = raw.socket.write(
      Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]),
    );
    if (!more) await Promise.race([new Promise((resolve) => raw.socket.once("drain", resolve)), raw.closed]);
  }
}

describe("a chunked body over the limit", () => {
  let served: Served;
  beforeAll(async () => {
    served = await serveInProcess(config);
  }, 60_000);
  afterAll(async () => {
    await served?.stop();
  });

  it.each([
    ["the broker", "/env/dev/token", "application/x-www-form-urlencoded", 64 * 1024, "body_too_large", false],
    ["the approvals API", "/approvals/ar_x/approve", "application/json", 4096, "ERR_APPROVAL_INVALID", false],
    ["the admin API", "/admin/v1/kill", "application/json", 64 * 1024, "ERR_OPERATOR_INPUT", true],
    ["AuthZEN", "/access/v1/evaluation", "application/json", 1024 * 1024, "payload_too_large", false],
  ] as const)(
    "%s: refused with 413 before the body ends, and the connection closed",
    async (_, path, type, limit, reason, auth) => {
      const raw = await rawConnection(served.port);
      const headers: Record<string, string> = auth ? { authorization: `Bearer ${served.adminToken}` } : {};
      await stalledChunkedPost(raw, path, type, limit + 64 * 1024, headers);
      const head = await raw.head();
      expect(head.status).toBe(413);
      expect(head.headers.connection).toBe("close");
      const body = await rawJsonBody(raw);
      expect(body.reason ?? body.code).toBe(reason);
      await raw.closed; // the server closes it: the client never ended its body
    },
  );

  it("a client that keeps sending after the refusal is disconnected", async () => {
    const raw = await rawConnection(served.port);
    let writing = true;
    const head = raw.head().finally(() => {
      writing = false;
    });
    raw.socket.write(
      "POST /env/dev/token HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    const chunk = Buffer.alloc(16 * 1024, "a");
    const framed = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from("\r\n"),
    ]);
    // keeps writing as long as the server reads, then goes on after the answer until it is cut off
    const sending = (async () => {
      while (!raw.socket.destroyed) {
        if (!raw.socket.write(framed)) {
          await Promise.race([new Promise((r) => raw.socket.once("drain", r)), raw.closed]);
        }
        if (!writing) await new Promise((r) => setImmediate(r));
      }
    })();
    expect((await head).status).toBe(413);
    await raw.closed;
    await sending;
  });

  it("a body under the limit, chunked, is still read and answered", async () => {
    const r = await fetch(`${served.url}/env/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new Blob(["grant_type=password"]).stream(),
      duplex: "half",
    } as RequestInit);
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ reason: "unsupported_grant_type" });
  });
});

describe("a chunked POST to /mcp over 4 MiB, from an authenticated agent", () => {
  let gwDir: string;
  let served: Served;
  beforeAll(async () => {
    gwDir = await mkdtemp(join(tmpdir(), "writ-limits-gw-"));
    served = await serveInProcess(await quickstartCopy(gwDir, GATEWAY_YAML));
  }, 60_000);
  afterAll(async () => {
    await served?.stop();
    await rm(gwDir, { recursive: true, force: true });
  });

  it("is refused with 413 body_too_large before it ends, and the connection closed", async () => {
    const mcp = `${served.url}/mcp`;
    const agent = await agentToken(served.url, "release-bot", mcp);
    const raw = await rawConnection(served.port);
    await stalledChunkedPost(raw, "/mcp", "application/json", 4 * 1024 * 1024 + 64 * 1024, {
      accept: "application/json, text/event-stream",
      authorization: `DPoP ${agent.token}`,
      dpop: await generateProof(agent.keys, mcp, "POST", undefined, agent.token),
    });
    const head = await raw.head();
    expect(head.status, JSON.stringify(await rawJsonBody(raw))).toBe(413);
    expect(head.headers.connection).toBe("close");
    expect(await rawJsonBody(raw)).toMatchObject({ reason: "body_too_large" });
    await raw.closed;
  }, 60_000);
});

describe("slow clients are cut off", () => {
  let served: Served;
  beforeAll(async () => {
    served = await serveInProcess(config, {
      flags: { headersTimeout: "300ms", requestTimeout: "600ms", keepAliveTimeout: "300ms" },
    });
  }, 60_000);
  afterAll(async () => {
    await served?.stop();
  });

  it("headers that never end: 408 and closed", async () => {
    const raw = await rawConnection(served.port);
    raw.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: 1\r\n");
    expect((await raw.head()).status).toBe(408);
    await raw.closed;
  });

  it("a connection that sends nothing is closed", async () => {
    const raw = await rawConnection(served.port);
    await raw.closed;
    expect(raw.received()).toMatch(/^(HTTP\/1\.1 408|$)/);
  });

  it("a body that never ends: 408 and closed", async () => {
    const raw = await rawConnection(served.port);
    raw.socket.write(
      "POST /access/v1/evaluation HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    );
    expect((await raw.head()).status).toBe(408);
    await raw.closed;
  });

  it("an idle kept-alive connection is closed after its answer", async () => {
    const raw = await rawConnection(served.port);
    raw.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    expect((await raw.head()).status).toBe(200);
    await raw.closed;
  });
});

describe("connections per address", () => {
  let served: Served;
  beforeAll(async () => {
    served = await serveInProcess(config, { flags: { maxConnectionsPerIp: "4" } });
  }, 60_000);
  afterAll(async () => {
    await served?.stop();
  });

  it("over the limit: 429 too_many_connections and closed; under it again, served", async () => {
    const held: Raw[] = [];
    for (let i = 0; i < 4; i++) held.push(await rawConnection(served.port));
    // a request on a held connection proves the server has counted all of them
    held[3]!.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    expect((await held[3]!.head()).status).toBe(200);

    const excess = await Promise.all([0, 1, 2].map(() => rawConnection(served.port)));
    for (const raw of excess) {
      raw.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
      const head = await raw.head();
      expect(head.status).toBe(429);
      expect(head.headers["retry-after"]).toBe("1");
      expect(await rawJsonBody(raw)).toMatchObject({ reason: "too_many_connections" });
      await raw.closed;
    }

    // one held connection closes: a new one is served once the server has seen it go
    held[0]!.socket.destroy();
    let status = 0;
    for (let attempt = 0; attempt < 100 && status !== 200; attempt++) {
      const raw = await rawConnection(served.port);
      raw.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
      status = (await raw.head()).status;
      await raw.closed;
    }
    expect(status).toBe(200);
    for (const raw of held) raw.socket.destroy();
  });
});

describe("the limits' flags", () => {
  const refusal = async (flags: Record<string, string>) => {
    try {
      const s = await serveInProcess(config, { flags });
      await s.stop();
      return "started";
    } catch (err) {
      return (err as CliFailure).code;
    }
  };

  it.each([
    [{ headersTimeout: "soon" }],
    [{ requestTimeout: "0s" }],
    [{ keepAliveTimeout: "2h" }],
    [{ headersTimeout: "20s", requestTimeout: "10s" }],
    [{ maxConnectionsPerIp: "0" }],
    [{ maxConnectionsPerIp: "many" }],
  ])("%o is a usage error", async (flags) => {
    expect(await refusal(flags)).toBe("ERR_USAGE");
  });
});
