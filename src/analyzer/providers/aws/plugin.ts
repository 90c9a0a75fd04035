/**
 * AWS in the analysis engine (src/analyzer/model.ts): importers for account authorization details
 * (structure) and CloudTrail (activity), risk from the catalog's access levels and risk classes,
 * IAM JSON replacements, and escalation edges from the evaluator-decided escalation graph.
 *
 * Node ids: identities `aws:user:<arn>` and `aws:role:<arn>` (the id Kubernetes' IRSA annotation
 * links to), groups `aws:group:<arn>`, bindings `aws:binding:<principal>#<policy>`, policies
 * `aws:policy:<id>`, and one workload `aws:workload:<arn>` per user and per role that is not a
 * web-identity (IRSA) or service-linked role — those are analyzed through the workloads using them.
 * Identity nodes carry their policy documents in `attrs` (JSON) so escalation needs only the graph.
 */

import { problem } from "../../input.js";
import type {
  EscalationEdge,
  GraphEdge,
  GraphNode,
  GraphView,
  Importer,
  ImportOptions,
  ImportResult,
  InputFile,
  InputProblem,
  Linker,
  LinkResult,
  ObservedEvent,
  PermissionGrant,
  ProviderObject,
  ProviderPlugin,
  Reduction,
  ReductionContext,
  RemediationFile,
  Severity,
  SourceRef,
} from "../../model.js";
import { type AwsCatalog, createCatalog } from "./catalog.js";
import { analyzeEscalation, roleAssumptions, secretStoreReads } from "./escalation.js";
import {
  describe,
  type Organization,
  type Policy,
  type Statement,
  wildcardMatch,
  wildcardMatchLower,
} from "./evaluator/index.js";
import { type Expansion, expandPolicies, risksOf, servicesFor } from "./expand.js";
import {
  type AuthorizationDetails,
  type IamRole,
  type IamUser,
  importAuthorizationDetails,
  lineRecords,
  normaliseRecord,
  policiesFor,
  readTrailFile,
  recordsOf,
  type TrailEvent,
} from "./importers/index.js";
import { type PrivescPath, SUPPLEMENT_PATHS, shippedPrivescPaths } from "./paths.js";
import { policyDocumentFrom } from "./usage.js";

let shared: AwsCatalog | undefined;
/** The catalog the plugin uses, loaded as imports need services (the whole catalog loads in ~1 s). */
export function awsCatalog(): AwsCatalog {
  shared ??= createCatalog();
  return shared;
}

const grantAction = (action: string) => `aws:${action}`;
const AGENT_TAG = "writ.dev/agent";

const counts = new Map<string, number>();
/** How many catalog actions a pattern covers (cached per pattern and catalog size). */
function catalogCount(catalog: AwsCatalog, pattern: string): number {
  const services = catalog.services();
  const key = `${services.length}\u0000${pattern.toLowerCase()}`;
  let n = counts.get(key);
  if (n === undefined) {
    const svc = pattern === "*" ? "*" : pattern.slice(0, pattern.indexOf(":")).toLowerCase();
    const pool = /[*?]/.test(svc) ? services.filter((s) => wildcardMatch(svc, s)) : [svc];
    n = 0;
    for (const s of pool)
      for (const a of catalog.actions(s) ?? []) if (wildcardMatchLower(pattern, a.key)) n++;
    counts.set(key, n);
  }
  return n;
}

