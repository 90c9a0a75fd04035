/**
 * Shared set-up for the GitHub issuer's tests: a GitHub App key pair (PKCS#1 PEM, as GitHub hands
 * it out), the fake GitHub holding its public key, the in-memory ledger, an audit collector and
 * writs to redeem.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { githubIssuer } from "../../src/downstream/github.js";
import type { DownstreamIssuer, GithubDownstreamConfig, WritForIssuer } from "../../src/downstream/types.js";
import {
  type FakeGithub,
  type FakeGithubOptions,
  type FakeInstallation,
  startFakeGithub,
} from "../fakes/github.js";
import { type MemoryLedger, memoryLedger } from "../fakes/ledger.js";

export const APP_ID = 424242;
export const INSTALLATION = 7001;

export function appKeyPair(bits = 2048): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  return {
    privatePem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export const KEYS = appKeyPair();
const dir = mkdtempSync(join(tmpdir(), "writ-gh-"));
export const KEY_FILE = join(dir, "app.pem");
writeFileSync(KEY_FILE, KEYS.privatePem, { mode: 0o600 });

export const DEFAULT_INSTALLATION: FakeInstallation = {
  id: INSTALLATION,
  account: "acme",
  permissions: {
    contents: "write",
    deployments: "write",
    statuses: "write",
    issues: "write",
    pull_requests: "write",
    administration: "write",
    secrets: "write",
    workflows: "write",
    members: "read",
  },
  repositories: ["checkout", "payments", "search", "svc-a", "svc-b", "website"],
};

export interface AuditEntry {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface Rig {
  readonly fake: FakeGithub;
  readonly ledger: MemoryLedger;
  readonly audits: AuditEntry[];
  readonly cfg: GithubDownstreamConfig;
  issuer: DownstreamIssuer;
  /** A fresh issuer on the same ledger (a restarted server). */
  restart(): Promise<DownstreamIssuer>;
  close(): Promise<void>;
}

export async function rig(
  opts: {
    installations?: FakeInstallation[];
    now?: () => number;
    beforeMint?: () => Promise<void>;
    tamper?: FakeGithubOptions["tamper"];
  } = {},
): Promise<Rig> {
  const fake = await startFakeGithub({
    appId: APP_ID,
    publicKey: KEYS.publicPem,
    installations: opts.installations ?? [DEFAULT_INSTALLATION],
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.beforeMint ? { beforeMint: opts.beforeMint } : {}),
    ...(opts.tamper ? { tamper: opts.tamper } : {}),
  });
  const ledger = memoryLedger();
  const audits: AuditEntry[] = [];
  const cfg: GithubDownstreamConfig = {
    appId: String(APP_ID),
    installationId: INSTALLATION,
    privateKey: { file: KEY_FILE },
    apiUrl: fake.url,
  };
  const deps = {
    ledger,
    audit: async (type: string, data: Record<string, unknown>) => {
      audits.push({ type, data });
    },
  };
  const r: Rig = {
    fake,
    ledger,
    audits,
    cfg,
    issuer: await githubIssuer(cfg, deps),
    async restart() {
      r.issuer = await githubIssuer(cfg, deps);
      return r.issuer;
    },
    close: () => fake.close(),
  };
  return r;
}

export function writ(
  grants: { action: string; resource: string }[],
  over: Partial<WritForIssuer> = {},
): WritForIssuer {
  const now = Date.now();
  return {
    id: `writ-${randomUUID()}`,
    agent: "release-bot",
    playbook: "deploy-service",
    environment: "prod",
    params: {},
    grants,
    denies: [],
    issuedAt: new Date(now),
    expiresAt: new Date(now + 20 * 60_000),
    ...over,
  };
}
