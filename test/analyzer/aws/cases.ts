/**
 * The evaluator's case corpus (test/cases/aws/*.yaml) read into requests and policy sets. Shared by
 * the library test and the CLI test. A policy in a case is a full document, a list of statements
 * (wrapped in a 2012-10-17 document), or a JSON string (kept as text, to test malformed input).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import {
  type AwsRequest,
  type ContextValue,
  type Organization,
  type Policy,
  type PolicyKind,
  type PolicySet,
  parsePolicy,
  principalFromArn,
} from "../../../src/analyzer/providers/aws/evaluator/index.js";

export const CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "cases", "aws");

type RawPolicy = unknown;
export interface RawCase {
  name: string;
  doc: string;
  principal: string | { arn: string; roleArn?: string; userArn?: string; tags?: Record<string, string> };
  action: string;
  resource: string;
  resourceAccount?: string;
  context?: Record<string, ContextValue>;
  identity?: RawPolicy[];
  boundary?: RawPolicy;
  session?: RawPolicy[];
  resourcePolicy?: RawPolicy;
  organization?: {
    management: string;
    nodes: { id: string; parent?: string; scps?: RawPolicy[]; rcps?: RawPolicy[] }[];
  };
  resourcePolicyRequired?: boolean;
  expect: "allow" | "explicit-deny" | "implicit-deny";
  deciding?: string[];
  errors?: string[];
}
export interface CaseFile {
  file: string;
  docs: Record<string, { title: string; url: string }>;
  cases: RawCase[];
}

export function loadCaseFiles(): CaseFile[] {
  return readdirSync(CASES_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((file) => ({
      file,
      ...(parse(readFileSync(join(CASES_DIR, file), "utf8")) as Omit<CaseFile, "file">),
    }));
}

export function toDocument(raw: RawPolicy): unknown {
  if (Array.isArray(raw)) return { Version: "2012-10-17", Statement: raw };
  return raw;
}

function policy(kind: PolicyKind, id: string, raw: RawPolicy): Policy {
  return parsePolicy(kind, id, toDocument(raw));
}

export function toRequest(c: RawCase): AwsRequest {
  const p = typeof c.principal === "string" ? { arn: c.principal } : c.principal;
  const { arn, ...extra } = p;
  return {
    principal: principalFromArn(arn, extra),
    action: c.action,
    resource: c.resource,
    ...(c.resourceAccount ? { resourceAccount: String(c.resourceAccount) } : {}),
    ...(c.context ? { context: c.context } : {}),
  };
}

export function toPolicySet(c: RawCase): PolicySet {
  const organization: Organization | undefined = c.organization
    ? {
        managementAccountId: String(c.organization.management),
        nodes: c.organization.nodes.map((n) => ({
          id: String(n.id),
          ...(n.parent !== undefined ? { parent: String(n.parent) } : {}),
          ...(n.scps ? { scps: n.scps.map((s, i) => policy("scp", `scp:${n.id}:${i}`, s)) } : {}),
          ...(n.rcps ? { rcps: n.rcps.map((s, i) => policy("rcp", `rcp:${n.id}:${i}`, s)) } : {}),
        })),
      }
    : undefined;
  return {
    identity: (c.identity ?? []).map((p, i) => policy("identity", `identity-${i}`, p)),
    ...(c.boundary !== undefined ? { boundary: policy("boundary", "boundary", c.boundary) } : {}),
    ...(c.session ? { session: c.session.map((p, i) => policy("session", `session-${i}`, p)) } : {}),
    ...(c.resourcePolicy !== undefined ? { resource: policy("resource", "resource", c.resourcePolicy) } : {}),
    ...(organization ? { organization } : {}),
  };
}