/** Grants of one policy, as written where denies leave them whole, else the actions that remain. */
export function grantsOf(
  policy: Policy,
  expansion: Expansion,
  catalog: AwsCatalog,
  where: string,
): PermissionGrant[] {
  const out: PermissionGrant[] = [];
  const remaining = expansion.actions
    .filter((a) => a.policies.includes(policy.id))
    .map((a) => ({ action: a.action, key: a.action.toLowerCase() }));
  const compress = (actions: string[]): string[] => {
    const bySvc = new Map<string, string[]>();
    for (const a of actions) {
      const svc = a.slice(0, a.indexOf(":"));
      bySvc.set(svc, [...(bySvc.get(svc) ?? []), a]);
    }
    const res: string[] = [];
    for (const [svc, list] of bySvc) {
      if (list.length === (catalog.actions(svc)?.length ?? -1)) res.push(`${svc}:*`);
      else res.push(...list);
    }
    return res;
  };
  const resourcesOf = (st: Statement) => st.resource ?? ["*"];
  for (const st of policy.statements) {
    if (st.effect !== "Allow") continue;
    const text = `${policy.id} statement ${st.index}${st.sid ? ` (${st.sid})` : ""}${st.conditions.length ? " with conditions" : ""}${st.notResource ? `, NotResource ${st.notResource.join(", ")}` : ""}`;
    let patterns: string[];
    if (st.notAction) {
      patterns = compress(
        remaining
          .filter((a) => !st.notAction!.some((p) => wildcardMatch(p, a.action, true)))
          .map((a) => a.action),
      );
    } else {
      patterns = [];
      for (const pat of st.action!) {
        const left = remaining.filter((a) => wildcardMatchLower(pat, a.key)).map((a) => a.action);
        if (left.length === 0) continue;
        const total = catalogCount(catalog, pat);
        patterns.push(...(left.length === total ? [pat] : compress(left)));
      }
    }
    if (patterns.length === 0) continue;
    for (const a of patterns) {
      for (const r of resourcesOf(st)) {
        out.push({
          kind: "permission",
          action: grantAction(a === "*" ? "*:*" : a),
          resource: r,
          text,
          source: { file: where },
        });
      }
    }
  }
  return out;
}

function isWebIdentityOrServiceLinked(role: IamRole): boolean {
  if (role.path.startsWith("/aws-service-role/")) return true;
  const allows = role.trust.statements.filter((s) => s.effect === "Allow");
  return allows.length > 0 && allows.every((s) => (s.principal?.byType.get("Federated")?.length ?? 0) > 0);
}

/** Rebuilds a policy document from the parsed form (inline policies keep no raw text). */
export function documentOf(p: Policy): unknown {
  const principal = (spec: Statement["principal"]) =>
    spec?.any ? "*" : spec ? Object.fromEntries([...spec.byType.entries()]) : undefined;
  return {
    Version: p.version,
    Statement: p.statements.map((s) => {
      const o: Record<string, unknown> = { Effect: s.effect };
      if (s.sid !== undefined) o.Sid = s.sid;
      if (s.action) o.Action = s.action;
      if (s.notAction) o.NotAction = s.notAction;
      if (s.resource) o.Resource = s.resource;
      if (s.notResource) o.NotResource = s.notResource;
      if (s.principal) o.Principal = principal(s.principal);
      if (s.notPrincipal) o.NotPrincipal = principal(s.notPrincipal);
      if (s.conditions.length) {
        const c: Record<string, Record<string, string[]>> = {};
        for (const cl of s.conditions) {
          const block = c[cl.raw] ?? {};
          block[cl.key] = [...cl.values];
          c[cl.raw] = block;
        }
        o.Condition = c;
      }
      return o;
    }),
  };
}

/** One authorization-details file as it is read: the nodes and edges made so far, and memos. */
interface AuthzReading {
  readonly details: AuthorizationDetails;
  readonly catalog: AwsCatalog;
  readonly src: SourceRef;
  readonly nodes: GraphNode[];
  readonly edges: GraphEdge[];
  readonly policyNodes: Set<string>;
  /** Many principals share one set of policies (AdministratorAccess on a dozen roles). */
  readonly expansions: Map<string, Expansion>;
  readonly grantMemo: WeakMap<Expansion, Map<string, PermissionGrant[]>>;
}

function authzEdge(x: AuthzReading, from: string, to: string, type: GraphEdge["type"], note?: string): void {
  x.edges.push({ kind: "edge", from, to, type, ...(note ? { note } : {}), source: x.src });
}

/** A policy's grants under an expansion, computed once per (expansion, policy). */
function memoGrants(x: AuthzReading, p: Policy, expansion: Expansion): PermissionGrant[] {
  let m = x.grantMemo.get(expansion);
  if (!m) {
    m = new Map();
    x.grantMemo.set(expansion, m);
  }
  let g = m.get(p.id);
  if (!g) {
    g = grantsOf(p, expansion, x.catalog, x.src.file);
    m.set(p.id, g);
  }
  return g;
}

