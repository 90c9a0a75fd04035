/**
 * Shared by the Kubernetes issuer's tests: the in-memory ledger of test/fakes/ledger.ts with two
 * helpers, a writ builder, and the issuer wired to a fake API server.
 */
import type { RuleText } from "../../src/core/index.js";
import { kubernetesIssuerWith } from "../../src/downstream/kubernetes.js";
import type {
  DownstreamIssuer,
  DownstreamRecord,
  KubernetesDownstreamConfig,
  WritForIssuer,
} from "../../src/downstream/types.js";
import { type FakeKubernetes, startFakeKubernetes } from "../fakes/kubernetes.js";
import { type MemoryLedger, memoryLedger } from "../fakes/ledger.js";

export { type MemoryLedger, memoryLedger };

/** The records not yet removed. */
export function live(ledger: MemoryLedger): DownstreamRecord[] {
  return ledger.all().filter((r) => r.state !== "removed");
}

/** One record by id. */
export function record(ledger: MemoryLedger, id: string): DownstreamRecord | undefined {
  return ledger.all().find((r) => r.id === id);
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
  const ledger = memoryLedger();
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
