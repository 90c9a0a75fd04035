/**
 * Shared by the Kubernetes issuer's tests: an in-memory `DownstreamLedger` (until the store's ledger
 * lands; it keeps the same contract: intent, created, removed, due, ofWrit), a writ builder, and the
 * issuer wired to a fake API server.
 */
import type { RuleText } from "../../src/core/index.js";
import { kubernetesIssuerWith } from "../../src/downstream/kubernetes.js";
import type {
  DownstreamIssuer,
  DownstreamLedger,
  DownstreamRecord,
  KubernetesDownstreamConfig,
  WritForIssuer,
} from "../../src/downstream/types.js";
import { type FakeKubernetes, startFakeKubernetes } from "../fakes/kubernetes.js";

export class MemoryLedger implements DownstreamLedger {
  readonly records = new Map<string, DownstreamRecord>();
  readonly revoked = new Set<string>();
  async intend(r: Omit<DownstreamRecord, "state" | "createdAt">): Promise<DownstreamRecord> {
    if (this.records.has(r.id)) throw new Error(`duplicate record ${r.id}`);
    const rec: DownstreamRecord = { ...r, state: "intended", createdAt: new Date() };
    this.records.set(r.id, rec);
    return rec;
  }
  async created(id: string, locator?: Readonly<Record<string, unknown>>): Promise<void> {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    if (r.state === "removed") throw new Error(`record ${id} already removed`);
    this.records.set(id, { ...r, state: "created", locator: locator ?? r.locator });
  }
  async removed(id: string): Promise<void> {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    this.records.set(id, { ...r, state: "removed" });
  }
  async due(now: Date): Promise<readonly DownstreamRecord[]> {
    return [...this.records.values()].filter(
      (r) => r.state !== "removed" && (r.expiresAt <= now || this.revoked.has(r.writ)),
    );
  }
  async ofWrit(writ: string): Promise<readonly DownstreamRecord[]> {
    return [...this.records.values()].filter((r) => r.writ === writ);
  }
  live(): DownstreamRecord[] {
    return [...this.records.values()].filter((r) => r.state !== "removed");
  }
}

let seq = 0;
export function writ(grants: RuleText[], over: Partial<WritForIssuer> = {}): WritForIssuer {
  const now = new Date();
  seq++;
  return {
    id: `writ_T${seq}x-${Math.random().toString(36).slice(2, 8)}`,
    agent: "deployer",
    playbook: "rollout",
    environment: "prod",
    params: {},
    grants,
    denies: [],
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 3600_000),
    ...over,
  };
}

export interface Harness {
  readonly fake: FakeKubernetes;
  readonly ledger: MemoryLedger;
  readonly audit: { type: string; data: Record<string, unknown> }[];
  readonly issuer: DownstreamIssuer;
  readonly cfg: KubernetesDownstreamConfig;
}

export async function harness(
  over: Partial<KubernetesDownstreamConfig> = {},
  opts: { timeoutMs?: number } = {},
): Promise<Harness> {
  const fake = await startFakeKubernetes();
  for (const ns of ["agents", "shop", "prod", "dev"]) fake.seed("", "namespaces", { metadata: { name: ns } });
  fake.seed("", "serviceaccounts", { metadata: { name: "deployer", namespace: "agents" } });
  fake.seed("", "serviceaccounts", { metadata: { name: "agent-fixer", namespace: "agents" } });
  const ledger = new MemoryLedger();
  const audit: Harness["audit"] = [];
  const cfg: KubernetesDownstreamConfig = {
    server: fake.url,
    caFile: fake.caFile,
    token: { env: "K8S_BROKER_TOKEN" },
    serviceAccounts: new Map([
      ["deployer", "agents/deployer"],
      ["*", "agents/agent-{agent}"],
    ]),
    ...over,
  };
  const issuer = await kubernetesIssuerWith(
    cfg,
    {
      ledger,
      audit: async (type, data) => {
        audit.push({ type, data });
      },
      env: { K8S_BROKER_TOKEN: fake.adminToken },
    },
    opts,
  );
  return { fake, ledger, audit, issuer, cfg };
}
