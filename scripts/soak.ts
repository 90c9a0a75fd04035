/**
 * `npm run soak`: the load under which `writ serve` used to abort (issue 10, item 1), for a long
 * time, and whether the server survives it. Not part of CI.
 *
 *   npm run soak                                  10 minutes on the embedded store
 *   npm run soak -- --seconds 150                 shorter
 *   npm run soak -- --database-url postgres://…   on PostgreSQL
 *   npm run soak -- --writs 4000 --concurrency 32 --server-flags="--trace-deopt"
 *
 * The server is `createServer` from src/app.ts (what `writ serve` runs) in a child process on
 * loopback, so that an abort (V8's `unreachable code`, SIGTRAP/SIGABRT) is seen and counted: the
 * server is then restarted on the same data and the load goes on. One agent first gets `--writs`
 * writs (default 2,000) through real token exchanges, half of them for the same batch; then `--concurrency` workers (default 16) mix
 * AuthZEN decisions (allowed by one of its writs, by its baseline, denied, batches) with token
 * requests that issue short-lived writs. At the end: aborts (0 expected), server errors (5xx),
 * throughput, p50/p99 per kind and the largest decision answer. Exit 1 on an abort or a 5xx.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dirname, "..");
const QUICKSTART = join(ROOT, "examples", "quickstart");
const AGENT = "soak-bot";
const PDP_TOKEN = "soak-pdp-token";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const playbook = (name: string, ttl: string) => `  ${name}:
    description: write one batch's objects into the lake
    risk: low
    environments: [dev]
    parameters:
      type: object
      properties:
        batch: { type: string, pattern: "^batch-[0-9]+$" }
      required: [batch]
      additionalProperties: false
    grants:
      - action: "aws:s3:PutObject"
        resource: "arn:aws:s3:::acme-lake-raw/\${batch}/*"
        reviewedException: the objects of one batch
    ttl: ${ttl}
    ticket: none
`;

const CONFIG = `version: 1
environments:
  dev:
    audiences: [https://lake.acme.example]
runnerClasses:
  data-move:
    ceiling:
      maxTtl: 2h
      allow:
        - action: "aws:s3:GetObject|ListBucket|PutObject"
          resource: "arn:aws:s3:::acme-*"
      deny:
        - action: "aws:iam:*"
        - action: "aws:s3:DeleteObject"
          resource: "arn:aws:s3:::acme-lake-raw/*"
    limits: { activeWrits: 1000000, issuancePerMinute: 1000000 }
agents:
  ${AGENT}:
    owner: gina@acme.example
    purpose: holds thousands of writs under mixed load
    runnerClass: data-move
    environments: [dev]
    keys: { file: keys/release-bot.jwks.json }
    baseline:
      - action: "aws:s3:GetObject|ListBucket"
        resource: "arn:aws:s3:::acme-reports/*"
    playbooks: [batch-long, batch-short]
playbooks:
${playbook("batch-long", "1h")}${playbook("batch-short", "2m")}`;

// --- the server (child process) ------------------------------------------------------------------

async function serveMode(config: string, dataDir: string, databaseUrl: string | undefined): Promise<void> {
  const [{ createServer, loadPolicy }, { serve }] = await Promise.all([
    import("../src/app.js"),
    import("@hono/node-server"),
  ]);
  const loaded = await loadPolicy(config);
  if (!loaded.policy) throw new Error(`soak config: ${JSON.stringify(loaded.problems)}`);
  const server = await createServer({
    policy: loaded.policy,
    dataDir,
    databaseUrl,
    pdpToken: PDP_TOKEN,
    version: "soak",
  });
  const http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
    const url = `http://127.0.0.1:${info.port}`;
    server.setBaseUrl(url);
    process.stdout.write(`${JSON.stringify({ listening: url })}\n`);
  });
  const stop = () => {
    http.close();
    server.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

// --- the load (parent) ---------------------------------------------------------------------------

interface Options {
  readonly seconds: number;
  readonly writs: number;
  readonly concurrency: number;
  readonly databaseUrl: string | undefined;
  readonly serverFlags: string[];
}

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startServer(config: string, dataDir: string, o: Options): Promise<Server> {
  const args = [
    ...o.serverFlags,
    "--import",
    "tsx",
    join(ROOT, "scripts", "soak.ts"),
    "--serve",
    "--config",
    config,
    "--data",
    dataDir,
    ...(o.databaseUrl ? ["--database-url", o.databaseUrl] : []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const stderr: string[] = [];
  child.stderr!.on("data", (b: Buffer) => {
    stderr.push(b.toString());
    if (stderr.length > 200) stderr.shift();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      if (code !== 0)
        console.error(
          `[soak] server exited (code ${code}, signal ${signal}); its last stderr:\n${stderr.join("").slice(-4000)}`,
        );
      resolve({ code, signal });
    }),
  );
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start in 60 s")), 60_000);
    lines.on("line", (line) => {
      if (!line.startsWith("{")) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    child.once("exit", () => reject(new Error("the server exited at start (its stderr is above)")));
  });
  return { child, url, exited };
}

class Stats {
  readonly samples = new Map<string, number[]>();
  readonly statuses = new Map<string, number>();
  maxDecisionBytes = 0;
  maxReasons = 0;
  serverErrors = 0;
  failures = 0;

  record(kind: string, ms: number, status: number): void {
    const s = this.samples.get(kind) ?? [];
    if (s.length === 0) this.samples.set(kind, s);
    s.push(ms);
    const key = `${kind} ${status}`;
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    if (status >= 500) this.serverErrors++;
  }
}

const pct = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function run(o: Options): Promise<number> {
  const { generateKeyPair, generateProof } = await import("dpop");
  const { importJWK, SignJWT } = await import("jose");
  const dir = await mkdtemp(join(tmpdir(), "writ-soak-"));
  const configDir = join(dir, "config");
  await cp(join(QUICKSTART, "keys"), join(configDir, "keys"), { recursive: true });
  const config = join(configDir, "writ.yaml");
  await writeFile(config, CONFIG);
  const dataDir = join(dir, "data");
  const { _warning, ...jwk } = JSON.parse(
    await readFile(join(QUICKSTART, "keys", "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  ) as Record<string, string>;
  const agentKey = await importJWK(jwk, "EdDSA");
  const dpop = await generateKeyPair("ES256");

  let server = await startServer(config, dataDir, o);
  const aborts: string[] = [];
  let stopping = false;
  const watch = (s: Server) => {
    void s.exited.then(async ({ code, signal }) => {
      if (stopping) return;
      aborts.push(`${new Date().toISOString()} code ${code} signal ${signal}`);
      server = await startServer(config, dataDir, o);
      watch(server);
    });
  };
  watch(server);

  const stats = new Stats();
  const tokenUrl = () => `${server.url}/env/dev/token`;
  const assertion = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA", kid: jwk.kid! })
      .setIssuer(AGENT)
      .setSubject(AGENT)
      .setAudience(`${server.url}/env/dev`)
      .setIssuedAt()
      .setExpirationTime("1m")
      .setJti(randomUUID())
      .sign(agentKey);
  const token = async (form: Record<string, string>) => {
    const res = await fetch(tokenUrl(), {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await generateProof(dpop, tokenUrl(), "POST"),
      },
      body: new URLSearchParams({
        ...form,
        client_assertion_type: JWT_BEARER,
        client_assertion: await assertion(),
      }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  let baseline: { token: string; until: number } | undefined;
  const baselineToken = async () => {
    if (!baseline || baseline.until < Date.now()) {
      const r = await token({ grant_type: "client_credentials" });
      if (r.status !== 200) throw new Error(`baseline token: ${r.status} ${JSON.stringify(r.body)}`);
      baseline = { token: r.body.access_token as string, until: Date.now() + 60_000 };
    }
    return baseline.token;
  };
  const exchange = async (pb: string, batch: number) =>
    token({
      grant_type: TOKEN_EXCHANGE,
      subject_token: await baselineToken(),
      subject_token_type: ACCESS_TOKEN,
      resource: "https://lake.acme.example",
      authorization_details: JSON.stringify([
        { type: "writ_playbook", playbook: pb, parameters: { batch: `batch-${batch}` } },
      ]),
    });
  const evaluation = (action: string, resource: string) => ({
    subject: { type: "agent", id: AGENT },
    action: { name: action },
    resource: { type: "aws", id: resource },
    context: { environment: "dev" },
  });
  const authzen = async (path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${PDP_TOKEN}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (text.length > stats.maxDecisionBytes) stats.maxDecisionBytes = text.length;
    if (res.ok) {
      const parsed = JSON.parse(text) as {
        context?: { reasons?: unknown[] };
        evaluations?: { context?: { reasons?: unknown[] } }[];
      };
      for (const d of [parsed, ...(parsed.evaluations ?? [])]) {
        const n = d.context?.reasons?.length ?? 0;
        if (n > stats.maxReasons) stats.maxReasons = n;
      }
    }
    return res.status;
  };
  const timed = async (kind: string, op: () => Promise<number>) => {
    const t0 = performance.now();
    let status: number;
    try {
      status = await op();
    } catch {
      stats.failures++;
      status = 0; // the connection failed (an aborted server)
      await new Promise((r) => setTimeout(r, 200));
    }
    stats.record(kind, performance.now() - t0, status);
  };

  // 1. the agent gets its writs, through real token exchanges
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.writs) {
        // every other writ for batch 0, as an agent that keeps asking for the same work: a request
        // on batch 0 is covered by half of them (each cited, before issue 10)
        const i = next++;
        const batch = i % 2 === 0 ? 0 : i;
        const r = await exchange("batch-long", batch);
        if (r.status !== 200) throw new Error(`writ ${batch}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
  console.log(
    `[soak] ${o.writs} writs issued to ${AGENT} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  // 2. mixed load until the deadline
  const deadline = Date.now() + o.seconds * 1000;
  let short = 1_000_000;
  const pick = () => (Math.random() < 0.5 ? 0 : Math.floor(Math.random() * o.writs));
  const lake = (batch: number) =>
    `arn:aws:s3:::acme-lake-raw/batch-${batch}/part-${randomUUID().slice(0, 8)}.parquet`;
  const started = Date.now();
  let lastReport = started;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (Date.now() < deadline) {
        const x = Math.random();
        if (x < 0.6) {
          await timed("decision: writ", () =>
            authzen("/access/v1/evaluation", evaluation("aws:s3:PutObject", lake(pick()))),
          );
        } else if (x < 0.7) {
          await timed("decision: baseline", () =>
            authzen(
              "/access/v1/evaluation",
              evaluation("aws:s3:GetObject", "arn:aws:s3:::acme-reports/q1.csv"),
            ),
          );
        } else if (x < 0.8) {
          await timed("decision: denied", () =>
            authzen(
              "/access/v1/evaluation",
              evaluation(x < 0.75 ? "aws:s3:PutObject" : "aws:s3:DeleteObject", lake(o.writs + 1 + pick())),
            ),
          );
        } else if (x < 0.9) {
          await timed("decisions: batch of 8", () =>
            authzen("/access/v1/evaluations", {
              subject: { type: "agent", id: AGENT },
              context: { environment: "dev" },
              evaluations: Array.from({ length: 8 }, (_, i) => ({
                action: { name: i % 4 === 3 ? "aws:s3:GetObject" : "aws:s3:PutObject" },
                resource: { type: "aws", id: i % 4 === 3 ? "arn:aws:s3:::acme-reports/x" : lake(pick()) },
              })),
            }),
          );
        } else {
          await timed(
            "token exchange (new writ)",
            async () => (await exchange("batch-short", short++)).status,
          );
        }
        if (Date.now() - lastReport > 30_000) {
          lastReport = Date.now();
          const n = [...stats.samples.values()].reduce((s, v) => s + v.length, 0);
          console.log(
            `[soak] ${Math.round((Date.now() - started) / 1000)} s: ${n} requests, ${aborts.length} aborts, ${stats.serverErrors} 5xx`,
          );
        }
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  stopping = true;
  server.child.kill("SIGTERM");
  await server.exited;
  await rm(dir, { recursive: true, force: true });

  // 3. the report
  console.log(
    `\nsoak: ${seconds.toFixed(0)} s of mixed load, ${o.concurrency} concurrent, one agent holding ${o.writs.toLocaleString("en-US")}+ writs, ${o.databaseUrl ? "PostgreSQL" : "embedded store"}\n`,
  );
  console.log("| kind | requests | per s | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|");
  let total = 0;
  for (const [kind, s] of [...stats.samples].sort()) {
    const sorted = [...s].sort((a, b) => a - b);
    total += s.length;
    console.log(
      `| ${kind} | ${s.length} | ${(s.length / seconds).toFixed(1)} | ${pct(sorted, 50).toFixed(2)} | ${pct(sorted, 99).toFixed(2)} |`,
    );
  }
  console.log(`| all | ${total} | ${(total / seconds).toFixed(1)} | | |`);
  console.log(`\nstatuses: ${[...stats.statuses].map(([k, n]) => `${k}: ${n}`).join(", ")}`);
  console.log(
    `largest decision answer: ${stats.maxDecisionBytes} bytes; most reasons in one decision: ${stats.maxReasons}`,
  );
  console.log(`server aborts: ${aborts.length}${aborts.length ? ` (${aborts.join("; ")})` : ""}`);
  console.log(`5xx answers: ${stats.serverErrors}; failed connections: ${stats.failures}`);
  return aborts.length > 0 || stats.serverErrors > 0 ? 1 : 0;
}

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    config: { type: "string" },
    data: { type: "string" },
    "database-url": { type: "string" },
    minutes: { type: "string", default: "10" },
    seconds: { type: "string" },
    writs: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    "server-flags": { type: "string", default: "" },
  },
});

if (values.serve) {
  await serveMode(values.config!, values.data!, values["database-url"]);
} else {
  const whole = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${v}`);
    return n;
  };
  const seconds = values.seconds ? whole("seconds", values.seconds) : whole("minutes", values.minutes) * 60;
  process.exitCode = await run({
    seconds,
    writs: whole("writs", values.writs),
    concurrency: whole("concurrency", values.concurrency),
    databaseUrl: values["database-url"],
    serverFlags: values["server-flags"].split(" ").filter((f) => f.length > 0),
  });
}
