/**
 * The loop closes in the analyzer (issue 11, section 4): CloudTrail calls made with a writ's role
 * session, and Kubernetes requests authorised by a writ's RoleBinding, are the writ's use — judged
 * against the writ's own playbook, with evidence naming the writ, its playbook and its sponsor —
 * and not the standing use of the role or service account. Fixtures and their labels:
 * test/fixtures/writ-attribution/ (labels.md).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  type DeclaredWork,
  declaredWork,
  defaultPlugins,
  type Finding,
  k8sAuditImporter,
  scanPaths,
  textInput,
  validWritIssue,
} from "../../src/analyzer/index.js";
import { cloudTrailImporter, normaliseRecord } from "../../src/analyzer/providers/aws/index.js";
import { loadPolicy } from "../../src/app.js";
import { sessionNameFor } from "../../src/downstream/aws/names.js";
import { objectName } from "../../src/downstream/kubernetes/names.js";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";

const DIR = join(ROOT, "test", "fixtures", "writ-attribution");
const ROLE = "arn:aws:iam::111122223333:role/writ-reports";
const ROLE_WORKLOAD = `aws:workload:${ROLE}`;
const W = {
  A: "writ_Qm9vdHN0cmFwUmVwb3J0cw",
  B: "writ_YmF0Y2hFeHBvcnQtMjAyNg",
  C: "writ_Zm9yZ2VkU2Vzc2lvbi1YWQ",
  D: "writ_bm9SZWNvcmRJbklucHV0",
  E: "writ_d3JvbmdQbGF5Ym9va0lE",
  K1: "writ_ZGVwbG95Q2hlY2tvdXQxMg",
  K2: "writ_cGF5bWVudHNSb2xsb3V0Mw",
};

let declared: Map<string, DeclaredWork>;
beforeAll(async () => {
  const loaded = await loadPolicy(join(DIR, "writ.yaml"));
  expect(loaded.policy).toBeDefined();
  declared = declaredWork(loaded.policy!.config);
});

const scan = (paths: string[], withConfig = true) =>
  scanPaths(
    paths.map((p) => join(DIR, p)),
    { plugins: defaultPlugins, ...(withConfig ? { declared } : {}) },
  );
const of = (r: AnalysisResult, workload: string, category?: string): Finding[] =>
  r.findings.filter((f) => f.workload.id === workload && (!category || f.category === category));
const actions = (fs: readonly Finding[]) => fs.map((f) => f.permission.action).sort();
const codes = (r: AnalysisResult) => r.problems.map((p) => p.code).sort();

describe("AWS: CloudTrail calls of writ role sessions", () => {
  let r: AnalysisResult;
  beforeAll(async () => {
    r = await scan(["aws"]);
  });

  it("reports the writ session's call outside its playbook, naming writ, playbook, sponsor and event", () => {
    const [f, ...more] = of(r, "writ:report-bot/export-reports");
    expect(more).toEqual([]);
    expect(f!.category).toBe("unjustified-use");
    expect(f!.permission).toEqual({
      action: "aws:s3:DeleteObject",
      resource: "arn:aws:s3:::acme-archive/2026-12-04/sales.csv",
    });
    expect(f!.writs).toEqual([
      { id: W.A, agent: "report-bot", playbook: "export-reports", sponsor: "alice@acme.example" },
    ]);
    expect(f!.workload.agent).toBe("report-bot");
    expect(f!.title).toContain(W.A);
    expect(f!.title).toContain("sponsor alice@acme.example");
    const [event, writ, reason] = f!.evidence;
    expect(event!.kind).toBe("event");
    expect(event!.label).toContain(`assumed-role/writ-reports/${W.A}`);
    expect(event!.label).toContain("aws:s3:DeleteObject");
    expect(event!.source?.file).toMatch(/20261205T1005Z_a1\.json$/);
    // The AssumeRole record that names the writ is in the other (later) file.
    expect(writ!.label).toContain("playbook `export-reports`");
    expect(writ!.label).toContain("sponsor `alice@acme.example`");
    expect(writ!.label).toContain("session tags of sts:AssumeRole");
    // …delivered gzip-compressed, as CloudTrail writes to S3.
    expect(writ!.source?.file).toMatch(/20261205T1010Z_b2\.json\.gz$/);
    expect(reason!.label).toContain("outside the grants of playbook `export-reports`");
    // Severity from the provider's risk, at least medium; the id is stable per playbook and action.
    expect(["medium", "high", "critical"]).toContain(f!.severity);
  });

  it("reports a writ whose tags claim a playbook the agent does not run", () => {
    const [f, ...more] = of(r, "writ:report-bot/deploy-service");
    expect(more).toEqual([]);
    expect(f!.writs).toEqual([
      { id: W.E, agent: "report-bot", playbook: "deploy-service", sponsor: "bob@acme.example" },
    ]);
    expect(f!.evidence.map((e) => e.label).join("\n")).toContain(
      "playbook `deploy-service` is not among the playbooks of agent `report-bot`",
    );
  });

  it("attributes nothing else: writ B stays inside its playbook; no other writ finding", () => {
    const writFindings = r.findings.filter((f) => f.writs !== undefined);
    expect(writFindings.flatMap((f) => f.writs!.map((w) => w.id)).sort()).toEqual([W.A, W.E].sort());
    expect(r.findings.some((f) => f.writs?.some((w) => w.id === W.B))).toBe(false);
    expect(r.workloadIds).toContain("writ:report-bot/export-reports");
  });

  it("does not attribute a session whose source identity contradicts its tags, nor one with no record", () => {
    expect(codes(r)).toEqual(["WARN_WRIT_ATTRIBUTION_MISMATCH", "WARN_WRIT_UNRESOLVED"]);
    const mismatch = r.problems.find((p) => p.code === "WARN_WRIT_ATTRIBUTION_MISMATCH")!;
    expect(mismatch.message).toContain(W.C);
    expect(mismatch.message).toContain("`mallory`");
    expect(r.problems.find((p) => p.code === "WARN_WRIT_UNRESOLVED")!.message).toContain(W.D);
    expect(r.findings.some((f) => f.writs?.some((w) => w.id === W.C || w.id === W.D))).toBe(false);
  });

  it("judges the role's standing use without the writs' calls", () => {
    // Counted as the role's own use: the forged session's PutObjectAcl and alice's GetObjectTagging.
    expect(actions(of(r, ROLE_WORKLOAD, "unjustified-use"))).toEqual([
      "aws:s3:GetObjectTagging",
      "aws:s3:PutObjectAcl",
    ]);
    const acl = of(r, ROLE_WORKLOAD, "unjustified-use").find(
      (f) => f.permission.action === "aws:s3:PutObjectAcl",
    )!;
    expect(acl.evidence[0]!.label).toContain(W.C);
    expect(acl.writs).toBeUndefined();
    // Writ A's DeleteObject is the writ's, not the role's: no standing finding for it.
    expect(actions(of(r, ROLE_WORKLOAD))).not.toContain("aws:s3:DeleteObject");
  });

  it("category 1: grants used through writs, or declared by their playbooks, are not unused excess", () => {
    const [unused, ...more] = of(r, ROLE_WORKLOAD, "unused-excess");
    expect(more).toEqual([]);
    expect(unused!.permission.action).toBe("aws:s3:DeleteBucket");
    // The role's replacement keeps what writs did inside their playbooks, not writ A's DeleteObject.
    const policy = JSON.parse(unused!.reduction.files[0]!.content) as { Statement: { Action: string[] }[] };
    const kept = policy.Statement.flatMap((st) => st.Action).sort();
    expect(kept).toContain("s3:PutObject");
    expect(kept).toContain("s3:GetObject");
    expect(kept).not.toContain("s3:DeleteObject");
  });

  it("without writ.yaml: nothing is judged, and writ use still needs the role's grants", async () => {
    const bare = await scan(["aws"], false);
    expect(bare.findings.filter((f) => f.category === "unjustified-use")).toEqual([]);
    const unused = actions(bare.findings.filter((f) => f.category === "unused-excess"));
    // No declared work to say ListBucket is needed; PutObject and DeleteObject were used by writs.
    expect(unused).toEqual(["aws:s3:DeleteBucket", "aws:s3:ListBucket"]);
    const policy = bare.findings.find((f) => f.category === "unused-excess")!.reduction.files[0]!.content;
    expect(policy).toContain("s3:DeleteObject");
  });

  it("with one file alone, a session whose AssumeRole is in the other is the role's own use, with a warning", async () => {
    const one = await scan([
      "aws/authorization-details.json",
      "aws/111122223333_CloudTrail_eu-west-2_20261205T1005Z_a1.json",
    ]);
    expect(one.findings.some((f) => f.writs?.some((w) => w.id === W.A))).toBe(false);
    const unresolved = one.problems.filter((p) => p.code === "WARN_WRIT_UNRESOLVED").map((p) => p.message);
    expect(unresolved.some((m) => m.includes(W.A))).toBe(true);
    // Fail closed: unattributed, its DeleteObject is judged as the role's standing use.
    expect(actions(of(one, ROLE_WORKLOAD, "unjustified-use"))).toContain("aws:s3:DeleteObject");
  });
});

describe("writ use joined to the agent's tool calls (OTLP traces)", () => {
  let r: AnalysisResult;
  beforeAll(async () => {
    r = await scan(["aws", "traces"]);
  });

  // Issue 12 changed this: a use inside the playbook, through a declared tool, is covered by
  // declared work and never category 2, even from a tainted prompt context; the taint only
  // qualifies the use outside the playbook (its reasons, its severity, its evidence).
  it("does not report use inside the playbook from a tainted prompt context; qualifies the use outside it", () => {
    const fs = of(r, "writ:report-bot/export-reports");
    expect(actions(fs)).toEqual(["aws:s3:DeleteObject"]);
    const del = fs[0]!;
    expect(del.title).toContain("outside the playbook's declared work");
    expect(del.writs?.map((w) => w.id)).toEqual([W.A]);
    expect(["high", "critical"]).toContain(del.severity);
    expect(del.evidence.map((e) => e.kind).slice(0, 3)).toEqual(["event", "tool-call", "context"]);
    expect(del.evidence[2]!.label).toContain("tainted by `web:fetch`");
    const reasons = del.evidence.filter((e) => e.ref === "reason").map((e) => e.label);
    expect(reasons[0]).toContain("outside the grants of playbook `export-reports`");
    expect(reasons.some((x) => x.includes("read untrusted input earlier"))).toBe(true);
  });

  it("leaves writ B alone: its calls come from a declared tool in a clean context", () => {
    expect(r.findings.some((f) => f.writs?.some((w) => w.id === W.B))).toBe(false);
  });
});

describe("CloudTrail records: what names a writ", () => {
  const ACCT = "111122223333";
  const session = (name: string, key: string, src?: string) => ({
    type: "AssumedRole",
    principalId: `AROAEXAMPLE:${name}`,
    arn: `arn:aws:sts::${ACCT}:assumed-role/writ-reports/${name}`,
    accountId: ACCT,
    accessKeyId: key,
    sessionContext: {
      sessionIssuer: { type: "Role", arn: ROLE, accountId: ACCT, userName: "writ-reports" },
      ...(src ? { sourceIdentity: src } : {}),
    },
  });
  const assume = (
    name: string,
    key: string,
    tags: Record<string, string>,
    extra: Record<string, unknown> = {},
  ) => ({
    eventTime: "2026-12-05T10:00:00Z",
    eventSource: "sts.amazonaws.com",
    eventName: "AssumeRole",
    userIdentity: { type: "IAMUser", arn: `arn:aws:iam::${ACCT}:user/writ-broker`, accountId: ACCT },
    requestParameters: {
      roleArn: ROLE,
      roleSessionName: name,
      sourceIdentity: "report-bot",
      tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    },
    responseElements: {
      credentials: { accessKeyId: key, expiration: "Dec 5, 2026, 10:30:00 AM" },
      assumedRoleUser: { arn: `arn:aws:sts::${ACCT}:assumed-role/writ-reports/${name}` },
    },
    requestID: `req-${name}`,
    ...extra,
  });
  const tags = (id: string) => ({
    "writ:id": id,
    "writ:agent": "report-bot",
    "writ:playbook": "export-reports",
  });

  it("reads the tags in either case, and only from a successful AssumeRole with all three writ tags", () => {
    const ok = normaliseRecord(assume("writ_x1", "ASIAX1", tags("writ_x1")), "t");
    expect(ok.writIssue).toEqual({
      writ: "writ_x1",
      agent: "report-bot",
      playbook: "export-reports",
      sessionArn: `arn:aws:sts::${ACCT}:assumed-role/writ-reports/writ_x1`,
      accessKeyId: "ASIAX1",
      sourceIdentity: "report-bot",
      roleArn: ROLE,
    });
    expect(
      normaliseRecord(assume("writ_x2", "ASIAX2", tags("writ_x2"), { errorCode: "AccessDenied" }), "t")
        .writIssue,
    ).toBeUndefined();
    // STS folds tag keys' case; two keys that fold together with different values name nothing.
    const upper = normaliseRecord(
      assume("writ_x5", "ASIAX5", {
        "Writ:Id": "writ_x5",
        "WRIT:AGENT": "report-bot",
        "writ:Playbook": "export-reports",
      }),
      "t",
    );
    expect(upper.writIssue?.writ).toBe("writ_x5");
    const twice = assume("writ_x6", "ASIAX6", tags("writ_x6"));
    twice.requestParameters.tags.push({ Key: "Writ:Id", Value: "writ_other" });
    expect(normaliseRecord(twice, "t").writIssue).toBeUndefined();
    const partial = tags("writ_x3") as Record<string, string>;
    delete partial["writ:playbook"];
    expect(normaliseRecord(assume("writ_x3", "ASIAX3", partial), "t").writIssue).toBeUndefined();
    expect(
      normaliseRecord(
        { ...assume("writ_x4", "ASIAX4", tags("writ_x4")), eventName: "AssumeRoleWithWebIdentity" },
        "t",
      ).writIssue,
    ).toBeUndefined();
  });

  it("holds only writ-named sessions with a source identity; two writs claiming one session attribute to neither", async () => {
    const call = (who: ReturnType<typeof session>, n: number) => ({
      eventTime: `2026-12-05T10:0${n}:00Z`,
      eventSource: "s3.amazonaws.com",
      eventName: "DeleteObject",
      userIdentity: who,
      requestParameters: { bucketName: "acme-archive", key: `k${n}` },
      requestID: `call-${n}`,
    });
    const records = [
      // The same session name, two AssumeRole records naming different writs, no access key in the call.
      assume("writ_dup", "ASIADUP1", tags("writ_one")),
      assume("writ_dup", "ASIADUP2", tags("writ_two")),
      call({ ...session("writ_dup", "", "report-bot"), accessKeyId: "" }, 1),
      // A session not named for a writ, with a source identity: the role's own, no warning.
      call(session("nightly", "ASIANIGHT", "report-bot"), 2),
    ];
    const res = await cloudTrailImporter.import(
      textInput("trail.json", JSON.stringify({ Records: records })),
    );
    const [, , dup, nightly] = res.fragment.events;
    expect(dup!.via).toMatchObject({ kind: "aws-session", sourceIdentity: "report-bot" });
    expect(nightly!.via).toBeUndefined();
    const authz = join(DIR, "aws", "authorization-details.json");
    const tmp = await mkdtemp(join(tmpdir(), "writ-attr-"));
    try {
      await writeFile(join(tmp, "trail.json"), JSON.stringify({ Records: records }));
      const r = await scanPaths([authz, join(tmp, "trail.json")], { plugins: defaultPlugins, declared });
      expect(r.problems.map((p) => p.code)).toEqual(["WARN_WRIT_ATTRIBUTION_AMBIGUOUS"]);
      expect(r.problems[0]!.message).toContain("writ_one, writ_two");
      expect(r.findings.some((f) => f.writs !== undefined)).toBe(false);
      // Fail closed: the ambiguous session's DeleteObject is the role's own use, judged as such —
      // one finding per object deleted (issue 12: per workload, permission and resource), the
      // ambiguous session's own call cited on its own finding.
      const cat2 = of(r, ROLE_WORKLOAD, "unjustified-use");
      expect(cat2.map((f) => `${f.permission.action} ${f.permission.resource}`).sort()).toEqual([
        "aws:s3:DeleteObject arn:aws:s3:::acme-archive/k1",
        "aws:s3:DeleteObject arn:aws:s3:::acme-archive/k2",
      ]);
      const k1 = cat2.find((f) => f.permission.resource.endsWith("/k1"))!;
      expect(k1.evidence[0]!.label).toContain("assumed-role/writ-reports/writ_dup");
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe("a session whose tags name another writ than its name", () => {
  it("is not attributed to the writ the tags name", async () => {
    const trail = JSON.parse(
      gunzipSync(
        await readFile(join(DIR, "aws", "111122223333_CloudTrail_eu-west-2_20261205T1010Z_b2.json.gz")),
      ).toString("utf8"),
    ) as {
      Records: { eventName: string; requestParameters?: { tags?: { key: string; value: string }[] } }[];
    };
    // A's AssumeRole, its writ:id tag rewritten to writ B's: the session is still named for A.
    trail.Records[0]!.requestParameters!.tags!.find((t) => t.key === "writ:id")!.value = W.B;
    const tmp = await mkdtemp(join(tmpdir(), "writ-attr-"));
    try {
      await writeFile(join(tmp, "b2.json"), JSON.stringify(trail));
      const r = await scanPaths(
        [
          join(DIR, "aws", "authorization-details.json"),
          join(DIR, "aws", "111122223333_CloudTrail_eu-west-2_20261205T1005Z_a1.json"),
          join(tmp, "b2.json"),
        ],
        { plugins: defaultPlugins, declared },
      );
      const m = r.problems.filter((p) => p.code === "WARN_WRIT_ATTRIBUTION_MISMATCH").map((p) => p.message);
      expect(m.some((x) => x.includes(`assumed-role/writ-reports/${W.A}`) && x.includes(W.B))).toBe(true);
      expect(r.findings.some((f) => f.writs?.some((w) => w.id === W.A || w.id === W.B))).toBe(false);
      // Fail closed: A's DeleteObject is the role's own use, judged as such.
      expect(actions(of(r, ROLE_WORKLOAD, "unjustified-use"))).toContain("aws:s3:DeleteObject");
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe("records naming a writ in shapes writ never makes", () => {
  it("name no writ: a control character, an agent id writ.yaml cannot have, a sponsor with a space", async () => {
    expect(validWritIssue({ writ: W.A, agent: "report-bot", playbook: "export-reports" })).toBe(true);
    expect(
      validWritIssue({
        writ: W.A,
        agent: "report-bot",
        playbook: "export-reports",
        sponsor: "alice@acme.example",
      }),
    ).toBe(true);
    expect(validWritIssue({ writ: `${W.A}\u001b[2J`, agent: "report-bot", playbook: "export-reports" })).toBe(
      false,
    );
    expect(validWritIssue({ writ: "wr_1", agent: "report-bot", playbook: "export-reports" })).toBe(false);
    expect(validWritIssue({ writ: W.A, agent: "Report Bot", playbook: "export-reports" })).toBe(false);
    expect(
      validWritIssue({ writ: W.A, agent: "report-bot", playbook: "export-reports", sponsor: "alice smith" }),
    ).toBe(false);
    // Through the scan: the AssumeRole record is ignored, so its session is unresolved and standing.
    const trail = JSON.parse(
      gunzipSync(
        await readFile(join(DIR, "aws", "111122223333_CloudTrail_eu-west-2_20261205T1010Z_b2.json.gz")),
      ).toString("utf8"),
    ) as {
      Records: { eventName: string; requestParameters?: { tags?: { key: string; value: string }[] } }[];
    };
    const a = trail.Records[0]!;
    expect(a.eventName).toBe("AssumeRole");
    a.requestParameters!.tags!.find((t) => t.key === "writ:sponsor")!.value = "alice\u001b]0;pwned\u0007";
    const tmp = await mkdtemp(join(tmpdir(), "writ-attr-"));
    try {
      await writeFile(join(tmp, "b2.json"), JSON.stringify(trail));
      const r = await scanPaths(
        [
          join(DIR, "aws", "authorization-details.json"),
          join(DIR, "aws", "111122223333_CloudTrail_eu-west-2_20261205T1005Z_a1.json"),
          join(tmp, "b2.json"),
        ],
        { plugins: defaultPlugins, declared },
      );
      expect(r.findings.some((f) => f.writs?.some((w) => w.id === W.A))).toBe(false);
      expect(r.problems.some((p) => p.code === "WARN_WRIT_UNRESOLVED" && p.message.includes(W.A))).toBe(true);
      expect(JSON.stringify(r)).not.toContain("pwned");
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe("an observation window that starts after the writ was issued", () => {
  it("still names the writ from its issuance record, and judges only the uses inside the window", async () => {
    const window = { start: Date.parse("2026-12-05T10:03:05Z"), end: Date.parse("2026-12-05T10:20:00Z") };
    const r = await scanPaths([join(DIR, "aws"), join(DIR, "k8s")], {
      plugins: defaultPlugins,
      declared,
      window,
    });
    const named = r.findings.flatMap((f) => (f.writs ?? []).map((w) => w.id)).sort();
    // A's AssumeRole (10:03:02) and K1's binding (10:10:02, inside) name their writs.
    expect(named).toEqual([W.A, W.E, W.K1, W.K1].sort());
    expect(r.problems.some((p) => p.message.includes(W.A))).toBe(false);
    // The issuance itself is not use before the window: 10:00–10:03 events are not counted.
    expect(r.coverage.window).toEqual(window);
    const narrower = await scanPaths([join(DIR, "aws")], {
      plugins: defaultPlugins,
      declared,
      window: { start: Date.parse("2026-12-05T10:03:16Z"), end: window.end },
    });
    // A's DeleteObject (10:03:15) is outside this window: no finding for writ A.
    expect(narrower.findings.some((f) => f.writs?.some((w) => w.id === W.A))).toBe(false);
  });
});

describe("Kubernetes: audit events authorised by a writ's RoleBinding", () => {
  let r: AnalysisResult;
  beforeAll(async () => {
    r = await scan(["k8s"]);
  });

  it("reports the writ token's delete outside deploy-service, naming the writ", () => {
    const fs = of(r, "writ:deployer/deploy-service");
    expect(fs.map((f) => [f.permission.action, f.permission.resource]).sort()).toEqual([
      ["k8s:apps/deployments:delete", "checkout/checkout"],
      // The agent's baseline allows this list; the writ's playbook does not, and the writ is judged by it.
      ["k8s:apps/deployments:list", "checkout/*"],
    ]);
    const f = fs.find((x) => x.permission.action === "k8s:apps/deployments:delete")!;
    expect(f.writs).toEqual([{ id: W.K1, agent: "deployer", playbook: "deploy-service" }]);
    expect(f.evidence[0]!.source).toEqual({ file: join(DIR, "k8s", "audit.log"), line: 11 });
    expect(f.evidence[1]!.label).toContain("sponsor none");
    expect(f.evidence[1]!.label).toContain(
      "annotations of RoleBinding checkout/writ-writ-zgvwbg95q2hly2tvdxqxmg-00df440c73",
    );
    expect(f.evidence[1]!.source?.line).toBe(4);
  });

  it("reads the cut-off last line as a problem, and the unnamed writ binding as a warning", () => {
    expect(codes(r)).toEqual(["ERR_INPUT_JSON_LINE", "WARN_WRIT_UNRESOLVED"]);
    expect(r.problems.find((p) => p.code === "ERR_INPUT_JSON_LINE")!.line).toBe(17);
    const w = r.problems.find((p) => p.code === "WARN_WRIT_UNRESOLVED")!;
    expect(w.line).toBe(13);
    expect(w.message).toContain("payments/writ-writ-cgf5bwvudhnsb2xsb3v0mw-6996eb0338");
    // The broker's own `writ-broker` bindings are not a writ's: no warning names them.
    expect(r.problems.some((p) => p.message.includes("writ-broker"))).toBe(false);
  });

  it("a manifest of the writ's binding names its writ; its uses after the writ expired are reported", async () => {
    const both = await scan(["k8s", "k8s-snapshot"]);
    expect(codes(both)).toEqual(["ERR_INPUT_JSON_LINE"]);
    const fs = of(both, "writ:deployer/deploy-service");
    expect(fs.map((f) => [f.permission.action, f.writs?.[0]?.id]).sort()).toEqual([
      ["k8s:apps/deployments:delete", W.K1],
      ["k8s:apps/deployments:list", W.K1],
      ["k8s:apps/deployments:patch", W.K2],
      ["k8s:core/pods:delete", W.K2],
    ]);
    const pods = fs.find((f) => f.permission.action === "k8s:core/pods:delete")!;
    expect(pods.evidence[1]!.label).toContain("(manifest)");
    expect(pods.evidence[1]!.source?.file).toMatch(/payments-writ-rbac\.yaml$/);
    expect(pods.title).toContain("outside the playbook's declared work");
    // The patch is inside deploy-service, but 90 s after the writ's expiry (10:11:00): past the
    // reaper's period and the clocks' margin, its binding outlived it.
    const late = fs.find((f) => f.permission.action === "k8s:apps/deployments:patch")!;
    expect(late.title).toContain("after the writ expired");
    const reasons = late.evidence.filter((e) => e.ref === "reason").map((e) => e.label);
    expect(reasons).toEqual([expect.stringContaining("expired at 2026-12-05T10:11:00.000Z")]);
    // Nothing of K1 (expires 10:30) is late.
    expect(
      fs.filter((f) => f.writs?.[0]?.id === W.K1).flatMap((f) => f.evidence.map((e) => e.label)),
    ).not.toContainEqual(expect.stringContaining("expired"));
  });

  it("reads a sponsor annotation when the binding carries one, and ignores a failed create", async () => {
    const ref = {
      resource: "rolebindings",
      namespace: "ns1",
      name: "writ-writ-abc",
      apiGroup: "rbac.authorization.k8s.io",
      apiVersion: "v1",
    };
    const obj = {
      metadata: {
        name: "writ-writ-abc",
        namespace: "ns1",
        annotations: {
          "writ.dev/writ-id": "writ_abc",
          "writ.dev/agent-id": "deployer",
          "writ.dev/playbook": "deploy-service",
          "writ.dev/sponsor": "carol@acme.example",
        },
      },
    };
    const base = {
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      stage: "ResponseComplete",
      verb: "create",
      user: { username: "system:serviceaccount:writ-system:writ-broker" },
      objectRef: ref,
      requestReceivedTimestamp: "2026-12-05T10:00:00Z",
      requestObject: obj,
    };
    const lines = [
      { ...base, auditID: "ok", responseStatus: { code: 201 } },
      {
        ...base,
        auditID: "conflict",
        responseStatus: { code: 409 },
        objectRef: { ...ref, name: "writ-writ-other" },
        requestObject: { metadata: { ...obj.metadata, name: "writ-writ-other" } },
      },
    ];
    const res = await k8sAuditImporter.import(
      textInput("a.log", lines.map((l) => JSON.stringify(l)).join("\n")),
    );
    const [ok, conflict] = res.fragment.events;
    expect(ok!.issues).toMatchObject({
      writ: "writ_abc",
      sponsor: "carol@acme.example",
      credential: { kind: "k8s-binding", key: "k8s:RoleBinding:ns1/writ-writ-abc" },
    });
    expect(conflict!.issues).toBeUndefined();
  });

  it("ties cluster-wide writ grants by their ClusterRoleBinding, and nothing else by name alone", async () => {
    const use = (reason: string) => ({
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      stage: "ResponseComplete",
      verb: "list",
      user: { username: "system:serviceaccount:writ-agents:deployer" },
      objectRef: { resource: "nodes", apiVersion: "v1" },
      requestReceivedTimestamp: "2026-12-05T10:00:00Z",
      responseStatus: { code: 200 },
      annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason },
    });
    const reasons = [
      'RBAC: allowed by ClusterRoleBinding "writ-writ-abc-0123456789" of ClusterRole "writ-writ-abc-0123456789" to ServiceAccount "deployer/writ-agents"',
      'RBAC: allowed by ClusterRoleBinding "writ-broker" of ClusterRole "writ-broker" to ServiceAccount "writ-broker/writ-system"',
      'RBAC: allowed by RoleBinding "writ-writ-abc-0123456789/shop" of Role "writ-writ-abc-0123456789" to ServiceAccount "deployer/writ-agents"',
      "Webhook: allowed",
    ];
    const res = await k8sAuditImporter.import(
      textInput("b.log", reasons.map((r) => JSON.stringify(use(r))).join("\n")),
    );
    expect(res.fragment.events.map((e) => e.via?.key)).toEqual([
      "k8s:ClusterRoleBinding:writ-writ-abc-0123456789",
      undefined,
      "k8s:RoleBinding:shop/writ-writ-abc-0123456789",
      undefined,
    ]);
  });
});

describe("the names writ's issuers give are the names the analyzer recognises", () => {
  it("for writ ids as the broker makes them: the session name, and the binding in the RBAC reason", async () => {
    const ids = Array.from({ length: 200 }, () => `writ_${randomBytes(16).toString("base64url")}`);
    const records = ids.map((id) => ({
      eventTime: "2026-12-05T10:00:00Z",
      eventSource: "s3.amazonaws.com",
      eventName: "GetObject",
      userIdentity: {
        type: "AssumedRole",
        arn: `arn:aws:sts::111122223333:assumed-role/writ-reports/${sessionNameFor(id)}`,
        accountId: "111122223333",
        sessionContext: { sessionIssuer: { type: "Role", arn: ROLE }, sourceIdentity: "report-bot" },
      },
      requestParameters: { bucketName: "acme-reports", key: "k" },
    }));
    const trail = await cloudTrailImporter.import(textInput("t.json", JSON.stringify({ Records: records })));
    expect(trail.fragment.events.filter((e) => e.via?.kind === "aws-session")).toHaveLength(ids.length);
    const audit = ids.map((id) =>
      JSON.stringify({
        kind: "Event",
        apiVersion: "audit.k8s.io/v1",
        stage: "ResponseComplete",
        verb: "get",
        user: { username: "system:serviceaccount:writ-agents:deployer" },
        objectRef: { resource: "pods", namespace: "shop", name: "p", apiVersion: "v1" },
        requestReceivedTimestamp: "2026-12-05T10:00:00Z",
        responseStatus: { code: 200 },
        annotations: {
          "authorization.k8s.io/reason": `RBAC: allowed by RoleBinding "${objectName(id)}/shop" of Role "${objectName(id)}" to ServiceAccount "deployer/writ-agents"`,
        },
      }),
    );
    const k8s = await k8sAuditImporter.import(textInput("a.log", audit.join("\n")));
    expect(k8s.fragment.events.map((e) => e.via?.key)).toEqual(
      ids.map((id) => `k8s:RoleBinding:shop/${objectName(id)}`),
    );
  });
});

describe("writ scan --config (built CLI)", () => {
  it("prints the writ on the finding in the JSON report", async () => {
    assertBuilt();
    const res = await runCli(
      ["scan", join(DIR, "aws"), join(DIR, "k8s"), "--config", join(DIR, "writ.yaml"), "--json"],
      { timeoutMs: 60_000 },
    );
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as AnalysisResult;
    const ids = report.findings.flatMap((f) => (f.writs ?? []).map((w) => w.id)).sort();
    expect(ids).toEqual([W.A, W.E, W.K1, W.K1].sort());
    expect(report.problems.map((p) => p.code)).toContain("ERR_INPUT_JSON_LINE");
  }, 60_000);
});
