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
 * AssumeRoleWithWebIdentity (unsigned, as in AWS) against the IAM OIDC providers given: the token's
 * `iss` names a registered provider; `<iss>/.well-known/openid-configuration` and its `jwks_uri` are
 * fetched over HTTP from the issuer (the running writ server); the signature verified with the JWKS
 * key its `kid` names, for RS256…RS512/ES256…ES512 only (no EdDSA, no `none`); `aud` among the
 * provider's client ids, `sub` and `iat` present, `exp` in the future (`ExpiredTokenException`),
 * `nbf` reached; the source identity and tags claims; then the role's trust policy for
 * `sts:AssumeRoleWithWebIdentity` (and `sts:TagSession`, `sts:SetSourceIdentity`) with the
 * provider's `<provider>:aud` and `<provider>:sub` keys. The session is issued as AssumeRole's.
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
import { compactVerify, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from "jose";
import {
  type Decision,
  evaluate,
  type Policy,
  parsePolicy,
  principalFromArn,
} from "../../src/analyzer/providers/aws/index.js";
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
  /**
   * IAM OIDC identity providers: the issuer URL (AWS: https and no port; here plain http on
   * loopback is taken) and its client ids (audiences).
   */
  readonly oidcProviders?: readonly { readonly url: string; readonly clientIds: readonly string[] }[];
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
  /** AssumeRoleWithWebIdentity: the token's `sub`. */
  readonly subject?: string | undefined;
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
  /** The trust policy with `Federated` principals read as the evaluator's `Service` (exact match). */
  readonly federatedTrust: Policy;
  readonly managed: readonly Policy[];
  readonly inline: Map<string, { text: string; policy: Policy }>;
  readonly maxSessionDuration: number;
}

const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/";
const NAME = /^[\w+=,.@-]*$/;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

/** The signatures STS accepts on a web identity token. */
const WEB_IDENTITY_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"];

