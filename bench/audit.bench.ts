/**
 * What the periodic signed checkpoint costs the appends around it, on the embedded store: one
 * record of a gateway call's size appended at a time (each waits for its commit, as a call does),
 * with a checkpoint every 100 and every 50 records, against the same log without checkpoints (the
 * floor). A checkpoint runs after the answer of the append it signs, on the same thread: what it
 * costs shows in the appends that follow it, so in p99 and in CPU per append.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey, openAuditLog } from "../src/audit/index.js";
import { openStore, type Store } from "../src/store/index.js";
import { measure, table } from "./harness.js";

const RECORD = {
  agent: "release-bot",
  environment: "dev",
  session: "s-0123456789abcdef",
  tool: "everything__echo",
  action: "mcp:everything:echo",
  resource: "mcp:everything",
  decision: "allow",
  reasons: [{ code: "baseline", grant: "mcp:everything:echo" }],
  argumentsDigest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  ms: 0.42,
};

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-audit-"));
  const stores: Store[] = [];
  try {
    const signer = await loadSigningKey(join(dir, "keys"));
    const open = async (name: string, every: number) => {
      const store = await openStore({ dataDir: join(dir, name) });
      stores.push(store);
      await store.migrate();
      return openAuditLog({ repo: store.audit, signer, checkpointEvery: every });
    };
    const none = await open("none", 0);
    const every100 = await open("every100", 100);
    const every50 = await open("every50", 50);
    const [floor, ...rows] = await measure(
      [
        { name: "append, no checkpoints", op: (i) => none.append("gateway.call", { ...RECORD, i }) },
        {
          name: "append, checkpoint every 100",
          op: (i) => every100.append("gateway.call", { ...RECORD, i }),
        },
        { name: "append, checkpoint every 50", op: (i) => every50.append("gateway.call", { ...RECORD, i }) },
      ],
      { budgetMs: 4000, warmupMs: 500, rounds: 8, maxIterations: 20_000 },
    );
    await Promise.all([every100.settled(), every50.settled()]);
    console.log(
      table(
        "Audit append on the embedded store, with and without periodic checkpoints",
        [floor!, ...rows],
        floor!,
        "appends/s",
      ),
    );

    // The tail is where a checkpoint shows, and one append in 100 is at the edge of p99: time the
    // append that follows each checkpoint's trigger against the others of the same run (interleaved,
    // so a loaded machine weighs on both alike).
    const log = await open("after", 100);
    const after: number[] = [];
    const others: number[] = [];
    for (let i = 1; i <= 6000; i++) {
      const t0 = performance.now();
      await log.append("gateway.call", { ...RECORD, i });
      (i % 100 === 1 && i > 1 ? after : others).push((performance.now() - t0) * 1000);
    }
    await log.settled();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(
      `\nthe append after a checkpoint's trigger: p50 ${median(after).toFixed(0)} µs (${after.length} appends), the others: p50 ${median(others).toFixed(0)} µs; +${((median(after) - median(others)) / 1000).toFixed(3)} ms (the gateway's whole check: under 3 ms at p99)`,
    );
  } finally {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}