/** A policy attached to a holder: the binding holding its grants, and the policy's node (once). */
function bind(x: AuthzReading, holder: string, holderArn: string, p: Policy, expansion: Expansion): void {
  const id = `aws:binding:${holderArn}#${p.id}`;
  x.nodes.push({
    kind: "node",
    id,
    provider: "aws",
    type: "binding",
    subtype: p.id.includes("/inline/") ? "InlinePolicy" : "PolicyAttachment",
    name: p.id.split("/").pop()!,
    grants: memoGrants(x, p, expansion),
    source: x.src,
  });
  authzEdge(x, holder, id, "bound-by");
  const pid = `aws:policy:${p.id}`;
  if (!x.policyNodes.has(pid)) {
    x.policyNodes.add(pid);
    x.nodes.push({
      kind: "node",
      id: pid,
      provider: "aws",
      type: "role",
      subtype: "Policy",
      name: p.id,
      source: x.src,
    });
  }
  authzEdge(x, id, pid, "references");
}

/** A user or role: its identity node (with its policy documents for escalation) and its own policies. */
function readPrincipal(x: AuthzReading, e: IamUser | IamRole): { idn: string; expansion: Expansion } {
  const { details } = x;
  const idn = `aws:${e.kind}:${e.arn}`;
  const found = policiesFor(details, e);
  const own = [...e.inline, ...e.attached.flatMap((r) => details.policies.get(r.arn)?.document ?? [])];
  const setKey = found.identity.map((p) => p.id).join("\u0000");
  let expansion = x.expansions.get(setKey);
  if (!expansion) {
    expansion = expandPolicies(found.identity, x.catalog);
    x.expansions.set(setKey, expansion);
  }
  x.nodes.push({
    kind: "node",
    id: idn,
    provider: "aws",
    type: "identity",
    subtype: e.kind === "user" ? "IAMUser" : "IAMRole",
    name: e.name,
    attrs: {
      arn: e.arn,
      policies: JSON.stringify(found.identity.map((p) => ({ id: p.id, doc: documentOf(p) }))),
      ...(found.boundary ? { boundary: JSON.stringify(documentOf(found.boundary)) } : {}),
      ...(e.kind === "role" ? { trust: JSON.stringify(documentOf(e.trust)) } : {}),
      ...(e.kind === "user" ? { groups: e.groups.join(",") } : {}),
    },
    source: x.src,
  });
  for (const p of own) bind(x, idn, e.arn, p, expansion);
  return { idn, expansion };
}

/** A user's groups: membership, and each group's policies bound once. */
function readMemberships(x: AuthzReading, e: IamUser, idn: string, expansion: Expansion): void {
  for (const name of e.groups) {
    const g = x.details.groups.find((y) => y.name === name);
    if (!g) continue;
    authzEdge(x, idn, `aws:group:${g.arn}`, "member-of");
    for (const p of [
      ...g.inline,
      ...g.attached.flatMap((r) => x.details.policies.get(r.arn)?.document ?? []),
    ]) {
      const bid = `aws:binding:${g.arn}#${p.id}`;
      if (!x.nodes.some((n) => n.id === bid)) bind(x, `aws:group:${g.arn}`, g.arn, p, expansion);
    }
  }
}

/** A role's EC2 instance profiles: the instances launched with one run as its role (a workload each). */
function readInstanceProfiles(x: AuthzReading, e: IamRole, idn: string): string[] {
  const profiles = e.instanceProfiles.filter(Boolean);
  for (const arn of profiles) {
    const pid = `aws:instance-profile:${arn}`;
    const name = arn.slice(arn.lastIndexOf("/") + 1);
    x.nodes.push({
      kind: "node",
      id: pid,
      provider: "aws",
      type: "identity",
      subtype: "EC2InstanceProfile",
      name,
      attrs: { arn },
      source: x.src,
    });
    authzEdge(x, pid, idn, "assumes", `instance profile \`${name}\` holds role \`${e.name}\``);
    const wid = `aws:workload:${arn}`;
    x.nodes.push({
      kind: "node",
      id: wid,
      provider: "aws",
      type: "workload",
      subtype: "EC2InstanceProfile",
      name,
      ...(e.tags[AGENT_TAG] ? { agent: e.tags[AGENT_TAG] } : {}),
      source: x.src,
    });
    authzEdge(x, wid, pid, "runs-as", "the EC2 instances launched with this instance profile");
  }
  return profiles;
}

/**
 * The principal as a workload of its own: every user, and every role not used through instance
 * profiles (analyzed through them) nor a web-identity or service-linked role (analyzed, as IRSA
 * roles, through the pods using them).
 */
