/**
 * `writ creds aws` against the fake STS/IAM, through a live server (`createServer`, the real AWS
 * issuer, the store's ledger) — the figures issue 11 asks for:
 *
 *   (a) a cold redemption in process: baseline token, token exchange, redemption (the session
 *       policy generated and proven, STS AssumeRole, the ledger's intent and result, the audit);
 *   (b) the floor: one AssumeRole with the same SDK against the same fake;
 *   then the CLI as a process — cold (`--no-cache`), warm (the cache) — beside `node -e 0`, medians
 *   of interleaved runs, wall time and CPU time (the process's: steadier on a loaded machine); and
 *   kill → first refused use of a session handed out, over 20 runs.
 *
 * Needs `npm run build` (the CLI runs from dist/). `WRIT_BENCH_CREDS_AB=<another checkout's
 * bin/writ.js>` (built, its node_modules beside it) times that CLI cold and warm too, interleaved with this
 * one: an A/B on a loaded machine, where only figures taken side by side compare.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { serve } from "@hono/node-server";
import { createServer, loadPolicy } from "../src/app.js";
import { agentClient, agentKeyFromJwk } from "../src/downstream/client.js";
import { startFakeAws } from "../test/fakes/aws.js";
import {
  ACCOUNT,
  awsConfigDir,
  BROKER,
  RELEASES_ROLE,
  ROLE_POLICY,
  TRUST,
} from "../test/fakes/aws-account.js";
import { BIN, ROOT } from "../test/support/cli.js";
import { measure, runProcess, table } from "./harness.js";

const ROLE = RELEASES_ROLE;
/** Runs of each CLI case, interleaved. */
const ROUNDS = 15;
const KEYS = join(ROOT, "examples", "quickstart", "keys");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<void> {
  const fake = await startFakeAws({
    account: ACCOUNT,
    broker: BROKER,
    roles: [{ arn: ROLE, trust: TRUST, policies: [ROLE_POLICY] }],
  });
  const { dir, file } = await awsConfigDir({ endpoint: fake.endpoint });
  const loaded = await loadPolicy(file);
  if (!loaded.policy) throw new Error(JSON.stringify(loaded.problems));
  const server = await createServer({
    policy: loaded.policy,
    dataDir: join(dir, "data"),
    version: "bench",
    env: { AWS_ACCESS_KEY_ID: BROKER.accessKeyId, AWS_SECRET_ACCESS_KEY: BROKER.secretAccessKey },
  });
  let http: ReturnType<typeof serve> | undefined;
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  const base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  try {
    const keyFile = join(KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk");
    const key = agentKeyFromJwk(await readFile(keyFile, "utf8"));
    const bot = agentClient({ server: base, environment: "dev", agent: "release-bot", key });
    const sts = new STSClient({
      region: "eu-west-1",
      endpoint: fake.endpoint,
      credentials: { accessKeyId: BROKER.accessKeyId, secretAccessKey: BROKER.secretAccessKey },
    });
    // kill → the first refused use of a session already handed out; first, while the agent holds
    // few writs (a kill of hundreds makes the issuer put hundreds of per-writ denies, see the notes)
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      // a session issued in the second of the last kill would fall under its deny: start after it
      await new Promise((r) => setTimeout(r, 1100));
      const r = await bot.redeem(
        "aws",
        await bot.writ({ playbook: "fetch", params: { version: `v1.${i}` } }, "aws"),
      );
      const id = r.credential.accessKeyId as string;
      const object = `arn:aws:s3:::acme-releases/v1.${i}/app.tgz`;
      const before = fake.use(id, "s3:GetObject", object);
      if (!before.allowed)
        throw new Error(`run ${i}: the session of ${r.writ} does not work: ${before.reason}`);
      const t0 = performance.now();
      await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "bench" });
      const allowed = fake.use(id, "s3:GetObject", object).allowed;
      ms.push(performance.now() - t0);
      if (allowed) throw new Error("the session still works after the kill");
      await server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "bench" });
      await server.downstreamSettled();
    }
    ms.sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.ceil((q / 100) * ms.length) - 1)]!;
    console.log(
      `\nkill (operator, through the server) → first refused use of a session, 20 runs: p50 ${p(50).toFixed(1)} ms, p99 ${p(99).toFixed(1)} ms (target ≤ 1000 ms)`,
    );
    let n = 0;
    const rows = await measure(
      [
        {
          name: "(a) writ: baseline + exchange + redeem (AssumeRole inside)",
          op: async () => {
            const intent = { playbook: "fetch", params: { version: `v2.${n++}` } };
            await bot.redeem("aws", await bot.writ(intent, "aws"));
          },
        },
        {
          name: "(a′) of which: baseline + exchange, no redemption",
          op: async () => {
            await bot.writ({ playbook: "fetch", params: { version: `v2.${n++}` } }, "aws");
          },
        },
        {
          name: "(b) floor: AssumeRole alone, same SDK",
          op: () =>
            sts.send(
              new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: `bench-${n++}`, DurationSeconds: 900 }),
            ),
        },
      ],
      { budgetMs: 4000, maxIterations: 400, warmupMs: 500, rounds: 4 },
    );
    console.log(table("writ creds aws, in process, against the fake STS", rows, rows[2]!, "credentials/s"));

    // the CLI as a process: cold, warm, and a bare node start, interleaved
    const cache = join(dir, "cache");
    const args = (version: string, extra: string[] = [], bin = BIN) => [
      bin,
      "creds",
      "aws",
      "--playbook",
      "fetch",
      "--param",
      `version=${version}`,
      "--env",
      "dev",
      "--server",
      base,
      "--key",
      keyFile,
      "--agent",
      "release-bot",
      ...extra,
    ];
    // asynchronous: the server answering the CLI runs in this very process
    const runs = new Map<string, { wall: number[]; cpu: number[] }>();
    const time = async (argv: string[], name?: string) => {
      const r = await runProcess([process.execPath, ...argv], "", { WRIT_CACHE_DIR: cache });
      if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
      if (name !== undefined) {
        const m = runs.get(name) ?? { wall: [], cpu: [] };
        m.wall.push(r.wallMs);
        m.cpu.push(r.cpuMs);
        runs.set(name, m);
      }
      return r.wallMs;
    };
    await time(args("v3")); // fills the cache
    // the peer as a process: a plain AssumeRole with the same SDK against the same fake (what a
    // tool pays for a role session without writ)
    const peer = join(dir, "assume-role.mjs");
    await writeFile(
      peer,
      `import { AssumeRoleCommand, STSClient } from ${JSON.stringify(import.meta.resolve("@aws-sdk/client-sts"))};
const sts = new STSClient({ region: "eu-west-1", endpoint: ${JSON.stringify(fake.endpoint)}, credentials: ${JSON.stringify({ accessKeyId: BROKER.accessKeyId, secretAccessKey: BROKER.secretAccessKey })} });
const out = await sts.send(new AssumeRoleCommand({ RoleArn: ${JSON.stringify(ROLE)}, RoleSessionName: "peer", DurationSeconds: 900 }));
if (!out.Credentials?.SessionToken) process.exit(1);
`,
    );
    const other = process.env.WRIT_BENCH_CREDS_AB;
    if (other) await time(args("v3", [], other)); // its cache entry (the same file: the same key)
    for (let i = 0; i < ROUNDS; i++) {
      await time(["-e", "0"], "node -e 0");
      await time(args("v3"), "warm (cached)");
      if (other) await time(args("v3", [], other), `warm (cached), ${other}`);
      await time(args(`v4.${i}`, ["--no-cache"]), "cold (--no-cache)");
      if (other) await time(args(`v5.${i}`, ["--no-cache"], other), `cold (--no-cache), ${other}`);
      await time(["--no-warnings", peer], "peer: plain AssumeRole with the SDK, as a process");
    }
    const fmt = (x: number) => `${x.toFixed(0)} ms`;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const bare = runs.get("node -e 0")!;
    console.log(
      `\n| \`writ creds aws\` as a process (${ROUNDS} interleaved runs) | wall median | CPU mean | added to \`node -e 0\`: wall, CPU |`,
    );
    console.log("|---|---:|---:|---:|");
    for (const [name, m] of runs) {
      const added =
        m === bare
          ? "—"
          : `${fmt(median(m.wall) - median(bare.wall))}, ${fmt(mean(m.cpu) - mean(bare.cpu))}${name.startsWith("warm (cached)") && !name.includes(",") ? " (target ≤ 20 ms)" : ""}`;
      console.log(`| ${name} | ${fmt(median(m.wall))} | ${fmt(mean(m.cpu))} | ${added} |`);
    }
    const plain = runs.get("peer: plain AssumeRole with the SDK, as a process")!;
    const ratio = (m: { wall: number[] }) =>
      ((median(m.wall) - median(bare.wall)) / (median(plain.wall) - median(bare.wall))).toFixed(2);
    console.log(
      `cold writ creds / plain AssumeRole, time added to node -e 0: ${ratio(runs.get("cold (--no-cache)")!)}× (target ≤ 2×)`,
    );
    if (other) console.log(`the same for ${other}: ${ratio(runs.get(`cold (--no-cache), ${other}`)!)}×`);
  } finally {
    await new Promise<void>((r) => http!.close(() => r()));
    await server.close();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
