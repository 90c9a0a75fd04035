/**
 * The AWS downstream issuer (issue 11): a writ with `aws:` grants redeemed for a role session.
 *
 * role-session mode: `sts:AssumeRole` on the playbook's role with a session policy generated from the
 * writ's grants (`aws/policy.ts`), proven inside the writ before the call (`aws/proof.ts`), lasting
 * the writ's remaining lifetime (STS's floor is 900 s: the credential's notes say so and the ledger
 * record ends with the writ, so revocation ends the session early), named after the writ, with the
 * agent as `SourceIdentity` and `writ:*` session tags so CloudTrail ties every call back to it.
 *
 * STS sessions cannot be recalled. Revocation and the kill switch put AWS's "revoke older sessions"
 * deny on the role as an inline policy (`aws:TokenIssueTime` before now, narrowed to one writ by its
 * `writ:id` tag or to one agent by `aws:SourceIdentity`), recorded in the ledger with the expiry of
 * the longest session it can affect; the reaper removes it then (`revoke` of that record).
 *
 * web-identity mode: the same session (policy, proof, duration, name, source identity and tags),
 * through `sts:AssumeRoleWithWebIdentity` with a token the environment's issuer signs for the call
 * (`aws/web-identity.ts`; AWS verifies it against writ's OIDC discovery and JWKS). writ holds no AWS
 * keys, so it cannot put a deny on the role: revocation and kill cannot reach sessions already made
 * (audited, docs/downstream-aws.md). The agent never holds the token, so it cannot assume the role
 * without the session policy.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { DeleteRolePolicyCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import {
  AssumeRoleCommand,
  type AssumeRoleCommandOutput,
  AssumeRoleWithWebIdentityCommand,
  STSClient,
} from "@aws-sdk/client-sts";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import {
  type AuthorizationDetails,
  importAuthorizationDetails,
  policiesFor,
} from "../analyzer/providers/aws/index.js";
import { q, WritError } from "../core/index.js";
import {
  denyPolicyName,
  isSessionName,
  MAX_SESSION_SECONDS,
  MIN_SESSION_SECONDS,
  ROLE_ARN,
  roleNameOf,
  sessionNameFor,
  TAG_VALUE,
} from "./aws/names.js";
import { SESSION_POLICY_MAX_CHARS, sessionPolicy } from "./aws/policy.js";
import { type ProofResult, proveScoping, type RolePolicies } from "./aws/proof.js";
import { DEFAULT_WEB_IDENTITY_AUDIENCE, WEB_IDENTITY_TOKEN_MAX } from "./aws/web-identity.js";
import { writIntent } from "./intent.js";
import { type DownstreamOutcome, issued, refusal, refused } from "./refusal.js";
import {
  type AwsDownstreamConfig,
  type DownstreamCredential,
  type DownstreamIssuer,
  type DownstreamRecord,
  ERR_DOWNSTREAM_CONFIG,
  type IssuerDeps,
  type WritForIssuer,
} from "./types.js";

export { refusal } from "./refusal.js";

/** The ledger kinds this issuer records. */
export const SESSION_KIND = "sts-session";
export const DENY_KIND = "kill-deny";
/** IAM's default MaxSessionDuration of a role: the retry when a role allows less than asked. */
const DEFAULT_MAX_SESSION_SECONDS = 3600;
/** Proofs of scoping kept per issuer (oldest dropped first). */
const PROOF_CACHE = 512;

type Scope = { readonly writ?: string; readonly agent?: string };

function configError(message: string): WritError {
  return new WritError(ERR_DOWNSTREAM_CONFIG, `downstream aws: ${message}`);
}