function readPrincipalWorkload(
  x: AuthzReading,
  e: IamUser | IamRole,
  idn: string,
  profiles: readonly string[],
): void {
  if (e.kind !== "user" && (profiles.length > 0 || isWebIdentityOrServiceLinked(e))) return;
  const wid = `aws:workload:${e.arn}`;
  x.nodes.push({
    kind: "node",
    id: wid,
    provider: "aws",
    type: "workload",
    subtype: e.kind === "user" ? "IAMUser" : "IAMRole",
    name: e.name,
    // The writ agent a principal acts for: its IAM tag `writ.dev/agent`.
    ...(e.tags[AGENT_TAG] ? { agent: e.tags[AGENT_TAG] } : {}),
    source: x.src,
  });
  authzEdge(x, wid, idn, "runs-as");
}

export const awsAuthzImporter: Importer = {
  name: "aws-authorization-details",
  phase: "structure",
  detect: (f: InputFile) =>
    /\.json$/i.test(f.path) && /"(UserDetailList|RoleDetailList|GroupDetailList)"/.test(f.head),
  /** In order: the document, the catalog services it needs, groups, then each user and role. */
  async import(file: InputFile): Promise<ImportResult> {
    let details: AuthorizationDetails;
    try {
      details = importAuthorizationDetails(JSON.parse(await file.text()), file.path);
    } catch (err) {
      const problems = [problem("ERR_INPUT_AWS_AUTHZ", { file: file.path }, (err as Error).message)];
      return { fragment: { nodes: [], edges: [], events: [], toolCalls: [], objects: [] }, problems };
    }
    const catalog = awsCatalog();
    const all = [...details.policies.values()].map((p) => p.document);
    const inline = [...details.users, ...details.roles, ...details.groups].flatMap((e) => e.inline);
    // sts and iam: role assumption is decided on trust policies, which name no identity action.
    const needed = servicesFor([...all, ...inline]);
    await catalog.load(needed === "all" ? "all" : new Set([...needed, "sts", "iam"]));
    const src = { file: file.path };
    const x: AuthzReading = {
      details,
      catalog,
      src,
      nodes: [],
      edges: [],
      policyNodes: new Set(),
      expansions: new Map(),
      grantMemo: new WeakMap(),
    };
    for (const g of details.groups)
      x.nodes.push({
        kind: "node",
        id: `aws:group:${g.arn}`,
        provider: "aws",
        type: "group",
        subtype: "IAMGroup",
        name: g.name,
        shared: true,
        source: src,
      });
    for (const e of [...details.users, ...details.roles]) {
      const { idn, expansion } = readPrincipal(x, e);
      if (e.kind === "user") readMemberships(x, e, idn, expansion);
      const profiles = e.kind === "role" ? readInstanceProfiles(x, e, idn) : [];
      readPrincipalWorkload(x, e, idn, profiles);
    }
    // Role assumption needs every account's principals and roles: the linker decides it.
    const objects: ProviderObject[] = [
      { kind: "object", provider: "aws", type: "authorization-details", value: details, source: src },
    ];
    return { fragment: { nodes: x.nodes, edges: x.edges, events: [], toolCalls: [], objects }, problems: [] };
  },
};

/**
 * Role chaining as graph edges: `can-assume` from every user and role to each role whose trust
 * policy, with the principal's own policies, boundary and the organization's SCPs, lets it call
 * `sts:AssumeRole` — decided by the evaluator, across every authorization-details file read.
 */
export function createAwsLinker(organization?: Organization): Linker {
  return {
    provider: "aws",
    link(objects: readonly ProviderObject[], nodes: ReadonlyMap<string, GraphNode>): LinkResult {
      const sets = objects
        .filter((o) => o.type === "authorization-details")
        .map((o) => o.value as AuthorizationDetails);
      if (sets.length === 0) return { nodes: [], edges: [], problems: [] };
      const sourceOf = new Map<string, string>();
      for (const d of sets) for (const r of d.roles) if (!sourceOf.has(r.arn)) sourceOf.set(r.arn, d.source);
      const edges: GraphEdge[] = [];
      for (const a of roleAssumptions(sets, awsCatalog(), {
        now: new Date(),
        ...(organization ? { organization } : {}),
      })) {
        const kind = a.principal.includes(":role/") ? "role" : "user";
        const from = `aws:${kind}:${a.principal}`;
        const to = `aws:role:${a.role}`;
        if (!nodes.has(from) || !nodes.has(to)) continue;
        edges.push({
          kind: "edge",
          from,
          to,
          type: "can-assume",
          note: `sts:AssumeRole allowed by ${a.deciding.map(describe).join("; ")}`,
          source: { file: sourceOf.get(a.role) ?? "" },
        });
      }
      return { nodes: [], edges, problems: [] };
    },
  };
}

