/**
 * `writ aws simulate`: one IAM decision — allow, explicit deny or implicit deny — with the
 * statements that decided it, from a policy folder and/or `get-account-authorization-details`.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  type AwsPrincipal,
  type ContextValue,
  createCatalog,
  type Decision,
  describe,
  evaluate,
  findPrincipal,
  importAuthorizationDetails,
  importResourcePolicy,
  loadOrganization,
  loadPolicyFolder,
  type Policy,
  type PolicySet,
  PrincipalError,
  parseJson,
  policiesFor,
  principalFromArn,
} from "../analyzer/providers/aws/index.js";
import { q } from "../core/index.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

export interface SimulateOptions {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly resourceAccount?: string;
  readonly context: string[];
  readonly policies?: string;
  readonly authzDetails?: string;
  readonly resourcePolicy?: string;
  readonly organization?: string;
  readonly json: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseContext(pairs: readonly string[]): Record<string, ContextValue> {
  const out: Record<string, ContextValue> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new CliFailure("ERR_USAGE", `--context ${q(kv)}: expected \`key=value\``);
    const key = kv.slice(0, eq);
    const value = kv.slice(eq + 1);
    if (value.startsWith("[")) {
      let list: unknown;
      try {
        list = JSON.parse(value);
      } catch {
        list = undefined;
      }
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
        throw new CliFailure("ERR_USAGE", `--context ${q(kv)}: a list must be a JSON array of strings`);
      }
      out[key] = list as string[];
    } else out[key] = value;
  }
  return out;
}

function readJsonFile(path: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliFailure(
      "ERR_USAGE",
      `${flag} ${q(path)}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`,
    );
  }
  return parseJson(text, path);
}

/** A stand-in for a policy the inputs reference but do not contain: it can never allow. */
function missingPolicy(arn: string): Policy {
  return {
    kind: "identity",
    id: arn,
    version: "2012-10-17",
    statements: [],
    problems: [
      {
        code: "ERR_AWS_POLICY_MALFORMED",
        severity: "error",
        policyId: arn,
        path: "",
        message: "attached but not in the authorization details",
      },
    ],
  };
}

export async function simulate(o: SimulateOptions): Promise<{ decision: Decision; principal: AwsPrincipal }> {
  if (!o.policies && !o.authzDetails) {
    throw new CliFailure("ERR_USAGE", "give --policies DIR and/or --authz-details FILE");
  }
  const context = parseContext(o.context);
  let principal: AwsPrincipal;
  try {
    principal = principalFromArn(o.principal);
  } catch (err) {
    if (err instanceof PrincipalError) throw new CliFailure("ERR_USAGE", `--principal: ${err.message}`);
    throw err;
  }
  let set: PolicySet = o.policies ? loadPolicyFolder(o.policies) : { identity: [] };
  if (o.authzDetails) {
    const details = importAuthorizationDetails(
      readJsonFile(o.authzDetails, "--authz-details"),
      o.authzDetails,
    );
    const lookup =
      principal.kind === "role-session"
        ? (details.roles.find((r) => r.name === principal.name)?.arn ?? principal.roleArn!)
        : principal.arn;
    const entity = findPrincipal(details, lookup);
    if (!entity) {
      throw new CliFailure("ERR_AWS_PRINCIPAL_NOT_FOUND", `${o.authzDetails}: no user or role ${q(lookup)}`);
    }
    if (entity.kind === "role") {
      principal = principalFromArn(principal.arn.includes(":assumed-role/") ? principal.arn : entity.arn, {
        roleArn: entity.arn,
        tags: { ...entity.tags },
      });
    } else principal = principalFromArn(entity.arn, { tags: { ...entity.tags } });
    const found = policiesFor(details, entity);
    const trust = details.roles.find((r) => r.arn === o.resource)?.trust;
    set = {
      ...set,
      identity: [...set.identity, ...found.identity, ...found.missing.map(missingPolicy)],
      ...(found.boundary && !set.boundary ? { boundary: found.boundary } : {}),
      ...(trust && !set.resource && /^sts:assumerole/i.test(o.action) ? { resource: trust } : {}),
    };
  }
  if (o.resourcePolicy) {
    const rp = importResourcePolicy(readJsonFile(o.resourcePolicy, "--resource-policy"), o.resourcePolicy);
    set = { ...set, resource: rp.policy };
  }
  if (o.organization) set = { ...set, organization: loadOrganization(o.organization) };
  const catalog = createCatalog();
  const service = o.action.split(":")[0] ?? "";
  await catalog.load([service]);
  const decision = evaluate(
    {
      principal,
      action: o.action,
      resource: o.resource,
      ...(o.resourceAccount ? { resourceAccount: o.resourceAccount } : {}),
      context,
    },
    set,
    { catalog },
  );
  return { decision, principal };
}

function render(o: SimulateOptions, d: Decision, p: AwsPrincipal): string {
  const lines = [
    `${d.decision}: ${d.reason}`,
    `  principal  ${p.arn}${p.roleArn ? ` (role ${p.roleArn})` : ""}`,
    `  action     ${o.action}`,
    `  resource   ${o.resource}${d.crossAccount ? " (cross-account)" : ""}`,
  ];
  if (d.deciding.length > 0) {
    lines.push("deciding statements:");
    for (const r of d.deciding) lines.push(`  ${r.effect.toLowerCase()}  ${describe(r)}`);
  }
  if (d.errors.length > 0) {
    lines.push("errors:");
    for (const e of d.errors) lines.push(`  ${e.code}: ${e.message}`);
  }
  return lines.join("\n");
}

export function registerAws(program: Command, io: Io, setExit: (code: number) => void): void {
  const aws = program
    .command("aws")
    .description("AWS IAM: simulate decisions with the documented evaluation logic");
  aws
    .command("simulate")
    .description("decide one request: allow, explicit deny or implicit deny, with the deciding statements")
    .requiredOption(
      "--principal <arn>",
      "the caller: a user, role, assumed-role session, root or federated-user ARN",
    )
    .requiredOption("--action <service:Action>", "the IAM action")
    .option("--resource <arn>", "the resource ARN (`*` for actions without a resource)", "*")
    .option("--resource-account <id>", "the account that owns the resource, when its ARN has none (S3)")
    .option(
      "--context <key=value>",
      "a request context key (repeatable; a list as a JSON array)",
      collect,
      [],
    )
    .option(
      "--policies <dir>",
      "a policy folder: identity/, boundary.json, session/, resource.json, organization/",
    )
    .option("--authz-details <file>", "`aws iam get-account-authorization-details` output")
    .option(
      "--resource-policy <file>",
      "the resource-based policy (document or a service's get-*-policy output)",
    )
    .option("--organization <dir>", "an organization tree folder (SCPs and RCPs)")
    .option("--json", "print the decision as JSON", false)
    .action(async (opts: SimulateOptions) => {
      const { decision, principal } = await simulate(opts);
      emit(
        io,
        opts.json,
        { ...decision, principal: principal.arn, action: opts.action, resource: opts.resource },
        () => render(opts, decision, principal),
      );
      setExit(decision.decision === "allow" ? EXIT.ok : EXIT.no);
    });
}
