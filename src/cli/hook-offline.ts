/**
 * A hook call judged in this process against the local store (embedded PGlite in the data folder,
 * or `WRIT_DATABASE_URL`): writ.yaml loaded, the agent's active writs read, taint read and written,
 * the decision audited, the store closed. The store costs seconds to open, so a full run leaves a
 * decision snapshot, and while neither writ.yaml nor the store has changed since, a call decides on
 * it and records to a signed spool instead, which the next full run imports (hook/local.ts). The
 * embedded store is locked by a running server: then a full run fails, and the hook refuses.
 */
import { homedir } from "node:os";
import type { HookIdentity, Verdict } from "../hook/engine.js";
import {
  importSpool,
  markSpooledTaint,
  type SnapshotTaint,
  storeStamp,
  toSnapshotWrit,
  writeSnapshot,
} from "../hook/local.js";
import type { HookInput } from "../hook/protocol.js";
import type { Policy } from "../policy.js";
import { deciding, judgeFromSnapshot, policyOf } from "./hook-snapshot.js";

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
  const policy = await policyOf(opts.configFile);
  if (opts.databaseUrl === undefined) {
    const fast = await judgeFromSnapshot(policy, opts.dataDir, identity, input);
    if (fast !== undefined) return fast;
  }
  return judgeInFull(policy, opts, identity, input);
}

/**
 * In full, writ.yaml loaded here: what hook-snapshot.ts falls back on when the snapshot does not
 * hold (its bundle has its own copy of the policy's code, so it hands over the files, not a policy).
 */
export async function judgeOfflineInFull(
  opts: OfflineOptions,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict> {
  return judgeInFull(await policyOf(opts.configFile), opts, identity, input);
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