/** writ's role session names are the writ id (src/downstream/aws/names.ts), and writ ids begin `writ_`. */
const WRIT_SESSION_NAME = /:assumed-role\/[^/]+\/writ_[^/]*$/;

function observed(e: TrailEvent, file: string, line?: number): ObservedEvent {
  const kind = e.principal.includes(":role/")
    ? "role"
    : e.principal.includes(":user/")
      ? "user"
      : "principal";
  return {
    kind: "event",
    provider: "aws",
    at: Date.parse(e.time) || 0,
    principal: `aws:${kind}:${e.principal}`,
    action: `aws:${e.action}`,
    resource: e.resources[0] ?? "*",
    outcome: e.errorCode
      ? /denied|unauthorized|forbidden/i.test(e.errorCode)
        ? "denied"
        : "error"
      : "allowed",
    ...(e.requestId ? { requestId: e.requestId } : {}),
    ...(e.userAgent ? { userAgent: e.userAgent } : {}),
    // Only a session named for a writ (`writ_…`, the writ id) with a source identity (writ sets the
    // agent id there) can be a writ's: every other session is counted as its role's as it streams.
    ...(e.session?.sourceIdentity && WRIT_SESSION_NAME.test(e.session.arn)
      ? {
          via: {
            kind: "aws-session" as const,
            key: e.session.arn,
            sourceIdentity: e.session.sourceIdentity,
            ...(e.session.accessKeyId ? { accessKeyId: e.session.accessKeyId } : {}),
          },
        }
      : {}),
    ...(e.writIssue
      ? {
          issues: {
            writ: e.writIssue.writ,
            agent: e.writIssue.agent,
            playbook: e.writIssue.playbook,
            ...(e.writIssue.sponsor ? { sponsor: e.writIssue.sponsor } : {}),
            credential: {
              kind: "aws-session" as const,
              key: e.writIssue.sessionArn,
              ...(e.writIssue.accessKeyId ? { accessKeyId: e.writIssue.accessKeyId } : {}),
              ...(e.writIssue.sourceIdentity ? { sourceIdentity: e.writIssue.sourceIdentity } : {}),
            },
            how: `session tags of sts:AssumeRole${e.requestId ? ` ${e.requestId}` : ""}${e.writIssue.roleArn ? ` on ${e.writIssue.roleArn}` : ""}`,
          },
        }
      : {}),
    source: { file, ...(line !== undefined ? { line } : {}) },
  };
}