/** A trust policy with its `Federated` principals as `Service` ones: the evaluator matches those exactly. */
function federatedAsService(trust: unknown): unknown {
  const doc = typeof trust === "string" ? (JSON.parse(trust) as unknown) : trust;
  if (typeof doc !== "object" || doc === null) return doc;
  const d = doc as { Statement?: unknown };
  const list = Array.isArray(d.Statement) ? d.Statement : d.Statement === undefined ? [] : [d.Statement];
  return {
    ...d,
    Statement: list.map((st: Record<string, unknown>) => {
      const pr = st.Principal as Record<string, unknown> | undefined;
      if (typeof pr !== "object" || pr === null || !("Federated" in pr)) return st;
      const { Federated, ...rest } = pr;
      return { ...st, Principal: { ...rest, Service: Federated } };
    }),
  };
}

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
  /** How many times a web identity token's discovery document was fetched. */
  discoveryFetches = 0;
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
        federatedTrust: parsePolicy("resource", `${r.arn}/trust`, federatedAsService(r.trust)),
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

  private readonly oidc: { url: string; clientIds: readonly string[] }[] = [];

  /** IAM's CreateOpenIDConnectProvider: trust tokens whose `iss` is `url`, for these audiences. */
  addOidcProvider(url: string, clientIds: readonly string[]): void {
    this.oidc.push({ url, clientIds });
  }

  /** IAM's UpdateAssumeRolePolicy. */
  setTrust(roleArn: string, trust: unknown): void {
    const r = this.roles.get(roleArn);
    if (!r) throw new Error(`no role ${roleArn}`);
    this.roles.set(roleArn, {
      ...r,
      trust: parsePolicy("resource", `${roleArn}/trust`, trust),
      federatedTrust: parsePolicy("resource", `${roleArn}/trust`, federatedAsService(trust)),
    });
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
      if (req.headers.authorization === undefined) {
        // AssumeRoleWithWebIdentity is the one call here AWS takes unsigned: the token is the proof
        const params = new URLSearchParams(body.toString("utf8"));
        action = params.get("Action") ?? "";
        if (action !== "AssumeRoleWithWebIdentity")
          throw new AwsFault(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
        if (params.get("Version") !== "2011-06-15")
          throw new AwsFault(400, "InvalidParameterValue", `bad Version ${params.get("Version")}`);
        const answer = await this.assumeRoleWithWebIdentity(params);
        this.calls.push({ service, action });
        res.writeHead(200, { "content-type": "text/xml", "x-amzn-requestid": randomUUID() });
        res.end(answer);
        return;
      }
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

  private sessionName(p: URLSearchParams): { roleArn: string; sessionName: string } {
    const roleArn = p.get("RoleArn") ?? "";
    const sessionName = p.get("RoleSessionName") ?? "";
    if (roleArn.length < 20 || roleArn.length > 2048)
      throw this.validation("Value at 'roleArn' failed to satisfy constraint");
    if (sessionName.length < 2 || sessionName.length > 64 || !NAME.test(sessionName)) {
      throw this.validation(
        `Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
      );
    }
    return { roleArn, sessionName };
  }

  private checkSourceIdentity(sourceIdentity: string | undefined): void {
    if (sourceIdentity === undefined) return;
    if (sourceIdentity.length < 2 || sourceIdentity.length > 64 || !NAME.test(sourceIdentity)) {
      throw this.validation(`Value '${sourceIdentity}' at 'sourceIdentity' failed to satisfy constraint`);
    }
    if (sourceIdentity.toLowerCase().startsWith("aws:"))
      throw this.validation("SourceIdentity cannot start with aws:");
  }

  private checkTags(entries: readonly (readonly [string, string])[]): Record<string, string> {
    const tags: Record<string, string> = {};
    entries.forEach(([k, v], i) => {
      if (!TAG_KEY.test(k) || !TAG_VALUE.test(v) || k.toLowerCase().startsWith("aws:")) {
        throw this.validation(`Value at 'tags.${i + 1}' failed to satisfy constraint`);
      }
      if (Object.keys(tags).some((x) => x.toLowerCase() === k.toLowerCase())) {
        throw new AwsFault(400, "InvalidParameterValue", `Duplicate tag keys found: ${k}`);
      }
      tags[k] = v;
    });
    if (Object.keys(tags).length > 50)
      throw this.validation("Member must have length less than or equal to 50 (tags)");
    return tags;
  }

  private duration(p: URLSearchParams): number {
    const durationText = p.get("DurationSeconds");
    const duration = durationText === null ? 3600 : Number(durationText);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) {
      throw this.validation(
        `Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`,
      );
    }
    return duration;
  }

  private sessionPolicy(
    p: URLSearchParams,
    tags: Record<string, string>,
  ): { policyText: string | undefined; policy: Policy | undefined } {
    const policyText = p.get("Policy") ?? undefined;
    if (policyText === undefined) return { policyText, policy: undefined };
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
    const policy = parsePolicy("session", "session", doc);
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
    return { policyText, policy };
  }

  /** The trust policy's verdict on each action the call needs (`denied` names the first refused). */
  private trusted(
    role: RoleState,
    trust: Policy,
    principal: ReturnType<typeof principalFromArn>,
    first: string,
    sourceIdentity: string | undefined,
    tags: Record<string, string>,
    extra: Record<string, string>,
    denied: (action: string) => AwsFault,
  ): void {
    const needed = [
      first,
      ...(Object.keys(tags).length > 0 ? ["sts:TagSession"] : []),
      ...(sourceIdentity !== undefined ? ["sts:SetSourceIdentity"] : []),
    ];
    for (const action of needed) {
      const context: Record<string, string | string[]> = { ...extra };
      if (sourceIdentity !== undefined) context["sts:SourceIdentity"] = sourceIdentity;
      for (const [k, v] of Object.entries(tags)) context[`aws:RequestTag/${k}`] = v;
      if (Object.keys(tags).length) context["aws:TagKeys"] = Object.keys(tags);
      const d = evaluate(
        { principal, action, resource: role.arn, context },
        { identity: principal.kind === "service" ? [] : (this.brokerPolicies ?? []), resource: trust },
      );
      if (d.decision !== "allow") throw denied(action);
    }
  }

  private grant(
    call: "AssumeRole" | "AssumeRoleWithWebIdentity",
    s: Omit<IssuedSession, "accessKeyId" | "secretAccessKey" | "sessionToken" | "expiresAt">,
    role: RoleState,
    extraXml: string,
  ): string {
    if (s.durationSeconds > role.maxSessionDuration) {
      throw this.validation(
        `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`,
      );
    }
    const session: IssuedSession = {
      ...s,
      accessKeyId: `ASIA${randomBytes(10).toString("hex").toUpperCase().slice(0, 16)}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(96).toString("base64"),
      // AWS states the expiry to the second
      expiresAt: new Date(Math.floor(s.issuedAt.getTime() / 1000) * 1000 + s.durationSeconds * 1000),
    };
    this.sessions.push(session);
    const account = s.roleArn.split(":")[4];
    const packedPct = s.policyText
      ? Math.ceil(
          (deflateRawSync(Buffer.from(s.policyText + JSON.stringify(s.tags))).length * 100) /
            (this.opts.packedBudget ?? 2048),
        )
      : undefined;
    const expiration = session.expiresAt.toISOString().replace(/\.\d{3}Z$/, "Z");
    return `<${call}Response xmlns="${STS_NS}"><${call}Result>${extraXml}${s.sourceIdentity ? `<SourceIdentity>${xml(s.sourceIdentity)}</SourceIdentity>` : ""}<AssumedRoleUser><AssumedRoleId>AROA${randomBytes(8).toString("hex").toUpperCase()}:${xml(s.sessionName)}</AssumedRoleId><Arn>arn:aws:sts::${account}:assumed-role/${xml(role.name)}/${xml(s.sessionName)}</Arn></AssumedRoleUser><Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId><SecretAccessKey>${xml(session.secretAccessKey)}</SecretAccessKey><SessionToken>${xml(session.sessionToken)}</SessionToken><Expiration>${expiration}</Expiration></Credentials>${packedPct !== undefined ? `<PackedPolicySize>${packedPct}</PackedPolicySize>` : ""}</${call}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${call}Response>`;
  }

  private assumeRole(p: URLSearchParams): string {
    const now = this.clock();
    const { roleArn, sessionName } = this.sessionName(p);
    const sourceIdentity = p.get("SourceIdentity") ?? undefined;
    this.checkSourceIdentity(sourceIdentity);
    const entries: [string, string][] = [];
    for (let i = 1; p.has(`Tags.member.${i}.Key`); i++) {
      entries.push([p.get(`Tags.member.${i}.Key`)!, p.get(`Tags.member.${i}.Value`) ?? ""]);
    }
    const tags = this.checkTags(entries);
    const duration = this.duration(p);
    const { policyText, policy } = this.sessionPolicy(p, tags);
    const role = this.roles.get(roleArn);
    const denied = (a: string) =>
      new AwsFault(
        403,
        "AccessDenied",
        `User: ${this.opts.broker.userArn} is not authorized to perform: ${a} on resource: ${roleArn}`,
      );
    if (!role) throw denied("sts:AssumeRole");
    const principal = principalFromArn(this.opts.broker.userArn);
    this.trusted(role, role.trust, principal, "sts:AssumeRole", sourceIdentity, tags, {}, denied);
    return this.grant(
      "AssumeRole",
      {
        roleArn,
        sessionName,
        sourceIdentity,
        tags,
        policy,
        policyText,
        durationSeconds: duration,
        issuedAt: now,
      },
      role,
      "",
    );
  }

  /** The token checked as STS documents it, the keys fetched from the issuer each time (no cache). */
  private async assumeRoleWithWebIdentity(p: URLSearchParams): Promise<string> {
    const now = this.clock();
    const { roleArn, sessionName } = this.sessionName(p);
    const token = p.get("WebIdentityToken") ?? "";
    if (token.length < 4 || token.length > 20000) {
      throw this.validation(
        "Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 20000",
      );
    }
    if (p.has("ProviderId"))
      throw new AwsFault(
        400,
        "InvalidParameterValue",
        "ProviderId is for OAuth 2.0 access tokens of Amazon and Facebook only",
      );
    const invalid = (why: string) => new AwsFault(400, "InvalidIdentityToken", why);
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
      claims = decodeJwt(token) as Record<string, unknown>;
    } catch {
      throw invalid("The web identity token is not a JWT");
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !WEB_IDENTITY_ALGS.includes(alg)) {
      throw invalid(
        `Unsupported signing algorithm ${String(alg)}: RS256, RS384, RS512, ES256, ES384 or ES512`,
      );
    }
    const iss = claims.iss;
    const provider = [...(this.opts.oidcProviders ?? []), ...this.oidc].find((x) => x.url === iss);
    if (typeof iss !== "string" || provider === undefined) {
      throw invalid(`No OpenIDConnect provider found in your account for ${String(iss)}`);
    }
    const getJson = async (url: string): Promise<Record<string, unknown>> => {
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: "error" });
      } catch (err) {
        throw new AwsFault(
          400,
          "IDPCommunicationError",
          `Couldn't retrieve verification key from your identity provider: ${(err as Error).message}`,
        );
      }
      const text = await res.text();
      if (res.status !== 200) {
        throw new AwsFault(
          400,
          "IDPCommunicationError",
          `Couldn't retrieve verification key from your identity provider: ${url} answered ${res.status}`,
        );
      }
      try {
        const v = JSON.parse(text) as unknown;
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
        return v as Record<string, unknown>;
      } catch {
        throw new AwsFault(400, "IDPCommunicationError", `${url} did not answer a JSON object`);
      }
    };
    const discovery = await getJson(`${iss}/.well-known/openid-configuration`);
    this.discoveryFetches++;
    if (discovery.issuer !== iss) throw invalid(`The discovery document's issuer is not ${iss}`);
    if (typeof discovery.jwks_uri !== "string") throw invalid("The discovery document names no jwks_uri");
    const jwks = await getJson(discovery.jwks_uri);
    const keys = Array.isArray(jwks.keys) ? (jwks.keys as JWK[]) : [];
    if (keys.filter((k) => k.kty === "RSA").length > 100 || keys.filter((k) => k.kty === "EC").length > 100) {
      throw invalid("The JWKS holds more than 100 RSA or 100 EC keys");
    }
    const kid = header.kid;
    const candidates = keys.filter(
      (k) => (kid === undefined ? true : k.kid === kid) && (k.alg === undefined || k.alg === alg),
    );
    const jwk = candidates.length === 1 ? candidates[0] : undefined;
    if (jwk === undefined) throw invalid(`No key in the JWKS for kid ${String(kid)} and ${alg}`);
    try {
      await compactVerify(token, await importJWK(jwk, alg), { algorithms: [alg] });
    } catch {
      throw invalid("The web identity token's signature could not be verified");
    }
    const seconds = now.getTime() / 1000;
    const aud = claims.aud;
    const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
    const audience = audiences.find((a) => typeof a === "string" && provider.clientIds.includes(a)) as
      | string
      | undefined;
    if (audience === undefined) throw invalid("Incorrect token audience");
    if (typeof claims.sub !== "string" || claims.sub.length === 0) throw invalid("The token has no sub");
    if (typeof claims.iat !== "number") throw invalid("The token has no iat");
    if (typeof claims.exp !== "number") throw invalid("The token has no exp");
    if (claims.exp <= seconds) throw new AwsFault(400, "ExpiredTokenException", "Token expired");
    if (typeof claims.nbf === "number" && claims.nbf > seconds + 60)
      throw invalid("The token is not valid yet");
    if (claims.iat > seconds + 60) throw invalid("The token was issued in the future");
    const si = claims["https://aws.amazon.com/source_identity"];
    if (si !== undefined && typeof si !== "string") throw invalid("source_identity must be a string");
    this.checkSourceIdentity(si);
    const tagClaim = claims["https://aws.amazon.com/tags"] as { principal_tags?: unknown } | undefined;
    const entries: [string, string][] = [];
    if (tagClaim !== undefined) {
      const pt = tagClaim.principal_tags;
      if (typeof pt !== "object" || pt === null) throw invalid("principal_tags must be an object");
      for (const [k, v] of Object.entries(pt)) {
        if (!Array.isArray(v) || v.length !== 1 || typeof v[0] !== "string")
          throw invalid(`principal_tags.${k} must be an array of one string`);
        entries.push([k, v[0]]);
      }
    }
    const tags = this.checkTags(entries);
    const duration = this.duration(p);
    const { policyText, policy } = this.sessionPolicy(p, tags);
    const role = this.roles.get(roleArn);
    const providerKey = iss.replace(/^https?:\/\//, "");
    const providerArn = `arn:aws:iam::${this.opts.account ?? roleArn.split(":")[4]}:oidc-provider/${providerKey}`;
    const denied = (a: string) => new AwsFault(403, "AccessDenied", `Not authorized to perform ${a}`);
    if (!role) throw denied("sts:AssumeRoleWithWebIdentity");
    this.trusted(
      role,
      role.federatedTrust,
      { kind: "service", arn: providerArn, account: "", partition: "aws", name: providerArn },
      "sts:AssumeRoleWithWebIdentity",
      si,
      tags,
      { [`${providerKey}:aud`]: audience, [`${providerKey}:sub`]: claims.sub },
      denied,
    );
    return this.grant(
      "AssumeRoleWithWebIdentity",
      {
        roleArn,
        sessionName,
        sourceIdentity: si,
        tags,
        policy,
        policyText,
        durationSeconds: duration,
        issuedAt: now,
        subject: claims.sub,
      },
      role,
      `<SubjectFromWebIdentityToken>${xml(claims.sub)}</SubjectFromWebIdentityToken><Audience>${xml(audience)}</Audience><Provider>${xml(iss)}</Provider>`,
    );
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
