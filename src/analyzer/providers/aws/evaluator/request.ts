/**
 * Who asks, for what, on which resource, with which context keys. The principal's own context keys
 * (aws:PrincipalArn, aws:username, aws:PrincipalTag/…) are derived here as AWS documents them, and
 * values the caller passes take precedence.
 */
import { WritError } from "../../../../core/index.js";
export type PrincipalKind = "user" | "role-session" | "root" | "federated-user" | "service";

export interface AwsPrincipal {
  readonly kind: PrincipalKind;
  /** The ARN the request is made with: a user, an assumed-role session, root, a federated user; a service name. */
  readonly arn: string;
  readonly account: string;
  readonly partition: string;
  /** For a role session: the role's ARN (with its path). */
  readonly roleArn?: string;
  /** For a federated user session: the IAM user that called GetFederationToken. */
  readonly userArn?: string;
  readonly name?: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** A service-linked role (path `/aws-service-role/`): SCPs and RCPs do not apply. */
  readonly serviceLinked?: boolean;
}

export type ContextValue = string | number | boolean | readonly (string | number | boolean)[];

export interface AwsRequest {
  readonly principal: AwsPrincipal;
  /** `service:Action`. */
  readonly action: string;
  /** An ARN, or `*` for actions that take no resource. */
  readonly resource: string;
  /** The account that owns the resource; read from the ARN when it carries one, else the principal's. */
  readonly resourceAccount?: string;
  readonly context?: Readonly<Record<string, ContextValue>>;
}

export interface ContextEntry {
  readonly key: string;
  readonly values: readonly string[];
  /** Given as a list: a multivalued key. */
  readonly multi: boolean;
}
export type Context = ReadonlyMap<string, ContextEntry>;

/** A principal ARN `principalFromArn` cannot read: a `WritError` with code `ERR_AWS_PRINCIPAL`. */
export class PrincipalError extends WritError {
  constructor(message: string) {
    super("ERR_AWS_PRINCIPAL", message);
  }
}

/** Builds a principal from the ARN a request is made with. A role ARN stands for a session of that role. */
export function principalFromArn(
  arn: string,
  extra: { roleArn?: string; userArn?: string; tags?: Record<string, string>; sessionName?: string } = {},
): AwsPrincipal {
  if (/^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$/.test(arn)) {
    return { kind: "service", arn, account: "", partition: "aws", name: arn };
  }
  const m = /^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$/.exec(arn);
  if (!m)
    throw new PrincipalError(`\`${arn}\` is not an IAM user, role, session, root or federated-user ARN`);
  const [, partition, service, account, rest] = m as unknown as [string, string, string, string, string];
  const tags = extra.tags ? { tags: extra.tags } : {};
  if (service === "iam" && rest === "root") return { kind: "root", arn, account, partition, ...tags };
  if (service === "iam" && rest.startsWith("user/")) {
    return { kind: "user", arn, account, partition, name: rest.slice(rest.lastIndexOf("/") + 1), ...tags };
  }
  if (service === "iam" && rest.startsWith("role/")) {
    const name = rest.slice(rest.lastIndexOf("/") + 1);
    const session = extra.sessionName ?? "writ-simulate";
    return {
      kind: "role-session",
      arn: `arn:${partition}:sts::${account}:assumed-role/${name}/${session}`,
      account,
      partition,
      roleArn: arn,
      name,
      serviceLinked: rest.startsWith("role/aws-service-role/"),
      ...tags,
    };
  }
  if (service === "sts" && rest.startsWith("assumed-role/")) {
    const [, name, session] = rest.split("/");
    if (!name || !session) throw new PrincipalError(`\`${arn}\` is not an assumed-role session ARN`);
    const roleArn = extra.roleArn ?? `arn:${partition}:iam::${account}:role/${name}`;
    return {
      kind: "role-session",
      arn,
      account,
      partition,
      roleArn,
      name,
      serviceLinked: roleArn.includes(":role/aws-service-role/"),
      ...tags,
    };
  }
  if (service === "sts" && rest.startsWith("federated-user/")) {
    return {
      kind: "federated-user",
      arn,
      account,
      partition,
      name: rest.slice("federated-user/".length),
      ...(extra.userArn ? { userArn: extra.userArn } : {}),
      ...tags,
    };
  }
  throw new PrincipalError(`\`${arn}\` is not an IAM user, role, session, root or federated-user ARN`);
}

/** The account in an ARN's fifth field, if it has one (S3 bucket ARNs do not). */
export function arnAccount(arn: string): string | undefined {
  const parts = arn.split(":");
  const acct = parts[4];
  return acct && /^\d{12}$/.test(acct) ? acct : undefined;
}

function put(map: Map<string, ContextEntry>, key: string, value: ContextValue): void {
  const multi = Array.isArray(value);
  const values = (multi ? (value as readonly unknown[]) : [value]).map((v) => String(v));
  map.set(key.toLowerCase(), { key, values, multi });
}

/** The request context: derived principal keys, aws:ResourceAccount, then the caller's keys. */
export function buildContext(req: AwsRequest, resourceAccount: string | undefined): Context {
  const map = new Map<string, ContextEntry>();
  const p = req.principal;
  if (p.kind === "service") {
    put(map, "aws:PrincipalIsAWSService", "true");
    put(map, "aws:PrincipalServiceName", p.arn);
  } else {
    put(map, "aws:PrincipalIsAWSService", "false");
    put(map, "aws:PrincipalAccount", p.account);
    const principalArn = p.kind === "role-session" ? p.roleArn! : p.arn;
    put(map, "aws:PrincipalArn", principalArn);
    const type = {
      user: "User",
      "role-session": "AssumedRole",
      root: "Account",
      "federated-user": "FederatedUser",
    }[p.kind];
    put(map, "aws:PrincipalType", type);
    if (p.kind === "user" && p.name) put(map, "aws:username", p.name);
    for (const [k, v] of Object.entries(p.tags ?? {})) put(map, `aws:PrincipalTag/${k}`, v);
  }
  if (resourceAccount) put(map, "aws:ResourceAccount", resourceAccount);
  for (const [k, v] of Object.entries(req.context ?? {})) put(map, k, v);
  return map;
}
