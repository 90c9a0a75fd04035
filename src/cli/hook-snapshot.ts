/**
 * A hook call judged offline on the decision snapshot (hook/local.ts): writ.yaml loaded, and while
 * the snapshot still holds — writ.yaml and the store unchanged since a full run left it — the call
 * is decided on it and its records spooled, without opening the store. Otherwise the call runs in
 * full (hook-offline.ts: the store opened, the spool imported, a new snapshot left).
 *
 * The build bundles this file into one CommonJS file (dist/cli/hook-snapshot.cjs,
 * scripts/bundle-fast.mjs), which the hook's bundle requires when there is no server: a call on the
 * snapshot then loads no ES module and resolves no module graph. The full run stays the compiled ES
 * module (hook-offline.js), imported only when the snapshot does not hold.
 */
import { homedir } from "node:os";
import { formatProblem } from "../config/index.js";
import { WritError } from "../core/index.js";
import type { HookEngineDeps, HookIdentity, Verdict } from "../hook/engine.js";
import {
  localTaints,
  MAX_SPOOL,
  openSpool,
  readSnapshot,
  snapshotWrits,
  storeStamp,
  withSpoolLock,
} from "../hook/local.js";
import type { HookInput } from "../hook/protocol.js";
import { decisionPoint, loadPolicy, type Policy } from "../policy.js";
import type { OfflineOptions } from "./hook-offline.js";

/** writ.yaml loaded, or `ERR_CONFIG_INVALID` with its first error. */
export async function policyOf(configFile: string): Promise<Policy> {
  const { policy, problems } = await loadPolicy(configFile);
  if (!policy) {
    const first = problems.find((p) => p.severity === "error");
    throw new WritError("ERR_CONFIG_INVALID", first ? formatProblem(first) : "writ.yaml is not valid");
  }
  return policy;
}

/** On the snapshot when it holds, else in full. */
export async function judgeLocal(
  opts: OfflineOptions,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict> {
  if (opts.databaseUrl === undefined) {
    const fast = await judgeFromSnapshot(await policyOf(opts.configFile), opts.dataDir, identity, input);
    if (fast !== undefined) return fast;
  }
  const { judgeOfflineInFull } = await import("./hook-offline.js");
  return judgeOfflineInFull(opts, identity, input);
}

/** The decision point's part of the engine's dependencies. */
export function deciding(policy: Policy, writs: Parameters<typeof decisionPoint>[1]) {
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
export async function judgeFromSnapshot(
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
