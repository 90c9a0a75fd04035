/**
 * A hook call judged in this process against the local store (embedded PGlite in the data folder,
 * or `WRIT_DATABASE_URL`): writ.yaml loaded, the agent's active writs read, taint read and written,
 * the decision audited, the store closed. The store costs seconds to open, so a full run leaves a
 * decision snapshot, and while neither writ.yaml nor the store has changed since, a call decides on
 * it and records to a signed spool instead, which the next full run imports (hook/local.ts). The
 * embedded store is locked by a running server: then a full run fails, and the hook refuses.
 */
import { homedir } from "node:os";
import { formatProblem } from "../config/index.js";
import { WritError } from "../core/index.js";
import type { HookEngineDeps, HookIdentity, Verdict } from "../hook/engine.js";
import {
  importSpool,
  localTaints,
  MAX_SPOOL,
  markSpooledTaint,
  openSpool,
  readSnapshot,
  type SnapshotTaint,
  snapshotWrits,
  storeStamp,
  toSnapshotWrit,
  withSpoolLock,
  writeSnapshot,
} from "../hook/local.js";
import type { HookInput } from "../hook/protocol.js";
import { decisionPoint, loadPolicy, type Policy } from "../policy.js";

export interface OfflineOptions {
  readonly configFile: string;
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
}

export async function judgeOffline(
  opts: OfflineOptions,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict> {
  const { policy, problems } = await loadPolicy(opts.configFile);
  if (!policy) {
    const first = problems.find((p) => p.severity === "error");
    throw new WritError("ERR_CONFIG_INVALID", first ? formatProblem(first) : "writ.yaml is not valid");
  }
  if (opts.databaseUrl === undefined) {
    const fast = await judgeFromSnapshot(policy, opts.dataDir, identity, input);
    if (fast !== undefined) return fast;
  }
  return judgeInFull(policy, opts, identity, input);
}

/** The decision point's part of the engine's dependencies. */
function deciding(policy: Policy, writs: Parameters<typeof decisionPoint>[1]) {
  const pdp = decisionPoint(policy, writs);
  return {
    decide: async (req) => {
      await policy.prepare(req.action);
      return pdp.decide(req);
    },
    region: async (req) => {
      await policy.prepare(req.action);
      return pdp.region(req);
    },
  } satisfies Pick<HookEngineDeps, "decide" | "region">;
}

/** On the snapshot, when it still holds; `undefined`: run in full. */
async function judgeFromSnapshot(
  policy: Policy,
  dataDir: string,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict | undefined> {
  const [snapshot, stamp] = await Promise.all([readSnapshot(dataDir), storeStamp(dataDir)]);
  if (
    snapshot === undefined ||
    stamp === undefined ||
    snapshot.stamp !== stamp ||
    snapshot.config !== policy.digest ||
    snapshot.agent !== identity.agent ||
    snapshot.environment !== identity.environment
  ) {
    return undefined;
  }
  // the files deciding needs, not the parts' faces: no server, store or MCP proxy loaded
  const [{ loadSigningKey }, { canonicalJson }, { hookEngine }] = await Promise.all([
    import("../audit/keys.js"),
    import("../audit/canonical.js"),
    import("../hook/engine.js"),
  ]);
  const signer = await loadSigningKey(dataDir, { create: false });
  const decide = deciding(policy, snapshotWrits(snapshot));
  return withSpoolLock(dataDir, async () => {
    const spool = await openSpool(dataDir, signer, canonicalJson);
    if (spool.entries.length >= MAX_SPOOL) return undefined;
    const engine = hookEngine({
      ...decide,
      taints: localTaints(snapshot, spool, identity.environment, identity.agent),
      // appended and flushed before the answer: no record, no answer but a refusal
      audit: (type, data) => spool.append({ t: "audit", type, data }, new Date()),
      hooks: policy.config.hooks,
      home: homedir(),
    });
    return engine.judge(identity, input);
  });
}

/** Against the store: the spool imported first, a snapshot left for the next calls. */
async function judgeInFull(
  policy: Policy,
  opts: OfflineOptions,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict> {
  const [store, audit, gateway, { hookEngine }] = await Promise.all([
    import("../store/index.js"),
    import("../audit/index.js"),
    import("../gateway/index.js"),
    import("../hook/index.js"),
  ]);
  const db = await store.openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  let snapshot: { writs: ReturnType<typeof toSnapshotWrit>[]; taints: SnapshotTaint[] } | undefined;
  let v: Verdict;
  try {
    await db.migrate();
    const signer = await audit.loadSigningKey(opts.dataDir);
    const log = audit.openAuditLog({ repo: db.audit, signer });
    const taints = gateway.taints(db);
    await importSpool(opts.dataDir, signer, audit.canonicalJson, {
      append: (type, data) => log.append(type, data),
      taint: markSpooledTaint(taints),
      settled: () => log.settled(),
    });
    const writs = async (agent: string) =>
      (await db.writs.listUnexpired(agent, new Date())).map(store.toActiveWrit);
    const engine = hookEngine({
      ...deciding(policy, writs),
      taints,
      audit: (type, data) => log.append(type, data),
      hooks: policy.config.hooks,
      home: homedir(),
    });
    v = await engine.judge(identity, input);
    await log.settled();
    if (db.backend === "pglite") {
      const handle = gateway.taintHandle(identity);
      const rows = await db.taints.live(handle, new Date());
      snapshot = {
        writs: (await writs(identity.agent)).map(toSnapshotWrit),
        taints: rows.map((r) => ({ context: r.context, by: r.taintedBy, until: r.until.toISOString() })),
      };
    }
  } finally {
    await db.close();
  }
  // the stamp once the store is closed: the next change to it voids the snapshot
  const stamp = snapshot === undefined ? undefined : await storeStamp(opts.dataDir);
  if (snapshot !== undefined && stamp !== undefined) {
    await writeSnapshot(opts.dataDir, {
      v: 1,
      agent: identity.agent,
      environment: identity.environment,
      config: policy.digest,
      stamp,
      ...snapshot,
    });
  }
  return v;
}