/** Reads and checks the broker's own credentials, once, at start. */
async function brokerCredentials(
  cfg: AwsDownstreamConfig,
  env: Readonly<Record<string, string | undefined>>,
): Promise<AwsCredentialIdentity | AwsCredentialIdentityProvider> {
  if (cfg.credentials.from === "env") {
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    const missing = [
      ...(accessKeyId ? [] : ["AWS_ACCESS_KEY_ID"]),
      ...(secretAccessKey ? [] : ["AWS_SECRET_ACCESS_KEY"]),
    ];
    if (missing.length > 0) {
      throw configError(`credentials from the environment: ${missing.join(" and ")} not set`);
    }
    const sessionToken = env.AWS_SESSION_TOKEN;
    return {
      accessKeyId: accessKeyId!,
      secretAccessKey: secretAccessKey!,
      ...(sessionToken ? { sessionToken } : {}),
    };
  }
  const { fromIni } = await import("@aws-sdk/credential-providers");
  const provider = fromIni({ profile: cfg.credentials.profile });
  try {
    await provider();
  } catch (err) {
    throw configError(
      `credentials from profile ${q(cfg.credentials.profile)}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return provider;
}

function checkConfig(cfg: AwsDownstreamConfig): void {
  if (cfg.mode !== "role-session" && cfg.mode !== "web-identity") {
    throw configError(`mode ${q(cfg.mode)}: expected \`role-session\` or \`web-identity\``);
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(cfg.region))
    throw configError(`region ${q(cfg.region)} is not an AWS region`);
  if (cfg.roles.size === 0) throw configError("`roles` names no role");
  if (cfg.audience !== undefined && cfg.mode !== "web-identity") {
    throw configError("`audience` is for web-identity mode only (the web-identity token's `aud`)");
  }
  for (const [playbook, arn] of cfg.roles) {
    if (!ROLE_ARN.test(arn)) throw configError(`roles.${playbook}: ${q(arn)} is not an IAM role ARN`);
  }
  if (cfg.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(cfg.endpoint);
    } catch {
      throw configError(`endpoint ${q(cfg.endpoint)} is not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw configError(`endpoint ${q(cfg.endpoint)} must be http(s)`);
    }
  }
}

/** The configured roles' own policies, from the authorization-details file. */
function loadRoles(cfg: AwsDownstreamConfig): Map<string, RolePolicies> | undefined {
  if (cfg.authorizationDetails === undefined) return undefined;
  let details: AuthorizationDetails;
  try {
    details = importAuthorizationDetails(
      JSON.parse(readFileSync(cfg.authorizationDetails, "utf8")),
      cfg.authorizationDetails,
    );
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw configError(`authorizationDetails ${q(cfg.authorizationDetails)}: ${why}`);
  }
  const out = new Map<string, RolePolicies>();
  for (const arn of new Set(cfg.roles.values())) {
    const role = details.roles.find((r) => r.arn === arn);
    if (!role) throw configError(`role ${q(arn)} is not in ${q(cfg.authorizationDetails)}`);
    const p = policiesFor(details, role);
    if (p.missing.length > 0) {
      throw configError(
        `role ${q(arn)}: ${q(cfg.authorizationDetails)} lacks its attached policy ${q(p.missing[0])} (export with every --filter)`,
      );
    }
    out.set(arn, { arn, identity: p.identity, ...(p.boundary ? { boundary: p.boundary } : {}) });
  }
  return out;
}

function errorName(err: unknown): string {
  const name = (err as { name?: unknown })?.name;
  return typeof name === "string" ? name.replace(/Exception$/, "") : "Error";
}

/** Did the service answer (so nothing was created), rather than the call failing on the way? */
function serviceAnswered(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return typeof status === "number" && status >= 400 && status < 500;
}

function iso(d: Date): string {
  return d.toISOString();
}

function dateOf(v: unknown): Date | undefined {
  if (typeof v !== "string") return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The deny document: every action, for sessions issued before `before`, narrowed to the scope. */
export function denyDocument(scope: Scope, before: Date): string {
  const condition: Record<string, Record<string, string>> = {
    DateLessThan: { "aws:TokenIssueTime": iso(before) },
  };
  if (scope.writ !== undefined) condition.StringEquals = { "aws:PrincipalTag/writ:id": scope.writ };
  else if (scope.agent !== undefined) condition.StringEquals = { "aws:SourceIdentity": scope.agent };
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Deny", Action: "*", Resource: "*", Condition: condition }],
  });
}

export async function awsIssuer(cfg: AwsDownstreamConfig, deps: IssuerDeps): Promise<DownstreamIssuer> {
  checkConfig(cfg);
  const clock = deps.clock ?? (() => new Date());
  const env = deps.env ?? process.env;
  const webIdentity = cfg.mode === "web-identity";
  const signer = deps.webIdentity;
  const audience = cfg.audience ?? DEFAULT_WEB_IDENTITY_AUDIENCE;
  const credentials = webIdentity ? undefined : await brokerCredentials(cfg, env);
  const roles = loadRoles(cfg);
  const common = {
    ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 2,
    // Never hang a redemption or a kill on an unresponsive endpoint.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true },
  };
  // AssumeRoleWithWebIdentity is not signed: in web-identity mode the client holds no credentials.
  const sts = new STSClient({ region: cfg.region, ...common });
  // IAM is global: its requests are signed for us-east-1 in the aws partition.
  const iam = webIdentity ? undefined : new IAMClient({ region: "us-east-1", ...common });
  const allRoles = [...new Set(cfg.roles.values())];

  return new AwsIssuer(cfg, deps, { clock, webIdentity, signer, audience, sts, iam, roles, allRoles });
}

/** What an issue knows once the writ is checked, then once its session is planned. */
interface Checked {
  readonly roleArn: string;
  readonly remaining: number;
  readonly policy: ReturnType<typeof sessionPolicy>;
  readonly notes: readonly string[];
}
interface Asking extends Checked {
  readonly writ: WritForIssuer;
  readonly now: Date;
  readonly tags: { Key: string; Value: string }[];
  readonly duration: number;
  readonly sessionName: string;
  readonly sessionUntil: Date;
  readonly notes: string[];
}
type Audited = Record<string, unknown>;

/** The session tags that tie CloudTrail's records to the writ; a value AWS refuses is a refusal. */
function sessionTags(writ: WritForIssuer): DownstreamOutcome<{ Key: string; Value: string }[]> {
  const tags: { Key: string; Value: string }[] = [
    { Key: "writ:id", Value: writ.id },
    { Key: "writ:agent", Value: writ.agent },
    { Key: "writ:playbook", Value: writ.playbook },
    ...(writ.sponsor ? [{ Key: "writ:sponsor", Value: writ.sponsor }] : []),
  ];
  const badTag = tags.find((t) => !TAG_VALUE.test(t.Value));
  if (badTag) {
    return refused(
      "downstream_not_configured",
      `session tag ${q(badTag.Key)}: ${q(badTag.Value)} is not a value AWS accepts (letters, digits, spaces and _.:/=+-@, at most 256)`,
    );
  }
  return issued(tags);
}

interface AwsParts {
  readonly clock: () => Date;
  readonly webIdentity: boolean;
  readonly signer: IssuerDeps["webIdentity"];
  readonly audience: string;
  readonly sts: STSClient;
  readonly iam: IAMClient | undefined;
  readonly roles: Map<string, RolePolicies> | undefined;
  readonly allRoles: readonly string[];
}

class AwsIssuer implements DownstreamIssuer {
  readonly system = "aws" as const;
  private readonly clock: () => Date;
  private readonly webIdentity: boolean;
  private readonly signer: IssuerDeps["webIdentity"];
  private readonly audience: string;
  private readonly sts: STSClient;
  private readonly iam: IAMClient | undefined;
  private readonly roles: Map<string, RolePolicies> | undefined;
  private readonly allRoles: readonly string[];
  /**
   * Proofs already made, by role, policy, grants and denies (all the proof reads; the role's
   * policies are fixed for the issuer's life): the same playbook redeemed again is not re-proven.
   */
  private readonly proofs = new Map<string, ProofResult>();
  /** The environment of the writs this issuer serves (one config per environment), once one is seen. */
  private lastEnvironment = "";
  /** Deny policy names this issuer has put, per role, oldest first (for the LimitExceeded fallback). */
  private readonly putNames = new Map<string, string[]>();
  /**
   * Agent-wide and role-wide denies this issuer has put, per role: a session they already stop
   * needs no deny of its own (a kill of an agent with many writs would otherwise fill the role's
   * inline-policy space with one deny per writ, and fall back to denying every agent's sessions).
   */
  private readonly wideDenies = new Map<
    string,
    { agent: string | undefined; before: number; until: number }[]
  >();

  constructor(
    private readonly cfg: AwsDownstreamConfig,
    private readonly deps: IssuerDeps,
    parts: AwsParts,
  ) {
    this.clock = parts.clock;
    this.webIdentity = parts.webIdentity;
    this.signer = parts.signer;
    this.audience = parts.audience;
    this.sts = parts.sts;
    this.iam = parts.iam;
    this.roles = parts.roles;
    this.allRoles = parts.allRoles;
  }

  private roleFor(playbook: string): string | undefined {
    return this.cfg.roles.get(playbook) ?? this.cfg.roles.get("*");
  }

  private coveredByWideDeny(
    roleArn: string,
    agent: string,
    issuedAt: number,
    until: number,
    now: Date,
  ): boolean {
    return (this.wideDenies.get(roleArn) ?? []).some(
      (d) =>
        (d.agent === undefined || d.agent === agent) &&
        d.before > issuedAt &&
        d.until >= until &&
        d.until > now.getTime(),
    );
  }

  private async putDeny(
    roleArn: string,
    scope: Scope,
    now: Date,
    until: Date,
    environment: string,
    name: string = denyPolicyName(scope),
  ): Promise<void> {
    // Whole seconds, rounded up: a session issued within this second is covered too.
    const before = new Date(Math.ceil((now.getTime() + 1) / 1000) * 1000);
    const roleName = roleNameOf(roleArn);
    const all = denyPolicyName({});
    const narrow = scope.writ !== undefined || scope.agent !== undefined;
    const record = await this.deps.ledger.intend({
      id: `ds_${randomBytes(12).toString("base64url")}`,
      system: "aws",
      environment,
      writ: `kill:${name}`,
      agent: scope.agent ?? "*",
      kind: DENY_KIND,
      locator: { roleArn, roleName, policyName: name, issuedBefore: iso(before) },
      expiresAt: until,
      outlivesWrit: true,
    });
    try {
      await this.iam!.send(
        new PutRolePolicyCommand({
          RoleName: roleName,
          PolicyName: name,
          PolicyDocument: denyDocument(scope, before),
        }),
      );
    } catch (err) {
      if (serviceAnswered(err)) await this.deps.ledger.removed(record.id);
      await this.deps.audit("downstream.aws.deny_failed", {
        role: roleArn,
        policy: name,
        error: errorName(err),
        ...scope,
      });
      if (errorName(err) === "LimitExceeded") {
        const over = [...(this.putNames.get(roleArn) ?? [])].reverse().find((n) => n !== all && n !== name);
        const next = narrow ? all : name === all ? over : undefined;
        if (next !== undefined) {
          await this.deps.audit("downstream.aws.deny_widened", {
            role: roleArn,
            policy: next,
            instead: name,
            ...scope,
          });
          await this.putDeny(roleArn, {}, now, until, environment, next);
          return;
        }
      }
      throw refusal(
        "downstream_unavailable",
        `putting the revoke-older-sessions deny ${q(name)} on ${q(roleArn)} failed: ${errorName(err)}: ${(err as Error).message}`,
      );
    }
    await this.deps.ledger.created(record.id);
    const names = this.putNames.get(roleArn) ?? [];
    this.putNames.set(roleArn, [...names.filter((n) => n !== name), name]);
    if (scope.writ === undefined) {
      const wide = (this.wideDenies.get(roleArn) ?? []).filter((d) => d.until > now.getTime());
      wide.push({ agent: scope.agent, before: before.getTime(), until: until.getTime() });
      this.wideDenies.set(roleArn, wide);
    }
    await this.deps.audit("downstream.aws.deny_put", {
      role: roleArn,
      policy: name,
      issuedBefore: iso(before),
      until: iso(until),
      ...scope,
    });
  }

  /**
   * A role session for the writ, in order: checked (role, lifetime, session policy, its proof),
   * tagged, planned, recorded as intent, assumed (shorter if the role's maximum is lower),
   * recorded as created.
   */
  async issue(
    writ: WritForIssuer,
    now: Date = this.clock(),
  ): Promise<DownstreamOutcome<DownstreamCredential>> {
    this.lastEnvironment = writ.environment;
    const checked = await this.checked(writ, now);
    if (!checked.ok) return checked;
    const tags = sessionTags(writ);
    if (!tags.ok) return tags;
    const a = this.asking(writ, now, checked.value, tags.value);
    const record = await this.deps.ledger.intend(
      writIntent(a.writ, {
        id: `ds_${randomBytes(12).toString("base64url")}`,
        system: "aws",
        kind: SESSION_KIND,
        locator: { roleArn: a.roleArn, sessionName: a.sessionName, sessionUntil: iso(a.sessionUntil) },
      }),
    );
    const audited = {
      writ: a.writ.id,
      agent: a.writ.agent,
      playbook: a.writ.playbook,
      mode: this.cfg.mode,
      role: a.roleArn,
      sessionName: a.sessionName,
      durationSeconds: a.duration,
      policyChars: a.policy.json.length,
    };
    const out = await this.assumed(a, record, audited);
    if (!out.ok) return out;
    return this.created(a, out.value, record, audited);
  }

  /** The writ's role, its lifetime left, its session policy proven inside it, or a refusal. */
  private async checked(writ: WritForIssuer, now: Date): Promise<DownstreamOutcome<Checked>> {
    const roleArn = this.roleFor(writ.playbook);
    if (!roleArn) {
      return refused("downstream_not_configured", `no AWS role for playbook ${q(writ.playbook)} (nor \`*\`)`);
    }
    const remaining = Math.floor((writ.expiresAt.getTime() - now.getTime()) / 1000);
    if (remaining <= 0) return refused("downstream_unavailable", `writ ${q(writ.id)} has expired`);
    const policy = sessionPolicy(writ.grants, writ.denies);
    const left = policy.untranslatable.map(
      (u) => `grant \`${u.grant.action}\` on \`${u.grant.resource}\` is not in the session: ${u.why}`,
    );
    if (policy.translated.length === 0) {
      return refused(
        "downstream_no_grants",
        `writ ${q(writ.id)} has no AWS grant an IAM session policy can hold${left.length ? ` (${left.join("; ")})` : ""}`,
      );
    }
    if (policy.json.length > SESSION_POLICY_MAX_CHARS) {
      return refused(
        "downstream_policy_too_large",
        `the session policy for writ ${q(writ.id)} is ${policy.json.length} characters; STS takes at most ${SESSION_POLICY_MAX_CHARS}: narrow or merge the playbook's AWS grants`,
      );
    }
    const proofKey = JSON.stringify([roleArn, policy.json, writ.grants, writ.denies]);
    let proof = this.proofs.get(proofKey);
    if (!proof) {
      proof = proveScoping({
        policyJson: policy.json,
        grants: writ.grants,
        denies: writ.denies,
        role: this.roles?.get(roleArn),
      });
      if (this.proofs.size >= PROOF_CACHE) this.proofs.delete(this.proofs.keys().next().value!);
      this.proofs.set(proofKey, proof);
    }
    if (!proof.ok) {
      await this.deps.audit("downstream.aws.refused", {
        writ: writ.id,
        agent: writ.agent,
        reason: "downstream_scope_exceeds_writ",
        violation: proof.violation,
      });
      return refused(
        "downstream_scope_exceeds_writ",
        `the role session would exceed writ ${q(writ.id)}: ${proof.violation}`,
      );
    }
    if (!isSessionName(writ.agent)) {
      return refused(
        "downstream_not_configured",
        `agent id ${q(writ.agent)} cannot be an AWS SourceIdentity (2–64 characters of letters, digits and _+=,.@-)`,
      );
    }
    return issued({ roleArn, remaining, policy, notes: [...left, ...proof.notes] });
  }

  /** The session's duration (STS's bounds), name and rough end, and the notes on its lifetime. */
  private asking(
    writ: WritForIssuer,
    now: Date,
    checked: Checked,
    tags: { Key: string; Value: string }[],
  ): Asking {
    const duration = Math.min(Math.max(checked.remaining, MIN_SESSION_SECONDS), MAX_SESSION_SECONDS);
    const sessionName = sessionNameFor(writ.id);
    // Until STS answers, the session's end is known only roughly: a minute of margin for clocks.
    const sessionUntil = new Date(now.getTime() + (duration + 60) * 1000);
    const notes = [...checked.notes];
    if (checked.remaining < MIN_SESSION_SECONDS) {
      notes.push(
        this.webIdentity
          ? `STS's shortest session is ${MIN_SESSION_SECONDS} s and the writ has ${checked.remaining} s left: in web-identity mode writ holds no AWS keys and cannot end the session early; it lasts past the writ's expiry (${iso(writ.expiresAt)})`
          : `STS's shortest session is ${MIN_SESSION_SECONDS} s and the writ has ${checked.remaining} s left: writ ends the session at the writ's expiry (${iso(writ.expiresAt)}) by revocation, through a deny on the role`,
      );
    }
    return { writ, now, ...checked, tags, duration, sessionName, sessionUntil, notes };
  }

  /**
   * AssumeRole, or AssumeRoleWithWebIdentity with a token the environment issuer signs; refused
   * before the call when the token cannot be made. STS's own failures reject.
   */
  private async assume(a: Asking, seconds: number): Promise<DownstreamOutcome<AssumeRoleCommandOutput>> {
    if (!this.webIdentity) {
      const out = await this.sts.send(
        new AssumeRoleCommand({
          RoleArn: a.roleArn,
          RoleSessionName: a.sessionName,
          Policy: a.policy.json,
          DurationSeconds: seconds,
          SourceIdentity: a.writ.agent,
          Tags: a.tags,
        }),
      );
      return issued(out);
    }
    if (this.signer === undefined) {
      return refused(
        "downstream_not_configured",
        "web-identity tokens are signed by `writ serve`'s environment issuer, which this process does not serve",
      );
    }
    // the source identity and the tags travel in the token (AWS's claims), signed by the issuer
    const token = await this.signer.sign(
      a.writ.environment,
      {
        subject: a.writ.agent,
        audience: this.audience,
        sourceIdentity: a.writ.agent,
        tags: a.tags,
        jti: `${a.writ.id}.${randomBytes(9).toString("base64url")}`,
        expiresAt: a.writ.expiresAt,
      },
      a.now,
    );
    if (token.length > WEB_IDENTITY_TOKEN_MAX) {
      return refused(
        "downstream_policy_too_large",
        `the web-identity token is ${token.length} characters; STS takes at most ${WEB_IDENTITY_TOKEN_MAX}`,
      );
    }
    const out = await this.sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: a.roleArn,
        RoleSessionName: a.sessionName,
        WebIdentityToken: token,
        Policy: a.policy.json,
        DurationSeconds: seconds,
      }),
    );
    return issued(out);
  }

  /** The session from STS; a failure removes the intent when nothing can have been made. */
  private async assumed(
    a: Asking,
    record: DownstreamRecord,
    audited: Audited,
  ): Promise<DownstreamOutcome<AssumeRoleCommandOutput>> {
    let out: DownstreamOutcome<AssumeRoleCommandOutput>;
    try {
      out = await this.assumedWithin(a);
    } catch (err) {
      // A service's answer means nothing was made; anything else may have made a session.
      if (serviceAnswered(err)) await this.deps.ledger.removed(record.id);
      await this.deps.audit("downstream.aws.assume_role", {
        ...audited,
        outcome: "failed",
        error: errorName(err),
      });
      const name = errorName(err);
      if (name === "PackedPolicyTooLarge") {
        return refused(
          "downstream_policy_too_large",
          `STS: the session policy and tags are too large packed: ${(err as Error).message}`,
        );
      }
      return refused(
        "downstream_unavailable",
        `STS ${this.webIdentity ? "AssumeRoleWithWebIdentity" : "AssumeRole"} on ${q(a.roleArn)} failed: ${name}: ${(err as Error).message}`,
      );
    }
    if (!out.ok) {
      // refused before the call: nothing was made (the record's `error` is the one it has always
      // named a refusal by, the refusal error's name)
      await this.deps.ledger.removed(record.id);
      await this.deps.audit("downstream.aws.assume_role", {
        ...audited,
        outcome: "failed",
        error: "WritError",
      });
    }
    return out;
  }

  /**
   * The session for the writ's lifetime; when the role's MaxSessionDuration (IAM's default:
   * 3,600 s) is below it, a shorter one, renewed by `writ creds` while the writ lasts, is still
   * inside the writ.
   */
  private async assumedWithin(a: Asking): Promise<DownstreamOutcome<AssumeRoleCommandOutput>> {
    try {
      return await this.assume(a, a.duration);
    } catch (err) {
      if (
        a.duration <= DEFAULT_MAX_SESSION_SECONDS ||
        errorName(err) !== "ValidationError" ||
        !/MaxSessionDuration/.test((err as Error).message)
      ) {
        throw err;
      }
      const shorter = await this.assume(a, DEFAULT_MAX_SESSION_SECONDS);
      if (shorter.ok) {
        a.notes.push(
          `the role's MaxSessionDuration is below the writ's ${a.remaining} s: the session lasts ${DEFAULT_MAX_SESSION_SECONDS} s; redeem the writ again for the rest of its life`,
        );
      }
      return shorter;
    }
  }

  /** STS's credentials recorded, audited and handed out. */
  private async created(
    a: Asking,
    out: AssumeRoleCommandOutput,
    record: DownstreamRecord,
    audited: Audited,
  ): Promise<DownstreamOutcome<DownstreamCredential>> {
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date)) {
      await this.deps.audit("downstream.aws.assume_role", {
        ...audited,
        outcome: "failed",
        error: "NoCredentials",
      });
      return refused("downstream_unavailable", "STS answered AssumeRole without credentials");
    }
    await this.deps.ledger.created(record.id, {
      roleArn: a.roleArn,
      sessionName: a.sessionName,
      sessionUntil: iso(c.Expiration),
      // no later than STS issued it (we have its answer): a deny of sessions issued before a later
      // instant stops this one
      issuedAt: iso(new Date()),
      accessKeyId: c.AccessKeyId,
      ...(out.AssumedRoleUser?.Arn ? { assumedRoleArn: out.AssumedRoleUser.Arn } : {}),
    });
    await this.deps.audit("downstream.aws.assume_role", {
      ...audited,
      outcome: "created",
      accessKeyId: c.AccessKeyId,
      expiration: iso(c.Expiration),
    });
    return issued({
      system: "aws",
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
      notes: a.notes,
    });
  }

  async revoke(record: DownstreamRecord, now: Date = this.clock()): Promise<void> {
    if (record.system !== "aws") return;
    if (record.kind === SESSION_KIND) {
      if (this.webIdentity) return;
      const until =
        dateOf(record.locator.sessionUntil) ?? new Date(now.getTime() + MAX_SESSION_SECONDS * 1000);
      const roleArn = typeof record.locator.roleArn === "string" ? record.locator.roleArn : undefined;
      // Expired by itself, or never made (no role): nothing left to stop.
      if (until.getTime() <= now.getTime() || !roleArn) return;
      const issuedAt = dateOf(record.locator.issuedAt);
      if (
        issuedAt !== undefined &&
        this.coveredByWideDeny(roleArn, record.agent, issuedAt.getTime(), until.getTime(), now)
      ) {
        await this.deps.audit("downstream.aws.deny_covered", {
          writ: record.writ,
          agent: record.agent,
          role: roleArn,
        });
        return;
      }
      await this.putDeny(roleArn, { writ: record.writ }, now, until, record.environment);
      return;
    }
    if (record.kind !== DENY_KIND || this.webIdentity) return;
    const { roleArn, roleName, policyName } = record.locator as Record<string, unknown>;
    if (typeof roleName !== "string" || typeof policyName !== "string") return;
    if (now.getTime() < record.expiresAt.getTime()) {
      // Asked early (its record was listed before its time): the deny must stay, so a fresh record
      // keeps it until then and this one can be closed.
      const again = await this.deps.ledger.intend({
        id: `ds_${randomBytes(12).toString("base64url")}`,
        system: "aws",
        environment: record.environment,
        writ: record.writ,
        agent: record.agent,
        kind: DENY_KIND,
        locator: record.locator,
        expiresAt: record.expiresAt,
        outlivesWrit: true,
      });
      await this.deps.ledger.created(again.id);
      return;
    }
    // The same policy name may have been put again later (a second kill of the same scope): the
    // latest record removes it.
    const siblings = await this.deps.ledger.ofWrit(record.writ);
    const later = siblings.some(
      (r) =>
        r.id !== record.id &&
        r.state !== "removed" &&
        r.kind === DENY_KIND &&
        r.locator.roleName === roleName &&
        r.locator.policyName === policyName &&
        r.expiresAt.getTime() > record.expiresAt.getTime(),
    );
    if (later) return;
    try {
      await this.iam!.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }));
    } catch (err) {
      if (errorName(err) !== "NoSuchEntity") {
        throw refusal(
          "downstream_unavailable",
          `removing deny ${q(policyName)} from ${q(String(roleArn))} failed: ${errorName(err)}`,
        );
      }
    }
    await this.deps.audit("downstream.aws.deny_removed", { role: roleArn, policy: policyName });
  }

  async kill(scope: Scope, now: Date = this.clock()): Promise<void> {
    if (this.webIdentity) {
      await this.deps.audit("downstream.aws.kill_unreachable", {
        ...scope,
        why: "web-identity mode: writ holds no AWS credentials; sessions already made run to their end",
      });
      return;
    }
    if (scope.writ !== undefined) {
      const sessions = (await this.deps.ledger.ofWrit(scope.writ)).filter(
        (r) => r.system === "aws" && r.kind === SESSION_KIND,
      );
      const byRole = new Map<string, Date>();
      const environment = sessions[0]?.environment ?? "";
      for (const r of sessions) {
        const role = r.locator.roleArn;
        if (typeof role !== "string") continue;
        const until = dateOf(r.locator.sessionUntil) ?? new Date(now.getTime() + MAX_SESSION_SECONDS * 1000);
        if (until.getTime() <= now.getTime()) continue;
        const prev = byRole.get(role);
        if (!prev || until > prev) byRole.set(role, until);
      }
      for (const [role, until] of byRole)
        await this.putDeny(role, { writ: scope.writ }, now, until, environment);
      return;
    }
    // Sessions this issuer could have made end by STS's longest duration after now.
    const until = new Date(now.getTime() + MAX_SESSION_SECONDS * 1000);
    const failures: unknown[] = [];
    for (const role of this.allRoles) {
      try {
        await this.putDeny(role, scope, now, until, this.lastEnvironment);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}