export const cloudTrailImporter: Importer = {
  name: "aws-cloudtrail",
  phase: "activity",
  detect: (f: InputFile) =>
    (f.head.startsWith("\u001f\u008b") || f.head.charCodeAt(0) === 0x1f) && /cloudtrail/i.test(f.path)
      ? true
      : (/\.(json|jsonl|ndjson)$/i.test(f.path) &&
          /"eventSource"\s*:/.test(f.head) &&
          /"eventName"\s*:/.test(f.head)) ||
        /"CloudTrailEvent"\s*:/.test(f.head),
  async import(file: InputFile, opts: ImportOptions = {}): Promise<ImportResult> {
    const events: ObservedEvent[] = [];
    const problems: InputProblem[] = [];
    const emit = (e: ObservedEvent) => {
      // A writ's AssumeRole before the window still names the writ of the sessions inside it.
      if (opts.window && !e.issues && (e.at < opts.window.start || e.at > opts.window.end)) return;
      if (opts.onEvent) opts.onEvent(e);
      else events.push(e);
    };
    const bad = (line: number | undefined, err: unknown) =>
      problems.push(
        problem(
          "ERR_INPUT_CLOUDTRAIL",
          { file: file.path, ...(line ? { line } : {}) },
          (err as Error).message,
        ),
      );
    const trimmed = file.head.trimStart();
    try {
      if (file.head.charCodeAt(0) === 0x1f) {
        for await (const e of readTrailFile(file.location ?? file.path)) emit(observed(e, file.path));
      } else if (
        trimmed.startsWith("[") ||
        (trimmed.startsWith("{") && /^\{\s*"(Records|Events)"/.test(trimmed))
      ) {
        const doc = JSON.parse(await file.text());
        for (const [i, rec] of recordsOf(doc, file.path).entries()) {
          try {
            emit(observed(normaliseRecord(rec, `${file.path}: record ${i}`), file.path));
          } catch (err) {
            bad(undefined, err);
          }
        }
      } else {
        let n = 0;
        for await (const line of file.lines()) {
          n++;
          if (!line.trim()) continue;
          try {
            for (const rec of lineRecords(JSON.parse(line)))
              emit(observed(normaliseRecord(rec, `${file.path}:${n}`), file.path, n));
          } catch (err) {
            bad(
              n,
              err instanceof SyntaxError ? new Error(`${file.path}:${n}: not JSON: ${err.message}`) : err,
            );
          }
        }
      }
    } catch (err) {
      bad(undefined, err);
    }
    return { fragment: { nodes: [], edges: [], events, toolCalls: [], objects: [] }, problems };
  },
};

const RISK_SEVERITY: Record<string, Severity> = {
  identity: "critical",
  secrets: "high",
  logging: "high",
  "compute-data": "medium",
};
const RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1 };

/** Severity of holding a grant: its riskiest covered action. */
export function awsRisk(action: string, _resource: string): Severity {
  const catalog = awsCatalog();
  const pattern = action.replace(/^aws:/i, "");
  if (pattern === "*:*" || pattern === "*") return "critical";
  const svc = pattern.slice(0, pattern.indexOf(":")).toLowerCase();
  const actions = /[*?]/.test(svc)
    ? catalog.services().flatMap((s) => catalog.actions(s) ?? [])
    : (catalog.actions(svc) ?? []);
  let best: Severity = "low";
  let any = false;
  for (const a of actions) {
    const full = `${a.service}:${a.name}`;
    if (!wildcardMatch(pattern, full, true)) continue;
    any = true;
    for (const r of risksOf(full, a.accessLevel))
      if (RANK[RISK_SEVERITY[r]!] > RANK[best]) best = RISK_SEVERITY[r]!;
    if (best === "low" && (a.accessLevel === "Write" || a.accessLevel === "Permissions management"))
      best = "medium";
  }
  return any ? best : "medium";
}

function replacementFiles(ctx: ReductionContext): { document: unknown; actions: number } {
  const byAction = new Map<string, Set<string>>();
  for (const u of ctx.used) {
    if (!u.action.startsWith("aws:")) continue;
    const action = u.action.slice(4);
    const set = byAction.get(action) ?? new Set<string>();
    set.add(u.resource || "*");
    byAction.set(action, set);
  }
  return { document: policyDocumentFrom(byAction), actions: byAction.size };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9+=,.@_-]+/g, "-").slice(0, 60);
}

