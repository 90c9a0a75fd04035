/**
 * A fake of AWS STS and IAM for tests, on 127.0.0.1 port 0, speaking their Query APIs (form-encoded
 * POST, XML answers in the documented shapes, `ErrorResponse` with the documented codes) and driven
 * by the real `@aws-sdk/client-sts` and `@aws-sdk/client-iam` with `endpoint` set.
 *
 * What it checks, as AWS does: every request's SigV4 signature (`sigv4.ts`) against the keys it
 * knows; AssumeRole's parameters (RoleSessionName and SourceIdentity shapes, DurationSeconds between
 * 900 and the role's MaxSessionDuration, at most 50 tags of the allowed shapes), the session policy
 * (over 2,048 characters: `ValidationError`; not JSON or not valid IAM: `MalformedPolicyDocument`;
 * policy + tags beyond the packed budget: `PackedPolicyTooLarge`), and the role's trust policy for
 * `sts:AssumeRole`, `sts:TagSession` and `sts:SetSourceIdentity` (writ's IAM evaluator). IAM's
 * PutRolePolicy/DeleteRolePolicy: the role exists (`NoSuchEntity`), the name's shape, the document
 * (`MalformedPolicyDocument`), the role's 10,240-character inline budget (`LimitExceeded`), and the
 * broker's own identity policy when one is given.
 *
 * `use(accessKeyId, action, resource)` stands for a call made with an issued session: the role's
 * policies (inline, deny policies included, and managed) ∩ the session policy, evaluated by writ's
 * evaluator with the session's `aws:TokenIssueTime`, `aws:SourceIdentity` and tags.
 * docs/downstream-aws.md lists what it does not reproduce.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { deflateRawSync } from "node:zlib";
import {
  type Decision,
  evaluate,
  type Policy,
  parsePolicy,
  principalFromArn,
} from "../../src/analyzer/aws/index.js";
import { type SigningKey, verifySigV4 } from "./sigv4.js";

export interface FakeRole {
  readonly arn: string;
  /** The trust policy (JSON text or object). */
  readonly trust: unknown;
  /** Managed/inline identity policies the role starts with. */
  readonly policies: readonly unknown[];
  /** Default 3,600 s, as IAM's default. */
  readonly maxSessionDuration?: number;
}

export interface FakeAwsOptions {
  readonly account?: string;
  /** The broker's long-term key. */
  readonly broker: {
    readonly userArn: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
  };
  /** The broker's identity policies; when given, IAM calls must be allowed by them. */
  readonly brokerPolicies?: readonly unknown[];
  readonly roles: readonly FakeRole[];
  /** The packed-size budget in bytes of deflated policy + tags (a model: AWS does not publish its packing). */
  readonly packedBudget?: number;
  readonly clock?: () => Date;
}

export interface IssuedSession {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly sourceIdentity?: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly policy?: Policy | undefined;
  readonly policyText?: string | undefined;
  readonly durationSeconds: number;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface UseResult {
  readonly allowed: boolean;
  readonly reason: string;
  readonly decision?: Decision;
}

interface RoleState {
  readonly arn: string;
  readonly name: string;
  readonly trust: Policy;
  readonly managed: readonly Policy[];
  readonly inline: Map<string, { text: string; policy: Policy }>;
  readonly maxSessionDuration: number;
}

const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/";
const NAME = /^[\w+=,.@-]*$/;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

class AwsFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function xml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class FakeAws {
  readonly sessions: IssuedSession[] = [];
  /** Every request the fake answered: service, action, error code (if any). */
  readonly calls: { service: string; action: string; code?: string }[] = [];
  private readonly roles = new Map<string, RoleState>();
  private readonly brokerPolicies: Policy[] | undefined;
  private readonly clock: () => Date;
  private server?: Server;
  endpoint = "";

