/**
 * A hook call judged in this process against the local store (embedded PGlite in the data folder,
 * or `WRIT_DATABASE_URL`): writ.yaml loaded, the agent's active writs read, taint read and written,
 * the decision audited, the store closed. Exact, and slow to start (the store and Cedar load per
 * call): `writ serve` and `WRIT_SERVER` are the fast way (docs/hooks.md). The embedded store is
 * locked by a running server: then this fails, and the hook refuses.
 */
import { homedir } from "node:os";
import { loadPolicy } from "../app.js";
import { formatProblem } from "../config/index.js";
import { WritError } from "../core/index.js";
import type { HookIdentity, Verdict } from "../hook/index.js";
import type { HookInput } from "../hook/protocol.js";

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
  const [{ policy, problems }, store, audit, gateway, { decisionPoint }, { hookEngine }] = await Promise.all([
    loadPolicy(opts.configFile),
    import("../store/index.js"),
    import("../audit/index.js"),
    import("../gateway/index.js"),
    import("../app.js"),
    import("../hook/index.js"),
  ]);
  if (!policy) {
    const first = problems.find((p) => p.severity === "error");
    throw new WritError("ERR_CONFIG_INVALID", first ? formatProblem(first) : "writ.yaml is not valid");
  }
  const db = await store.openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  try {
    await db.migrate();
    const log = audit.openAuditLog({ repo: db.audit, signer: await audit.loadSigningKey(opts.dataDir) });
    const pdp = decisionPoint(policy, async (agent) =>
      (await db.writs.listUnexpired(agent, new Date())).map(store.toActiveWrit),
    );
    const engine = hookEngine({
      decide: async (req) => {
        await policy.prepare(req.action);
        return pdp.decide(req);
      },
      region: async (req) => {
        await policy.prepare(req.action);
        return pdp.region(req);
      },
      taints: gateway.taints(db.db),
      audit: (type, data) => log.append(type, data),
      hooks: policy.config.hooks,
      home: homedir(),
    });
    const v = await engine.judge(identity, input);
    await log.settled();
    return v;
  } finally {
    await db.close();
  }
}