/** Escalation edges for every AWS identity in the graph, decided by the evaluator. */
export function awsEscalations(
  g: GraphView,
  paths: readonly PrivescPath[] = defaultPaths(),
  organization?: Organization,
): EscalationEdge[] {
  const identities = [...g.nodes.values()].filter(
    (n) => n.provider === "aws" && n.type === "identity" && n.attrs?.policies,
  );
  if (identities.length === 0) return [];
  const catalog = awsCatalog();
  const policies = new Map<string, unknown>();
  const users: unknown[] = [];
  const roles: unknown[] = [];
  for (const n of identities) {
    const docs = JSON.parse(String(n.attrs!.policies)) as { id: string; doc: unknown }[];
    const attached = docs.map((d, i) => {
      const arn =
        d.id.startsWith("arn:") && !d.id.includes("/inline/")
          ? d.id
          : `${String(n.attrs!.arn)}/writ-policy-${i}`;
      policies.set(arn, {
        PolicyName: arn.split("/").pop(),
        Arn: arn,
        PolicyVersionList: [{ VersionId: "v1", IsDefaultVersion: true, Document: d.doc }],
      });
      return { PolicyName: arn.split("/").pop(), PolicyArn: arn };
    });
    let boundary: { PermissionsBoundary: { PermissionsBoundaryArn: string } } | undefined;
    if (n.attrs!.boundary !== undefined) {
      const arn = `${String(n.attrs!.arn)}/writ-boundary`;
      policies.set(arn, {
        PolicyName: "writ-boundary",
        Arn: arn,
        PolicyVersionList: [
          { VersionId: "v1", IsDefaultVersion: true, Document: JSON.parse(String(n.attrs!.boundary)) },
        ],
      });
      boundary = { PermissionsBoundary: { PermissionsBoundaryArn: arn } };
    }
    const base = { Arn: n.attrs!.arn, AttachedManagedPolicies: attached, Path: "/", ...boundary };
    if (n.subtype === "IAMUser") users.push({ ...base, UserName: n.name, GroupList: [] });
    else
      roles.push({
        ...base,
        RoleName: n.name,
        AssumeRolePolicyDocument: JSON.parse(String(n.attrs!.trust ?? '{"Statement":[]}')),
      });
  }
  const details = importAuthorizationDetails(
    { UserDetailList: users, RoleDetailList: roles, GroupDetailList: [], Policies: [...policies.values()] },
    "graph",
  );
  const report = analyzeEscalation(details, paths, catalog, {
    now: new Date(),
    ...(organization ? { organization } : {}),
  });
  const out: EscalationEdge[] = [];
  // Secret-store reads (Secrets Manager, SSM parameters, KMS decrypt) beyond the principal's own
  // secrets: reading unrelated secrets, whichever workload's credential reaches the principal.
  for (const r of secretStoreReads(details, catalog, {
    now: new Date(),
    ...(organization ? { organization } : {}),
  }))
    out.push({
      kind: "escalation",
      type: "SECRET_READ",
      from: `aws:${r.kind}:${r.principal}`,
      to: `aws:secrets:${r.store}`,
      via: { action: `aws:${r.step.action}`, resource: r.step.resource },
    });
  const none = { action: "", resource: "" };
  for (const n of g.nodes.values()) {
    if (n.provider !== "aws") continue;
    // A workload runs as its identity; an instance profile's instances run as its role.
    for (const e of g.out.get(n.id) ?? [])
      if ((n.type === "workload" && e.type === "runs-as") || (n.type === "identity" && e.type === "assumes"))
        out.push({ kind: "escalation", type: "IDENTITY_ASSUME", from: n.id, to: e.to, via: none });
  }
  for (const p of report.principals) {
    const from = `aws:${p.kind}:${p.principal}`;
    // Assuming a role creates no identity: it leads on to what the role can do.
    for (const r of p.assumes)
      out.push({
        kind: "escalation",
        type: "IDENTITY_ASSUME",
        from,
        to: `aws:role:${r}`,
        via: { action: "aws:sts:AssumeRole", resource: r },
      });
    for (const path of p.paths) {
      const last = path.steps[path.steps.length - 1]!;
      const type =
        path.category === "new-passrole" || path.category === "existing-passrole"
          ? "WORKLOAD_CREATE"
          : "ROLE_ESCALATE";
      out.push({
        kind: "escalation",
        type,
        from,
        to: `aws:escalation:${path.path}:${last.resource}`,
        via: { action: `aws:${path.steps.map((s) => s.action).join("+")}`, resource: last.resource },
      });
    }
  }
  return out;
}

let shippedPaths: PrivescPath[] | undefined;
/** The catalogue writ ships (pathfinding.cloud's paths) and the supplementary paths. */
function defaultPaths(): PrivescPath[] {
  shippedPaths ??= [...shippedPrivescPaths(), ...SUPPLEMENT_PATHS];
  return shippedPaths;
}

export interface AwsPluginOptions {
  /** The escalation path catalogue; default the shipped one and the supplementary paths. */
  readonly paths?: readonly PrivescPath[] | undefined;
  /** The organization tree: its SCPs and RCPs bound every decision of the escalation graph. */
  readonly organization?: Organization | undefined;
}

/** What the blast-radius questions mean for an IAM principal. */
const AWS_BLAST_QUESTIONS = {
  "create-identities": "create or escalate IAM identities (assume other roles, new access keys, policies)",
  "read-unrelated-secrets": "read secrets it does not own (Secrets Manager, SSM SecureString, KMS decrypt)",
  "mutate-outside-namespace": "run compute as another role (pass a role to a new workload)",
} as const;

