/**
 * The AWS issuer end to end against the fake STS/IAM, driven by the real SDK clients: issue → use →
 * kill/revoke → the next use refused; the 900 s floor; refusals; the fake's own checks.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsIssuer, DENY_KIND, SESSION_KIND } from "../../src/downstream/aws.js";
import type { AwsDownstreamConfig, WritForIssuer } from "../../src/downstream/types.js";
import { type FakeAws, startFakeAws } from "../fakes/aws.js";
import { MemoryLedger } from "../fakes/ledger-aws.js";
import { credentialOf, refusalOf } from "./outcome.js";

const ACCOUNT = "111122223333";
const ROLE = `arn:aws:iam::${ACCOUNT}:role/writ-reports`;
const NARROW_ROLE = `arn:aws:iam::${ACCOUNT}:role/writ-narrow`;
const BROKER = {
  userArn: `arn:aws:iam::${ACCOUNT}:user/writ-broker`,
  accessKeyId: "AKIAWRITBROKER000001",
  secretAccessKey: "broker-secret-key-for-tests-only-0001",
};
const ENV = { AWS_ACCESS_KEY_ID: BROKER.accessKeyId, AWS_SECRET_ACCESS_KEY: BROKER.secretAccessKey };

const trust = (actions: string[]) => ({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { AWS: BROKER.userArn }, Action: actions }],
});
const FULL_TRUST = trust(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]);
const ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
};

let fake: FakeAws;
let dir: string;

function authzFile(): string {
  const file = join(dir, "authz.json");
  const role = (arn: string, name: string) => ({
    Path: "/",
    RoleName: name,
    Arn: arn,
    AssumeRolePolicyDocument: FULL_TRUST,
    RolePolicyList: [{ PolicyName: "s3", PolicyDocument: ROLE_POLICY }],
    AttachedManagedPolicies: [],
    InstanceProfileList: [],
    Tags: [],
  });
  writeFileSync(
    file,
    JSON.stringify({
      UserDetailList: [],
      GroupDetailList: [],
      RoleDetailList: [role(ROLE, "writ-reports"), role(NARROW_ROLE, "writ-narrow")],
      Policies: [],
    }),
  );
  return file;
}

function config(extra: Partial<AwsDownstreamConfig> = {}): AwsDownstreamConfig {
  return {
    mode: "role-session",
    region: "eu-west-1",
    roles: new Map([
      ["*", ROLE],
      ["narrow", NARROW_ROLE],
    ]),
    endpoint: fake.endpoint,
    credentials: { from: "env" },
    authorizationDetails: authzFile(),
    ...extra,
  };
}

let n = 0;
function writ(over: Partial<WritForIssuer> = {}, now = new Date()): WritForIssuer {
  n++;
  return {
    id: `writ_test${n}AAAAAAAAAAAAAAAAA`,
    agent: "report-bot",
    playbook: "export-reports",
    environment: "prod",
    params: {},
    grants: [{ action: "aws:s3:GetObject|ListBucket", resource: "arn:aws:s3:::acme-reports/*" }],
    denies: [{ action: "aws:iam:*", resource: "*" }],
    sponsor: "alice",
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 1800_000),
    ...over,
  };
}

function setup(extra: Partial<AwsDownstreamConfig> = {}) {
  const ledger = new MemoryLedger();
  const audit: { type: string; data: Record<string, unknown> }[] = [];
  return {
    ledger,
    audit,
    issuer: awsIssuer(config(extra), {
      ledger,
      audit: async (type, data) => {
        audit.push({ type, data });
      },
      env: ENV,
    }),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "writ-aws-"));
  fake = await startFakeAws({
    broker: BROKER,
    roles: [
      { arn: ROLE, trust: FULL_TRUST, policies: [ROLE_POLICY], maxSessionDuration: 3600 },
      { arn: NARROW_ROLE, trust: trust(["sts:AssumeRole"]), policies: [ROLE_POLICY] },
    ],
  });
});
afterAll(async () => {
  await fake.stop();
});

const refusedWith = refusalOf;

describe("role-session issuance", () => {
  it("assumes the role with the writ's session policy, source identity, tags and lifetime", async () => {
    const { issuer, ledger, audit } = setup();
    const now = new Date();
    const w = writ({}, now);
    const cred = await credentialOf((await issuer).issue(w, now));
    if (cred.system !== "aws") throw new Error("not aws");
    const s = fake.sessions.find((x) => x.accessKeyId === cred.accessKeyId)!;
    expect(s.roleArn).toBe(ROLE);
    expect(s.sourceIdentity).toBe("report-bot");
    expect(s.tags).toEqual({
      "writ:id": w.id,
      "writ:agent": "report-bot",
      "writ:playbook": "export-reports",
      "writ:sponsor": "alice",
    });
    expect(s.sessionName).toBe(w.id);
    expect(s.durationSeconds).toBe(1800);
    expect(JSON.parse(s.policyText!)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: ["s3:GetObject", "s3:ListBucket"],
          Resource: "arn:aws:s3:::acme-reports/*",
        },
      ],
    });
    expect(cred.notes).toEqual([]);
    // the role alone could do all of s3; the session only what the writ grants
    expect(fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/q3.csv").allowed).toBe(true);
    expect(fake.use(cred.accessKeyId, "s3:DeleteObject", "arn:aws:s3:::acme-reports/q3.csv").allowed).toBe(
      false,
    );
    expect(fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::payroll/q3.csv").allowed).toBe(false);
    const [rec] = ledger.of(SESSION_KIND);
    expect(rec).toMatchObject({ state: "created", writ: w.id, agent: "report-bot", expiresAt: w.expiresAt });
    expect(rec!.locator).toMatchObject({ roleArn: ROLE, accessKeyId: cred.accessKeyId });
    expect(JSON.stringify([...ledger.records.values()])).not.toContain(cred.secretAccessKey);
    expect(JSON.stringify(audit)).not.toContain(cred.secretAccessKey);
    expect(JSON.stringify(audit)).not.toContain(cred.sessionToken);
    expect(audit.map((a) => a.type)).toContain("downstream.aws.assume_role");
  });

  it("asks STS for 900 s when the writ is shorter, says so, and ends the session by revocation at the writ's end", async () => {
    const { issuer: p, ledger } = setup();
    const issuer = await p;
    const now = new Date();
    const w = writ({ expiresAt: new Date(now.getTime() + 300_000) }, now);
    const cred = await credentialOf(issuer.issue(w, now));
    if (cred.system !== "aws") throw new Error("not aws");
    const s = fake.sessions.find((x) => x.accessKeyId === cred.accessKeyId)!;
    expect(s.durationSeconds).toBe(900);
    expect(cred.notes.join(" ")).toMatch(/900 s.*300 s left/);
    const [rec] = ledger.of(SESSION_KIND);
    expect(rec!.expiresAt).toEqual(w.expiresAt);
    // the reaper at the writ's expiry: the record is due, revoke puts the per-writ deny
    const due = await ledger.due(w.expiresAt);
    expect(due.map((r) => r.id)).toContain(rec!.id);
    await issuer.revoke(rec!, new Date());
    expect(fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
    const deny = ledger.of(DENY_KIND)[0]!;
    expect(deny.locator.policyName).toBe(`writ-deny-writ-${w.id}`);
    expect(deny.expiresAt.getTime()).toBe(s.expiresAt.getTime());
  });

  it("a writ longer than the role's MaxSessionDuration gets a session of IAM's default 3,600 s, and a note", async () => {
    const { issuer } = setup();
    const now = new Date();
    const cred = await credentialOf(
      (await issuer).issue(writ({ expiresAt: new Date(now.getTime() + 7200_000) }, now), now),
    );
    if (cred.system !== "aws") throw new Error("not aws");
    expect(fake.sessions.find((x) => x.accessKeyId === cred.accessKeyId)!.durationSeconds).toBe(3600);
    expect(fake.calls.some((c) => c.action === "AssumeRole" && c.code === "ValidationError")).toBe(true);
    expect(cred.notes.join(" ")).toContain("MaxSessionDuration");
  });

  it("kill of an agent: the very next use is refused (not at the session's expiry), the deny leaves once the longest session is over", async () => {
    const { issuer: p, ledger } = setup();
    const issuer = await p;
    const now = new Date();
    const cred = await credentialOf(issuer.issue(writ({ agent: "kill-me" }, now), now));
    const other = await credentialOf(issuer.issue(writ({ agent: "innocent" }, now), now));
    if (cred.system !== "aws" || other.system !== "aws") throw new Error("not aws");
    expect(fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(true);
    await issuer.kill({ agent: "kill-me" }, new Date());
    // the session is an hour long: refused now is the kill's deny, never its expiry
    const refused = fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a");
    expect(refused.allowed).toBe(false);
    expect(refused.reason).toMatch(/explicitly denied/);
    // narrowed: another agent's session on the same role still works
    expect(fake.use(other.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(true);
    const denies = ledger.of(DENY_KIND);
    expect(denies.map((d) => d.locator.roleArn).sort()).toEqual([ROLE, NARROW_ROLE].sort());
    const d = denies.find((x) => x.locator.roleArn === ROLE)!;
    expect(d.expiresAt.getTime() - now.getTime()).toBeGreaterThanOrEqual(43_200_000 - 5000);
    expect(fake.inlinePolicies(ROLE).has("writ-deny-agent-kill-me")).toBe(true);
    // asked early (listed before its time): the deny stays, a fresh record carries it on
    await issuer.revoke(d, new Date());
    expect(fake.inlinePolicies(ROLE).has("writ-deny-agent-kill-me")).toBe(true);
    // at its expiry the reaper removes it
    await ledger.removed(d.id);
    const fresh = ledger.of(DENY_KIND).find((x) => x.state !== "removed" && x.locator.roleArn === ROLE)!;
    await issuer.revoke(fresh, new Date(d.expiresAt.getTime() + 1));
    expect(fake.inlinePolicies(ROLE).has("writ-deny-agent-kill-me")).toBe(false);
    // and a session issued after the kill is not affected by it
    await new Promise((r) => setTimeout(r, 1100));
    const later = await credentialOf(issuer.issue(writ({ agent: "kill-me" }), new Date()));
    await issuer.kill({ agent: "someone-else" }, new Date());
    if (later.system !== "aws") throw new Error("not aws");
    expect(fake.use(later.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(true);
  });

  it("after an agent's kill, revoking its writs' sessions adds no per-writ deny: the agent's deny already stops them", async () => {
    const { issuer: p, ledger, audit } = setup();
    const issuer = await p;
    const creds = [];
    for (let i = 0; i < 3; i++)
      creds.push(await credentialOf(issuer.issue(writ({ agent: "many-writs" }), new Date())));
    const before = new Set(fake.inlinePolicies(ROLE).keys());
    await issuer.kill({ agent: "many-writs" }, new Date());
    const sessions = ledger.of(SESSION_KIND).filter((r) => r.agent === "many-writs");
    expect(sessions).toHaveLength(3);
    for (const r of sessions) await issuer.revoke(r, new Date());
    const added = [...fake.inlinePolicies(ROLE).keys()].filter((k) => !before.has(k));
    expect(added).toEqual(["writ-deny-agent-many-writs"]);
    expect(audit.filter((a) => a.type === "downstream.aws.deny_covered")).toHaveLength(3);
    for (const c of creds) {
      if (c.system !== "aws") throw new Error("not aws");
      expect(fake.use(c.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
    }
    // the deny records outlive their writ: due by their own expiry only
    expect(ledger.of(DENY_KIND).every((d) => d.outlivesWrit === true)).toBe(true);
    // a session of another agent revoked later still gets its own deny
    const other = await credentialOf(issuer.issue(writ({ agent: "bystander" }), new Date()));
    const rec = ledger.of(SESSION_KIND).find((r) => r.agent === "bystander")!;
    await issuer.revoke(rec, new Date());
    if (other.system !== "aws") throw new Error("not aws");
    expect(fake.use(other.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
    expect([...fake.inlinePolicies(ROLE).keys()]).toContain(`writ-deny-writ-${rec.writ}`);
  });

  it("kill of one writ denies that writ's sessions only", async () => {
    const { issuer: p } = setup();
    const issuer = await p;
    const a = writ();
    const b = writ();
    const ca = await credentialOf(issuer.issue(a, new Date()));
    const cb = await credentialOf(issuer.issue(b, new Date()));
    if (ca.system !== "aws" || cb.system !== "aws") throw new Error("not aws");
    await issuer.kill({ writ: a.id }, new Date());
    expect(fake.use(ca.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
    expect(fake.use(cb.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(true);
    expect(
      JSON.parse(fake.inlinePolicies(ROLE).get(`writ-deny-writ-${a.id}`)!).Statement[0].Condition,
    ).toMatchObject({
      StringEquals: { "aws:PrincipalTag/writ:id": a.id },
    });
  });
});

describe("refusals", () => {
  it("a bad secret: STS answers SignatureDoesNotMatch, the intent is closed", async () => {
    const ledger = new MemoryLedger();
    const issuer = await awsIssuer(config(), {
      ledger,
      audit: async () => {},
      env: { ...ENV, AWS_SECRET_ACCESS_KEY: "not-the-secret" },
    });
    const r = await refusedWith(issuer.issue(writ(), new Date()));
    expect(r.code).toBe("ERR_DOWNSTREAM_REFUSED");
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain("SignatureDoesNotMatch");
    expect(ledger.of(SESSION_KIND).map((x) => x.state)).toEqual(["removed"]);
  });

  it("missing broker credentials are a config error at start", async () => {
    const r = await refusedWith(
      awsIssuer(config(), { ledger: new MemoryLedger(), audit: async () => {}, env: {} }),
    );
    expect(r.code).toBe("ERR_DOWNSTREAM_CONFIG");
    expect(r.message).toContain("AWS_ACCESS_KEY_ID");
  });

  it("a role missing from the authorization details is a config error", async () => {
    const r = await refusedWith(
      awsIssuer(config({ roles: new Map([["*", `arn:aws:iam::${ACCOUNT}:role/ghost`]]) }), {
        ledger: new MemoryLedger(),
        audit: async () => {},
        env: ENV,
      }),
    );
    expect(r.code).toBe("ERR_DOWNSTREAM_CONFIG");
    expect(r.message).toContain("ghost");
  });

  it("a session policy over 2,048 characters is refused before STS is called", async () => {
    const { issuer } = setup();
    const grants = Array.from({ length: 40 }, (_, i) => ({
      action: `aws:s3:GetObject`,
      resource: `arn:aws:s3:::bucket-number-${i}-with-a-long-name/*`,
    }));
    const before = fake.calls.length;
    const r = await refusedWith((await issuer).issue(writ({ grants }), new Date()));
    expect(r.reason).toBe("downstream_policy_too_large");
    expect(fake.calls.length).toBe(before);
  });

  it("a writ without AWS grants is refused", async () => {
    const { issuer } = setup();
    const r = await refusedWith(
      (await issuer).issue(
        writ({ grants: [{ action: "github:contents:read", resource: "acme/app" }] }),
        new Date(),
      ),
    );
    expect(r.reason).toBe("downstream_no_grants");
  });

  it("a trust policy without sts:TagSession: AccessDenied from STS", async () => {
    const { issuer } = setup();
    const r = await refusedWith((await issuer).issue(writ({ playbook: "narrow" }), new Date()));
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toMatch(/AccessDenied.*sts:TagSession/);
  });

  it("web-identity mode needs no AWS keys, and without the server's issuer to sign it mints nothing", async () => {
    const issuer = await awsIssuer(config({ mode: "web-identity" }), {
      ledger: new MemoryLedger(),
      audit: async () => {},
      env: {},
    });
    const r = await refusedWith(issuer.issue(writ(), new Date()));
    expect(r.reason).toBe("downstream_not_configured");
    expect(r.message).toContain("web-identity tokens are signed by `writ serve`'s environment issuer");
  });
});

describe("the fake STS checks what STS checks", () => {
  const client = () =>
    new STSClient({
      region: "us-east-1",
      endpoint: fake.endpoint,
      credentials: { accessKeyId: BROKER.accessKeyId, secretAccessKey: BROKER.secretAccessKey },
      maxAttempts: 1,
    });
  const ask = async (input: Partial<ConstructorParameters<typeof AssumeRoleCommand>[0]>) => {
    try {
      await client().send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: "probe", ...input }));
      return "ok";
    } catch (err) {
      return (err as { name: string }).name;
    }
  };
  it("answers a well-formed request", async () => {
    expect(await ask({ DurationSeconds: 900 })).toBe("ok");
  });
  it("refuses invalid JSON and unknown elements as MalformedPolicyDocument", async () => {
    expect(await ask({ Policy: "{not json" })).toMatch(/^MalformedPolicyDocument/);
    expect(
      await ask({
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*", Colour: "red" }],
        }),
      }),
    ).toMatch(/^MalformedPolicyDocument/);
  });
  it("refuses a policy over 2,048 characters and a duration under 900 s as ValidationError", async () => {
    const big = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: "s3:GetObject",
          Resource: Array.from({ length: 80 }, (_, i) => `arn:aws:s3:::b${i}-abcdefghij/*`),
        },
      ],
    });
    expect(big.length).toBeGreaterThan(2048);
    expect(await ask({ Policy: big })).toBe("ValidationError");
    expect(await ask({ DurationSeconds: 899 })).toBe("ValidationError");
    expect(await ask({ DurationSeconds: 7200 })).toBe("ValidationError"); // above the role's MaxSessionDuration
  });
  it("refuses a packed policy + tags beyond the budget as PackedPolicyTooLarge", async () => {
    const tags = Array.from({ length: 40 }, (_, i) => ({
      Key: `k${i}`,
      Value: randomBytes(100).toString("hex"),
    }));
    expect(
      await ask({
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
        }),
        Tags: tags,
      }),
    ).toMatch(/^PackedPolicyTooLarge/);
  });
  it("refuses a wrong signature", async () => {
    const bad = new STSClient({
      region: "us-east-1",
      endpoint: fake.endpoint,
      credentials: { accessKeyId: BROKER.accessKeyId, secretAccessKey: "wrong" },
      maxAttempts: 1,
    });
    await expect(
      bad.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: "probe" })),
    ).rejects.toMatchObject({
      name: "SignatureDoesNotMatch",
    });
  });
});

describe("crash and restart", () => {
  it("a crash between STS's answer and `created`: after restart the reaper's revoke stops the session", async () => {
    class CrashingLedger extends MemoryLedger {
      override async created(): Promise<void> {
        throw new Error("process killed");
      }
    }
    const ledger = new CrashingLedger();
    const before = await awsIssuer(config(), { ledger, audit: async () => {}, env: ENV });
    const now = new Date();
    const w = writ({ expiresAt: new Date(now.getTime() + 120_000) }, now);
    await expect(before.issue(w, now)).rejects.toThrow("process killed");
    const session = fake.sessions.at(-1)!;
    expect(session.tags["writ:id"]).toBe(w.id);
    const [rec] = ledger.of(SESSION_KIND);
    expect(rec!.state).toBe("intended");
    // restart: a new issuer over the same ledger; the reaper finds the record due at the writ's end
    const after = await awsIssuer(config(), { ledger: new MemoryLedger(), audit: async () => {}, env: ENV });
    const due = await ledger.due(w.expiresAt);
    expect(due.map((r) => r.id)).toEqual([rec!.id]);
    await after.revoke(rec!, new Date());
    expect(fake.use(session.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
  });
});

describe("profile credentials", () => {
  it("a profile that does not exist is a config error at start", async () => {
    const r = await refusedWith(
      awsIssuer(config({ credentials: { from: "profile", profile: "writ-test-no-such-profile" } }), {
        ledger: new MemoryLedger(),
        audit: async () => {},
        env: {},
      }),
    );
    expect(r.code).toBe("ERR_DOWNSTREAM_CONFIG");
    expect(r.message).toContain("writ-test-no-such-profile");
  });
});

// the time from kill to first refused use is a figure of bench/downstream-creds.bench.ts, beside its 1 s limit
describe("kill → first refused use, again and again", () => {
  it("each of 20 agents' kills refuses its very next use", async () => {
    const { issuer: p } = setup();
    const issuer = await p;
    for (let i = 0; i < 20; i++) {
      const agent = `p99-agent-${i}`;
      const cred = await credentialOf(issuer.issue(writ({ agent }), new Date()));
      if (cred.system !== "aws") throw new Error("not aws");
      expect(fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(true);
      await issuer.kill({ agent }, new Date());
      const refused = fake.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a");
      expect(refused.allowed, agent).toBe(false);
      expect(refused.reason, agent).toMatch(/explicitly denied/);
    }
  });
});

describe("a role whose inline-policy space is full", () => {
  it("a narrow kill that IAM refuses with LimitExceeded falls back to the deny for every older session", async () => {
    const role = `arn:aws:iam::${ACCOUNT}:role/writ-crowded`;
    const own = await startFakeAws({
      broker: BROKER,
      roles: [{ arn: role, trust: FULL_TRUST, policies: [ROLE_POLICY] }],
    });
    try {
      const ledger = new MemoryLedger();
      const audit: string[] = [];
      const issuer = await awsIssuer(
        {
          ...config(),
          roles: new Map([["*", role]]),
          endpoint: own.endpoint,
          authorizationDetails: undefined,
        },
        { ledger, audit: async (t) => void audit.push(t), env: ENV },
      );
      const cred = await credentialOf(issuer.issue(writ({ agent: "last-agent" }), new Date()));
      if (cred.system !== "aws") throw new Error("not aws");
      let i = 0;
      while (!audit.includes("downstream.aws.deny_widened") && i < 100) {
        await issuer.kill({ agent: `filler-agent-with-a-long-name-${i}` }, new Date());
        i++;
      }
      expect(own.calls.some((c) => c.code === "LimitExceeded")).toBe(true);
      // the kill that hit the limit still stopped every older session of the role, last-agent's too
      const docs = [...own.inlinePolicies(role).values()].map((t) => JSON.parse(t).Statement[0].Condition);
      expect(docs.some((c) => c.StringEquals === undefined && c.DateLessThan !== undefined)).toBe(true);
      expect(own.use(cred.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/a").allowed).toBe(false);
    } finally {
      await own.stop();
    }
  });
});
