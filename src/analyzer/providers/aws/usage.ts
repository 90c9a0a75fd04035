/**
 * Granted versus used. Over a CloudTrail window, each granted action is used or unused, with the
 * basis of that answer:
 *   observed            — the action itself is (or, for unused, would be) recorded by CloudTrail's
 *                         management events, and the window says so directly;
 *   implied             — through a renamed event (`ListObjectsV2` is `s3:ListBucket`), or an
 *                         action CloudTrail records only as a data event (S3 objects, Lambda
 *                         invocations, DynamoDB items), whose absence may just mean data events
 *                         were off;
 *   service-level only  — a last-accessed export that knows only that the service was (not) used.
 * Failed calls (an `errorCode`) are attempts, not use. The replacement policy keeps the observed
 * actions the original policies allow, narrowed to the resources that were touched, and is then
 * re-evaluated against every observed call and against the original.
 */
import type { AwsCatalog } from "./catalog.js";
import {
  type AwsPrincipal,
  type ContextValue,
  evaluate,
  type Policy,
  type PolicySet,
  parsePolicy,
} from "./evaluator/index.js";
import type { ExpandedAction, Expansion } from "./expand.js";
import type { LastAccessed, TrailEvent } from "./importers/index.js";

export type Confidence = "observed" | "implied" | "service-level only";

export interface ActionUsage {
  readonly action: string;
  readonly used: boolean;
  readonly confidence: Confidence;
  readonly calls: number;
  readonly lastUsed?: string;
}

export interface UsageReport {
  readonly principal: string;
  readonly window: { readonly from?: string; readonly to?: string };
  readonly actions: readonly ActionUsage[];
  readonly unused: readonly ActionUsage[];
  /** Successful calls of actions the grant does not cover (another path allowed them, or none was needed). */
  readonly ungranted: readonly string[];
}

/** Actions AWS authorizes without a permission. */
const PERMISSIONLESS = new Set(["sts:getcalleridentity"]);

/** Actions CloudTrail records only as data events. */
export function isDataEvent(action: string, catalog: AwsCatalog): boolean {
  const [svc, name] = action.split(":") as [string, string];
  if (svc === "s3") {
    const spec = catalog.action(svc, name);
    return spec?.resourceTypes.some((r) => r.name === "object" || r.name === "accesspointobject") ?? false;
  }
  if (svc === "lambda") return /^Invoke/.test(name);
  if (svc === "dynamodb") return /(Item|^Query$|^Scan$|^PartiQL)/.test(name);
  return false;
}

function successful(events: readonly TrailEvent[]): TrailEvent[] {
  return events.filter((e) => !e.errorCode);
}

export function analyzeUsage(
  principal: string,
  granted: Expansion,
  events: readonly TrailEvent[],
  catalog: AwsCatalog,
  lastAccessed: readonly LastAccessed[] = [],
): UsageReport {
  const mine = events.filter((e) => e.principal === principal);
  const ok = successful(mine);
  const seen = new Map<string, { calls: number; last: string; mapped: boolean }>();
  for (const e of ok) {
    const key = e.action.toLowerCase();
    const s = seen.get(key) ?? { calls: 0, last: "", mapped: false };
    s.calls++;
    if (e.time > s.last) s.last = e.time;
    s.mapped ||= e.actionFrom === "mapped";
    seen.set(key, s);
  }
  const servicesSeen = new Set(ok.map((e) => e.action.split(":")[0]!));
  const la = new Map(lastAccessed.map((l) => [l.service, l]));
  const actions: ActionUsage[] = granted.actions.map((g: ExpandedAction) => {
    const s = seen.get(g.action.toLowerCase());
    if (s) {
      return {
        action: g.action,
        used: true,
        confidence: s.mapped ? "implied" : "observed",
        calls: s.calls,
        lastUsed: s.last,
      };
    }
    const svc = g.action.split(":")[0]!;
    const tracked = la.get(svc);
    const actionLevel = tracked?.actions.find((a) => a.action.toLowerCase() === g.action.toLowerCase());
    if (actionLevel?.lastAccessed) {
      return {
        action: g.action,
        used: true,
        confidence: "observed",
        calls: 0,
        lastUsed: actionLevel.lastAccessed,
      };
    }
    if (!servicesSeen.has(svc) && tracked?.lastAccessed && tracked.actions.length === 0) {
      return {
        action: g.action,
        used: true,
        confidence: "service-level only",
        calls: 0,
        lastUsed: tracked.lastAccessed,
      };
    }
    return {
      action: g.action,
      used: false,
      confidence: isDataEvent(g.action, catalog) ? "implied" : "observed",
      calls: 0,
    };
  });
  const grantedSet = new Set(granted.actions.map((a) => a.action.toLowerCase()));
  const ungranted = [...new Set(ok.map((e) => e.action))]
    .filter((a) => !grantedSet.has(a.toLowerCase()) && !PERMISSIONLESS.has(a.toLowerCase()))
    .sort();
  const times = mine
    .map((e) => e.time)
    .filter(Boolean)
    .sort();
  return {
    principal,
    window: {
      ...(times[0] ? { from: times[0] } : {}),
      ...(times.length ? { to: times[times.length - 1]! } : {}),
    },
    actions,
    unused: actions.filter((a) => !a.used),
    ungranted,
  };
}

