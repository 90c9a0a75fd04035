/**
 * The gateway in process, on the real store (embedded), audit log, decision point, approval
 * service and kill switch, with a clock the test controls: what `writ gateway --stdio` builds,
 * minus the transport, so a test calls `gateway.callTool` directly and moves time by hand.
 */
import { createHash } from "node:crypto";
import { loadPolicy, type Policy } from "../../src/app.js";
import { canonicalJson, openAuditLog, toJsonValue } from "../../src/audit/index.js";
import { approvalService, killSwitch } from "../../src/broker/index.js";
import {
  createGateway,
  type DownstreamIssuers,
  envResolver,
  type Gateway,
  storeSpendUse,
} from "../../src/gateway/index.js";
import { DecisionPoint } from "../../src/pdp/index.js";
import { openStore, type Store, toActiveWrit } from "../../src/store/index.js";

export interface InProcess {
  readonly gateway: Gateway;
  readonly store: Store;
  readonly audit: ReturnType<typeof openAuditLog>;
  readonly policy: Policy;
  readonly approvals: ReturnType<typeof approvalService>;
  /** The gateway's clock: `clock.now` is what it reads; move it with `clock.advance(ms)`. */
  readonly clock: { now: Date; advance(ms: number): void };
  /** A second gateway process on the same store (its own memory, upstreams and sessions). */
  another(): Promise<Gateway>;
  close(): Promise<void>;
}

export async function inProcessGateway(
  config: string,
  dataDir: string,
  opts: { downstream?: DownstreamIssuers } = {},
): Promise<InProcess> {
  const { policy, problems } = await loadPolicy(config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  const clock = {
    now: new Date(),
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms);
    },
  };
  const now = () => clock.now;
  const store = await openStore({ dataDir });
  await store.migrate();
  const log = openAuditLog({ repo: store.audit, clock: now });
  const audit = (type: string, data: Record<string, unknown>) => log.append(type, data);
  const pdp = new DecisionPoint(policy.config, {
    vocab: policy.vocab,
    guardrails: policy.guardrails,
    writs: async (agent) => (await store.writs.listActive(agent, now())).map(toActiveWrit),
  });
  const approvals = approvalService(store, { audit: log });
  const build = () =>
    createGateway({
      config: policy.config,
      pdp,
      store,
      audit,
      approvals,
      kill: killSwitch(store),
      digest: (v) =>
        `sha256:${createHash("sha256")
          .update(canonicalJson(toJsonValue(v)))
          .digest("hex")}`,
      spendUse: storeSpendUse(store, audit, now),
      resolve: envResolver(process.env),
      version: "test",
      clock: now,
      upstreamStderr: "ignore",
      ...(opts.downstream ? { downstream: opts.downstream } : {}),
    });
  const gateway = await build();
  const others: Gateway[] = [];
  return {
    gateway,
    async another() {
      const g = await build();
      others.push(g);
      return g;
    },
    store,
    audit: log,
    policy,
    approvals,
    clock,
    async close() {
      for (const g of others) await g.close();
      await gateway.close();
      await store.close();
    },
  };
}
