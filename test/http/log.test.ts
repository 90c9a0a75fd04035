/**
 * Every 5xx leaves its cause in the server's log: one JSON line with the method, the path, the
 * status and the error's name, code, message and causes — never a header, a body, a query or a
 * token. Before, the 500 handler discarded the error (and AuthZEN's and the admin API's own 500s
 * too): an operator had nothing to go on.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { WritError } from "../../src/core/index.js";
import { httpApp } from "../../src/http/app.js";
import { createLogger, lineDestination } from "../../src/http/log.js";
import { authzenRoutes, DecisionPoint } from "../../src/pdp/index.js";
import { QUICKSTART } from "../broker/live.js";
import { createTempDatabase, postgresEnabled } from "../store/backends.js";
import { quickstartCopy, serveInProcess } from "./support.js";

/** One AuthZEN evaluation the quickstart allows. */
const EVALUATION: RequestInit = {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    subject: { type: "agent", id: "cost-analyst" },
    action: { name: "aws:s3:GetObject" },
    resource: { type: "aws", id: "arn:aws:s3:::acme-reports/a.csv" },
    context: { environment: "prod" },
  }),
};
const TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJyZWxlYXNlLWJvdCJ9.c2lnbmF0dXJl";

async function appWithParts(lines: string[]) {
  const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  const pdp = new DecisionPoint(policy!.config, { vocab: policy!.vocab });
  const broker = new Hono();
  broker.post("/env/dev/token", () => {
    throw new Error(`could not verify ${TOKEN}`, {
      cause: Object.assign(new Error("relation missing"), { code: "42P01" }),
    });
  });
  broker.post("/env/dev/use", () => {
    throw new WritError("ERR_VALUE_UNSTORABLE", "spend a use: the database refused a value");
  });
  return httpApp({
    authzen: authzenRoutes(pdp, {
      baseUrl: "http://127.0.0.1",
      onDecision: () => {
        throw new WritError("ERR_STORE", "append audit record: disk full");
      },
    }),
    broker,
    ready: async () => true,
    version: "test",
    logger: await createLogger({ destination: lineDestination((line) => lines.push(line)) }),
  });
}

/** The failure lines among everything logged (every request also has its own line). */
const failures = (lines: readonly string[]) => lines.filter((l) => l.includes('"http.request_failed"'));

describe("the log line of a failed request", () => {
  it("names the thrown error and its cause, with tokens replaced and no query", async () => {
    const lines: string[] = [];
    const app = await appWithParts(lines);
    const res = await app.request(`/env/dev/token?token=${TOKEN}`, {
      method: "POST",
      headers: { "x-request-id": "req-7", authorization: `DPoP ${TOKEN}` },
      body: `subject_token=${TOKEN}`,
    });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("verify");
    expect(failures(lines)).toHaveLength(1);
    const line = JSON.parse(failures(lines)[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: "error",
      event: "http.request_failed",
      method: "POST",
      path: "/env/dev/token",
      status: 500,
      requestId: "req-7",
      error: {
        name: "Error",
        message: "could not verify [token]",
        cause: { name: "Error", code: "42P01", message: "relation missing" },
      },
    });
    // its stack is there, with the token replaced in it too
    expect(line.stack).toMatch(/^Error: could not verify \[token\]\n\s+at /);
    expect(lines.join("\n")).not.toContain(TOKEN.split(".")[1]);
  });

  it("is written for AuthZEN's own 500 (the audit append failed)", async () => {
    const lines: string[] = [];
    const app = await appWithParts(lines);
    const res = await app.request("/access/v1/evaluation", EVALUATION);
    expect(res.status).toBe(500);
    expect(failures(lines).map((l) => JSON.parse(l))).toMatchObject([
      {
        path: "/access/v1/evaluation",
        status: 500,
        error: { code: "ERR_STORE", message: "append audit record: disk full" },
      },
    ]);
  });

  it("is not written for refusals", async () => {
    const lines: string[] = [];
    const app = await appWithParts(lines);
    expect((await app.request("/nowhere")).status).toBe(404);
    expect((await app.request("/access/v1/evaluation", { method: "POST", body: "{" })).status).toBe(415);
    // a value the store refused, that no part caught, is the caller's: 400, not 500
    const unstorable = await app.request("/env/dev/use", { method: "POST" });
    expect(unstorable.status).toBe(400);
    expect(await unstorable.json()).toMatchObject({ reason: "value_unstorable" });
    expect(failures(lines)).toEqual([]);
  });
});

describe.runIf(postgresEnabled)("writ serve on PostgreSQL when the database goes away", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("answers 500, and its log (the CLI's stderr) has the store's error, for AuthZEN and the admin API", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-log-"));
    dirs.push(dir);
    const temp = await createTempDatabase();
    const served = await serveInProcess(await quickstartCopy(dir), { databaseUrl: temp.url });
    try {
      await temp.drop(); // terminates the server's connections
      const res = await fetch(`${served.url}/access/v1/evaluation`, EVALUATION);
      expect(res.status).toBe(500);
      // the admin API answers its own 500 (ERR_ADMIN_FAILED): logged the same way
      const kills = await fetch(`${served.url}/admin/v1/kill`, {
        headers: { authorization: `Bearer ${served.adminToken}` },
      });
      expect(kills.status).toBe(500);
      expect(await kills.json()).toMatchObject({ code: "ERR_ADMIN_FAILED" });
      const failures = served.errors
        .filter((e) => e.includes('"http.request_failed"'))
        .map((e) => JSON.parse(e) as { path: string; status: number; error: { code: string } });
      expect(failures.map((f) => [f.path, f.status])).toEqual([
        ["/access/v1/evaluation", 500],
        ["/admin/v1/kill", 500],
      ]);
      for (const f of failures) expect(f.error.code).toMatch(/^ERR_STORE/);
    } finally {
      await served.stop().catch(() => {});
    }
  }, 60_000);
});