  constructor(private readonly opts: FakeAwsOptions) {
    this.clock = opts.clock ?? (() => new Date());
    for (const r of opts.roles) {
      this.roles.set(r.arn, {
        arn: r.arn,
        name: r.arn.slice(r.arn.lastIndexOf("/") + 1),
        trust: parsePolicy("resource", `${r.arn}/trust`, r.trust),
        managed: r.policies.map((p, i) => parsePolicy("identity", `${r.arn}/policy/${i}`, p)),
        inline: new Map(),
        maxSessionDuration: r.maxSessionDuration ?? 3600,
      });
    }
    this.brokerPolicies = opts.brokerPolicies?.map((p, i) => parsePolicy("identity", `broker/${i}`, p));
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The inline policies currently on a role (name → JSON text). */
  inlinePolicies(roleArn: string): ReadonlyMap<string, string> {
    const r = this.roles.get(roleArn);
    return new Map([...(r?.inline ?? new Map()).entries()].map(([k, v]) => [k, v.text]));
  }

  private key(accessKeyId: string): SigningKey | undefined {
    if (accessKeyId === this.opts.broker.accessKeyId) {
      return { accessKeyId, secretAccessKey: this.opts.broker.secretAccessKey };
    }
    const s = this.sessions.find((x) => x.accessKeyId === accessKeyId);
    return s ? { accessKeyId, secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken } : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    let service = "sts";
    let action = "";
    try {
      if (req.method !== "POST") throw new AwsFault(400, "InvalidAction", "only POST is served");
      const sig = verifySigV4(
        { method: req.method, url: req.url ?? "/", headers: req.headers, body },
        (id) => this.key(id),
        this.clock(),
      );
      if (!sig.ok) throw new AwsFault(403, sig.code, sig.message);
      service = sig.service;
      if (sig.accessKeyId !== this.opts.broker.accessKeyId) {
        throw new AwsFault(403, "AccessDenied", "only the broker's key calls STS and IAM here");
      }
      const params = new URLSearchParams(body.toString("utf8"));
      action = params.get("Action") ?? "";
      const version = params.get("Version");
      let answer: string;
      if (service === "sts") {
        if (version !== "2011-06-15")
          throw new AwsFault(400, "InvalidParameterValue", `bad Version ${version}`);
        if (action !== "AssumeRole") throw new AwsFault(400, "InvalidAction", `${action} is not served`);
        answer = this.assumeRole(params);
      } else if (service === "iam") {
        if (version !== "2010-05-08")
          throw new AwsFault(400, "InvalidParameterValue", `bad Version ${version}`);
        if (action === "PutRolePolicy") answer = this.putRolePolicy(params);
        else if (action === "DeleteRolePolicy") answer = this.deleteRolePolicy(params);
        else throw new AwsFault(400, "InvalidAction", `${action} is not served`);
      } else throw new AwsFault(400, "InvalidAction", `service ${service} is not served`);
      this.calls.push({ service, action });
      res.writeHead(200, { "content-type": "text/xml", "x-amzn-requestid": randomUUID() });
      res.end(answer);
    } catch (err) {
      const f = err instanceof AwsFault ? err : new AwsFault(500, "InternalFailure", String(err));
      this.calls.push({ service, action, code: f.code });
      const ns = service === "iam" ? IAM_NS : STS_NS;
      const requestId = randomUUID();
      res.writeHead(f.status, { "content-type": "text/xml", "x-amzn-requestid": requestId });
      res.end(
        `<ErrorResponse xmlns="${ns}"><Error><Type>${f.status >= 500 ? "Receiver" : "Sender"}</Type><Code>${xml(f.code)}</Code><Message>${xml(f.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
  }

  private validation(message: string): AwsFault {
    return new AwsFault(400, "ValidationError", `1 validation error detected: ${message}`);
  }

  private assumeRole(p: URLSearchParams): string {
    const now = this.clock();
    const roleArn = p.get("RoleArn") ?? "";
    const sessionName = p.get("RoleSessionName") ?? "";
    if (roleArn.length < 20 || roleArn.length > 2048)
      throw this.validation("Value at 'roleArn' failed to satisfy constraint");
    if (sessionName.length < 2 || sessionName.length > 64 || !NAME.test(sessionName)) {
      throw this.validation(
        `Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
      );
    }
    const sourceIdentity = p.get("SourceIdentity") ?? undefined;
    if (sourceIdentity !== undefined) {
      if (sourceIdentity.length < 2 || sourceIdentity.length > 64 || !NAME.test(sourceIdentity)) {
        throw this.validation(`Value '${sourceIdentity}' at 'sourceIdentity' failed to satisfy constraint`);
      }
      if (sourceIdentity.toLowerCase().startsWith("aws:"))
        throw this.validation("SourceIdentity cannot start with aws:");
    }
    const tags: Record<string, string> = {};
    for (let i = 1; p.has(`Tags.member.${i}.Key`); i++) {
      const k = p.get(`Tags.member.${i}.Key`)!;
      const v = p.get(`Tags.member.${i}.Value`) ?? "";
      if (!TAG_KEY.test(k) || !TAG_VALUE.test(v) || k.toLowerCase().startsWith("aws:")) {
        throw this.validation(`Value at 'tags.${i}' failed to satisfy constraint`);
      }
      if (Object.keys(tags).some((x) => x.toLowerCase() === k.toLowerCase())) {
        throw new AwsFault(400, "InvalidParameterValue", `Duplicate tag keys found: ${k}`);
      }
      tags[k] = v;
    }
    if (Object.keys(tags).length > 50)
      throw this.validation("Member must have length less than or equal to 50 (tags)");
    const durationText = p.get("DurationSeconds");
    const duration = durationText === null ? 3600 : Number(durationText);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) {
      throw this.validation(
        `Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`,
      );
    }
    const policyText = p.get("Policy") ?? undefined;
    let policy: Policy | undefined;
    if (policyText !== undefined) {
      if (policyText.length > 2048) {
        throw this.validation(
          "Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048",
        );
      }
      let doc: unknown;
      try {
        doc = JSON.parse(policyText);
      } catch {
        throw new AwsFault(400, "MalformedPolicyDocument", "The policy is not in the valid JSON format.");
      }
      policy = parsePolicy("session", "session", doc);
      const e = policy.problems.find((x) => x.severity === "error");
      if (e)
        throw new AwsFault(400, "MalformedPolicyDocument", `Syntax errors in policy: ${e.path} ${e.message}`);
      const packed = deflateRawSync(Buffer.from(policyText + JSON.stringify(tags))).length;
      const budget = this.opts.packedBudget ?? 2048;
      if (packed > budget) {
        throw new AwsFault(
          400,
          "PackedPolicyTooLarge",
          `Packed size of the session policy and tags is ${Math.ceil((packed * 100) / budget)}% of the allowed space`,
        );
      }
    }
    const role = this.roles.get(roleArn);
    const denied = (a: string) =>
      new AwsFault(
        403,
        "AccessDenied",
        `User: ${this.opts.broker.userArn} is not authorized to perform: ${a} on resource: ${roleArn}`,
      );
    if (!role) throw denied("sts:AssumeRole");
    const principal = principalFromArn(this.opts.broker.userArn);
    const needed = [
      "sts:AssumeRole",
      ...(Object.keys(tags).length > 0 ? ["sts:TagSession"] : []),
      ...(sourceIdentity !== undefined ? ["sts:SetSourceIdentity"] : []),
    ];
    for (const action of needed) {
      const context: Record<string, string | string[]> = {};
      if (sourceIdentity !== undefined) context["sts:SourceIdentity"] = sourceIdentity;
      for (const [k, v] of Object.entries(tags)) context[`aws:RequestTag/${k}`] = v;
      if (Object.keys(tags).length) context["aws:TagKeys"] = Object.keys(tags);
      const d = evaluate(
        { principal, action, resource: roleArn, context },
        { identity: this.brokerPolicies ?? [], resource: role.trust },
      );
      if (d.decision !== "allow") throw denied(action);
    }
    if (duration > role.maxSessionDuration) {
      throw this.validation(
        `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`,
      );
    }
    const session: IssuedSession = {
      accessKeyId: `ASIA${randomBytes(10).toString("hex").toUpperCase().slice(0, 16)}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(96).toString("base64"),
      roleArn,
      sessionName,
      sourceIdentity,
      tags,
      policy,
      policyText,
      durationSeconds: duration,
      issuedAt: now,
      // AWS states the expiry to the second
      expiresAt: new Date(Math.floor(now.getTime() / 1000) * 1000 + duration * 1000),
    };
    this.sessions.push(session);
    const account = roleArn.split(":")[4];
    const packedPct = policyText
      ? Math.ceil(
          (deflateRawSync(Buffer.from(policyText + JSON.stringify(tags))).length * 100) /
            (this.opts.packedBudget ?? 2048),
        )
      : undefined;
    const expiration = session.expiresAt.toISOString().replace(/\.\d{3}Z$/, "Z");
    return `<AssumeRoleResponse xmlns="${STS_NS}"><AssumeRoleResult>${sourceIdentity ? `<SourceIdentity>${xml(sourceIdentity)}</SourceIdentity>` : ""}<AssumedRoleUser><AssumedRoleId>AROA${randomBytes(8).toString("hex").toUpperCase()}:${xml(sessionName)}</AssumedRoleId><Arn>arn:aws:sts::${account}:assumed-role/${xml(role.name)}/${xml(sessionName)}</Arn></AssumedRoleUser><Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId><SecretAccessKey>${xml(session.secretAccessKey)}</SecretAccessKey><SessionToken>${xml(session.sessionToken)}</SessionToken><Expiration>${expiration}</Expiration></Credentials>${packedPct !== undefined ? `<PackedPolicySize>${packedPct}</PackedPolicySize>` : ""}</AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
  }

  private roleByName(name: string): RoleState {
    for (const r of this.roles.values()) if (r.name === name) return r;
    throw new AwsFault(404, "NoSuchEntity", `The role with name ${name} cannot be found.`);
  }

  private checkBroker(action: string, resource: string): void {
    if (!this.brokerPolicies) return;
    const d = evaluate(
      { principal: principalFromArn(this.opts.broker.userArn), action, resource },
      { identity: this.brokerPolicies },
    );
    if (d.decision !== "allow") {
      throw new AwsFault(
        403,
        "AccessDenied",
        `User: ${this.opts.broker.userArn} is not authorized to perform: ${action} on resource: ${resource}`,
      );
    }
  }

  private putRolePolicy(p: URLSearchParams): string {
    const roleName = p.get("RoleName") ?? "";
    const policyName = p.get("PolicyName") ?? "";
    const doc = p.get("PolicyDocument") ?? "";
    if (policyName.length < 1 || policyName.length > 128 || !NAME.test(policyName)) {
      throw this.validation(`Value '${policyName}' at 'policyName' failed to satisfy constraint`);
    }
    const role = this.roleByName(roleName);
    this.checkBroker("iam:PutRolePolicy", role.arn);
    let parsed: unknown;
    try {
      parsed = JSON.parse(doc);
    } catch {
      throw new AwsFault(400, "MalformedPolicyDocument", "This policy contains invalid Json");
    }
    const policy = parsePolicy("identity", `${role.arn}/inline/${policyName}`, parsed);
    const e = policy.problems.find((x) => x.severity === "error");
    if (e)
      throw new AwsFault(400, "MalformedPolicyDocument", `Syntax errors in policy: ${e.path} ${e.message}`);
    const size = (t: string) => t.replace(/\s/g, "").length;
    let total = size(doc);
    for (const [n, v] of role.inline) if (n !== policyName) total += size(v.text);
    if (total > 10240) {
      throw new AwsFault(
        409,
        "LimitExceeded",
        `Maximum policy size of 10240 bytes exceeded for role ${roleName}`,
      );
    }
    role.inline.set(policyName, { text: doc, policy });
    return `<PutRolePolicyResponse xmlns="${IAM_NS}"><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PutRolePolicyResponse>`;
  }

  private deleteRolePolicy(p: URLSearchParams): string {
    const role = this.roleByName(p.get("RoleName") ?? "");
    const policyName = p.get("PolicyName") ?? "";
    this.checkBroker("iam:DeleteRolePolicy", role.arn);
    if (!role.inline.delete(policyName)) {
      throw new AwsFault(404, "NoSuchEntity", `The role policy with name ${policyName} cannot be found.`);
    }
    return `<DeleteRolePolicyResponse xmlns="${IAM_NS}"><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DeleteRolePolicyResponse>`;
  }

  /** A call made with an issued session's key: allowed as AWS would decide it now. */
  use(accessKeyId: string, action: string, resource: string, at: Date = this.clock()): UseResult {
    const s = this.sessions.find((x) => x.accessKeyId === accessKeyId);
    if (!s) return { allowed: false, reason: "InvalidClientTokenId" };
    if (at.getTime() >= s.expiresAt.getTime()) return { allowed: false, reason: "ExpiredToken" };
    const role = this.roles.get(s.roleArn)!;
    const principal = principalFromArn(
      `arn:aws:sts::${s.roleArn.split(":")[4]}:assumed-role/${role.name}/${s.sessionName}`,
      { roleArn: s.roleArn, tags: { ...s.tags } },
    );
    const context: Record<string, string> = {
      "aws:TokenIssueTime": s.issuedAt.toISOString(),
      "aws:CurrentTime": at.toISOString(),
      "aws:EpochTime": String(Math.floor(at.getTime() / 1000)),
    };
    if (s.sourceIdentity) context["aws:SourceIdentity"] = s.sourceIdentity;
    const decision = evaluate(
      { principal, action, resource, context },
      {
        identity: [...role.managed, ...[...role.inline.values()].map((v) => v.policy)],
        ...(s.policy ? { session: [s.policy] } : {}),
      },
    );
    return { allowed: decision.decision === "allow", reason: decision.reason, decision };
  }
}

export async function startFakeAws(opts: FakeAwsOptions): Promise<FakeAws> {
  return new FakeAws(opts).start();
}