/** The request context a CloudTrail event carried. */
export function eventContext(e: TrailEvent): Record<string, ContextValue> {
  const ctx: Record<string, ContextValue> = {};
  if (e.time) {
    ctx["aws:CurrentTime"] = e.time;
    ctx["aws:EpochTime"] = String(Math.floor(Date.parse(e.time) / 1000));
  }
  if (e.sourceIp && /^[\d.:a-fA-F]+$/.test(e.sourceIp)) ctx["aws:SourceIp"] = e.sourceIp;
  if (e.region) ctx["aws:RequestedRegion"] = e.region;
  return ctx;
}

export interface Replacement {
  /** Valid IAM JSON. */
  readonly document: {
    Version: "2012-10-17";
    Statement: { Sid: string; Effect: "Allow"; Action: string[]; Resource: string[] }[];
  };
  /** Observed calls left out because the original policies would not allow them. */
  readonly leftOut: readonly {
    readonly action: string;
    readonly resource: string;
    readonly reason: string;
  }[];
}

/** The catalog's spelling of an action, if it knows it. */
function canonical(action: string, catalog: AwsCatalog): string | undefined {
  const [svc, name] = action.split(":") as [string, string];
  const spec = catalog.action(svc, name);
  return spec ? `${spec.service}:${spec.name}` : undefined;
}

export function replacementPolicy(
  principal: AwsPrincipal,
  original: PolicySet,
  events: readonly TrailEvent[],
  catalog: AwsCatalog,
  attribution: string,
): Replacement {
  const byAction = new Map<string, Set<string>>();
  const leftOut: { action: string; resource: string; reason: string }[] = [];
  for (const e of successful(events.filter((x) => x.principal === attribution))) {
    if (PERMISSIONLESS.has(e.action.toLowerCase())) continue;
    const action = canonical(e.action, catalog);
    if (!action) {
      leftOut.push({ action: e.action, resource: "*", reason: "not an action the catalog knows" });
      continue;
    }
    const spec = catalog.action(action.split(":")[0]!, action.split(":")[1]!)!;
    const resources = spec.resourceTypes.length > 0 && e.resources.length > 0 ? e.resources : ["*"];
    for (const resource of resources) {
      const d = evaluate({ principal, action, resource, context: eventContext(e) }, original, { catalog });
      if (d.decision !== "allow") {
        leftOut.push({ action, resource, reason: `the original policies give ${d.decision}: ${d.reason}` });
        continue;
      }
      const set = byAction.get(action) ?? new Set<string>();
      set.add(resource);
      byAction.set(action, set);
    }
  }
  return { document: policyDocumentFrom(byAction), leftOut };
}

/** An IAM policy document: one Allow statement per distinct set of resources. */
export function policyDocumentFrom(
  byAction: ReadonlyMap<string, ReadonlySet<string>>,
): Replacement["document"] {
  const groups = new Map<string, string[]>();
  for (const [action, resources] of byAction) {
    const key = [...resources].sort().join("\n");
    groups.set(key, [...(groups.get(key) ?? []), action]);
  }
  const Statement = [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, actions], i) => ({
      Sid: `Observed${i + 1}`,
      Effect: "Allow" as const,
      Action: actions.sort(),
      Resource: key.split("\n"),
    }));
  return { Version: "2012-10-17", Statement };
}

export interface Verification {
  /** Observed successful calls (that the original allowed) the replacement would not allow. */
  readonly notAllowed: readonly string[];
  /** Grants of the replacement the original does not allow. */
  readonly beyondOriginal: readonly string[];
  readonly checked: number;
}

/** Re-evaluates a replacement: every kept observed call allowed, nothing the original denies. */
export function verifyReplacement(
  principal: AwsPrincipal,
  original: PolicySet,
  replacement: Replacement,
  events: readonly TrailEvent[],
  catalog: AwsCatalog,
  attribution: string,
): Verification {
  const policy: Policy = parsePolicy("identity", "replacement", replacement.document);
  const withReplacement: PolicySet = { ...original, identity: [policy] };
  const notAllowed: string[] = [];
  const beyondOriginal: string[] = [];
  let checked = 0;
  const left = new Set(replacement.leftOut.map((l) => `${l.action}|${l.resource}`));
  for (const e of successful(events.filter((x) => x.principal === attribution))) {
    if (PERMISSIONLESS.has(e.action.toLowerCase())) continue;
    const action = canonical(e.action, catalog);
    if (!action) continue;
    const spec = catalog.action(action.split(":")[0]!, action.split(":")[1]!)!;
    for (const resource of spec.resourceTypes.length > 0 && e.resources.length > 0 ? e.resources : ["*"]) {
      if (left.has(`${action}|${resource}`)) continue;
      checked++;
      const d = evaluate({ principal, action, resource, context: eventContext(e) }, withReplacement, {
        catalog,
      });
      if (d.decision !== "allow") notAllowed.push(`${action} on ${resource} at ${e.time}: ${d.decision}`);
    }
  }
  for (const st of replacement.document.Statement) {
    for (const action of st.Action) {
      for (const resource of st.Resource) {
        checked++;
        const d = evaluate({ principal, action, resource }, original, { catalog });
        if (d.decision !== "allow") {
          // Conditions of the original may need the call's context; retry with each observed call's context.
          const ok = events.some(
            (e) =>
              e.principal === attribution &&
              !e.errorCode &&
              evaluate({ principal, action, resource, context: eventContext(e) }, original, { catalog })
                .decision === "allow",
          );
          if (!ok) beyondOriginal.push(`${action} on ${resource}`);
        }
      }
    }
  }
  return { notAllowed, beyondOriginal, checked };
}