/** The AWS plug-in, configured per scan (`writ scan --aws-paths DIR`). */
export function createAwsPlugin(o: AwsPluginOptions = {}): ProviderPlugin {
  return {
    provider: "aws",
    importers: [awsAuthzImporter, cloudTrailImporter],
    linker: createAwsLinker(o.organization),
    risk: awsRisk,
    replacement,
    dedicatedIdentity,
    escalations: (g) => awsEscalations(g, o.paths ?? defaultPaths(), o.organization),
    blastQuestions: AWS_BLAST_QUESTIONS,
  };
}

function replacement(ctx: ReductionContext): Reduction {
  const { document, actions } = replacementFiles(ctx);
  return {
    kind: "replace-policy",
    summary: `replace the policies of \`${ctx.workload.name}\` with one that allows the ${actions} action(s) it used, on the resources it touched`,
    files: [
      {
        path: `aws/${safeName(ctx.workload.name)}-replacement-policy.json`,
        language: "json",
        content: `${JSON.stringify(document, null, 2)}\n`,
      },
    ],
  };
}

/**
 * The roles whose grants reach the workload only by role chaining: the first `can-assume` hop of
 * each excess path (the role its own identity can assume), by ARN.
 */
function chainedRoles(ctx: ReductionContext): string[] {
  const roles = new Set<string>();
  for (const x of ctx.excess) {
    for (let i = 0; i + 1 < x.path.length; i++) {
      const [from, to] = [x.path[i]!, x.path[i + 1]!];
      if ((ctx.graph.out.get(from) ?? []).some((e) => e.to === to && e.type === "can-assume")) {
        const arn = ctx.graph.nodes.get(to)?.attrs?.arn;
        if (arn !== undefined) roles.add(String(arn));
        break;
      }
    }
  }
  return [...roles].sort();
}

function dedicatedIdentity(ctx: ReductionContext): Reduction {
  const { document, actions } = replacementFiles(ctx);
  const name = `writ-${safeName(ctx.workload.name)}`;
  const chained = chainedRoles(ctx);
  const inheritedOtherwise = ctx.excess.some((x) =>
    x.path.every(
      (id, i) =>
        i === 0 ||
        !(ctx.graph.out.get(x.path[i - 1]!) ?? []).some((e) => e.to === id && e.type === "can-assume"),
    ),
  );
  const files: RemediationFile[] = [];
  const said: string[] = [];
  if (chained.length > 0) {
    // A role the workload was seen assuming stays assumable: denying it would break that use.
    const assumed = new Set(
      ctx.used.filter((u) => /^aws:sts:AssumeRole$/i.test(u.action)).map((u) => u.resource),
    );
    const deny = chained.filter((r) => !assumed.has(r));
    if (deny.length > 0) {
      files.push({
        path: `aws/${safeName(ctx.workload.name)}-deny-role-chaining.json`,
        language: "json",
        content: `${JSON.stringify(
          {
            Version: "2012-10-17",
            Statement: [
              { Sid: "WritNoRoleChaining", Effect: "Deny", Action: ["sts:AssumeRole"], Resource: deny },
            ],
          },
          null,
          2,
        )}\n`,
      });
      said.push(
        `attach a policy to \`${ctx.workload.name}\` that denies assuming ${deny.map((r) => `\`${r.slice(r.lastIndexOf("/") + 1)}\``).join(", ")} (or drop it from those roles' trust policies)`,
      );
    }
    const kept = chained.filter((r) => assumed.has(r));
    if (kept.length > 0)
      said.push(
        `it was seen assuming ${kept.map((r) => `\`${r.slice(r.lastIndexOf("/") + 1)}\``).join(", ")}: narrow that role instead`,
      );
  }
  if (chained.length === 0 || inheritedOtherwise) {
    files.push({
      path: `aws/${name}-policy.json`,
      language: "json",
      content: `${JSON.stringify(document, null, 2)}\n`,
    });
    said.push(
      `give \`${ctx.workload.name}\` its own role \`${name}\` with the ${actions} action(s) it used, instead of the inherited grant`,
    );
  }
  return {
    kind: chained.length > 0 && !inheritedOtherwise ? "deny-role-chaining" : "dedicated-identity",
    summary: said.join("; "),
    files,
  };
}

export const awsPlugin: ProviderPlugin = createAwsPlugin();
