/**
 * Agent authentication at the token, introspection, revocation and backchannel endpoints: RFC 7523
 * `private_key_jwt` (a JWT the agent signs with a key registered for it in writ.yaml), and nothing
 * else. Shared client secrets are refused outright — writ never holds a secret an agent could lose.
 *
 * Every refusal is a `ClientRefused` that `checkClient` returns (`authenticateClient` throws it as a
 * `WritError`) with an `ERR_CLIENT_*` code; `CLIENT_AUTH_ERRORS` maps each to the OAuth error
 * (`invalid_client`) and HTTP status the endpoint answers with.
 */
import { type Agent, q, type WritConfig, WritError } from "../core/index.js";
import type { OAuthErrorCode } from "../http/problem.js";
import {
  type AsymmetricAlgorithm,
  isAsymmetricAlgorithm,
  type Jwk,
  jwkThumbprint,
  keyMismatch,
  parseCompactJws,
  verifiesWithAsync,
} from "./asymmetric-jws.js";
import type { ReplayCache } from "./replay.js";

/** No client authentication at all, or a `client_assertion_type` without a `client_assertion`. */
export const ERR_CLIENT_ASSERTION_MISSING = "ERR_CLIENT_ASSERTION_MISSING";
/** `client_assertion_type` is not `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. */
export const ERR_CLIENT_ASSERTION_TYPE = "ERR_CLIENT_ASSERTION_TYPE";
/** Not a compact JWS with a JSON payload, a parameter given twice, or a required claim missing or mistyped. */
export const ERR_CLIENT_ASSERTION_MALFORMED = "ERR_CLIENT_ASSERTION_MALFORMED";
/** The JOSE `typ` header names another kind of JWT (an access token, a DPoP proof …). */
export const ERR_CLIENT_ASSERTION_TYP = "ERR_CLIENT_ASSERTION_TYP";
/** `alg` is not one of the asymmetric algorithms writ accepts (never `none`, never `HS*`). */
export const ERR_CLIENT_ASSERTION_ALG = "ERR_CLIENT_ASSERTION_ALG";
/** `iss` and `sub` differ: both must be the agent's id. */
export const ERR_CLIENT_ASSERTION_ISSUER = "ERR_CLIENT_ASSERTION_ISSUER";
/** The request's `client_id` is not the assertion's `sub`. */
export const ERR_CLIENT_ASSERTION_CLIENT_ID = "ERR_CLIENT_ASSERTION_CLIENT_ID";
/** No agent of that id in writ.yaml. */
export const ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT = "ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT";
/** No key registered for the agent verifies the signature. */
export const ERR_CLIENT_ASSERTION_SIGNATURE = "ERR_CLIENT_ASSERTION_SIGNATURE";
/** `aud` names neither this environment's issuer nor its token endpoint. */
export const ERR_CLIENT_ASSERTION_AUDIENCE = "ERR_CLIENT_ASSERTION_AUDIENCE";
/** `exp` has passed. */
export const ERR_CLIENT_ASSERTION_EXPIRED = "ERR_CLIENT_ASSERTION_EXPIRED";
/** `exp` lies further ahead than the longest lifetime writ accepts. */
export const ERR_CLIENT_ASSERTION_LIFETIME = "ERR_CLIENT_ASSERTION_LIFETIME";
/** `iat` or `nbf` lies in the future, beyond the allowed clock skew. */
export const ERR_CLIENT_ASSERTION_NOT_YET_VALID = "ERR_CLIENT_ASSERTION_NOT_YET_VALID";
/** The `jti` was used before by the same agent. */
export const ERR_CLIENT_ASSERTION_REPLAY = "ERR_CLIENT_ASSERTION_REPLAY";
/** A client secret was offered (`client_secret_basic`, `client_secret_post`): writ takes private_key_jwt only. */
export const ERR_CLIENT_SECRET_REFUSED = "ERR_CLIENT_SECRET_REFUSED";

export type ClientAuthErrorCode =
  | typeof ERR_CLIENT_ASSERTION_MISSING
  | typeof ERR_CLIENT_ASSERTION_TYPE
  | typeof ERR_CLIENT_ASSERTION_MALFORMED
  | typeof ERR_CLIENT_ASSERTION_TYP
  | typeof ERR_CLIENT_ASSERTION_ALG
  | typeof ERR_CLIENT_ASSERTION_ISSUER
  | typeof ERR_CLIENT_ASSERTION_CLIENT_ID
  | typeof ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT
  | typeof ERR_CLIENT_ASSERTION_SIGNATURE
  | typeof ERR_CLIENT_ASSERTION_AUDIENCE
  | typeof ERR_CLIENT_ASSERTION_EXPIRED
  | typeof ERR_CLIENT_ASSERTION_LIFETIME
  | typeof ERR_CLIENT_ASSERTION_NOT_YET_VALID
  | typeof ERR_CLIENT_ASSERTION_REPLAY
  | typeof ERR_CLIENT_SECRET_REFUSED;

/** How a coded refusal goes on the wire. */
export interface OAuthErrorMapping {
  /** The RFC 6749 `error` string. */
  readonly error: OAuthErrorCode;
  /** The HTTP status of the error response. */
  readonly status: number;
}

const INVALID_CLIENT: OAuthErrorMapping = { error: "invalid_client", status: 401 };

/**
 * Every client authentication refusal is RFC 6749 `invalid_client`, HTTP 401. (When the client
 * tried HTTP Basic, RFC 6749 §5.2 also wants a `WWW-Authenticate` header on the 401.)
 */
export const CLIENT_AUTH_ERRORS: Readonly<Record<ClientAuthErrorCode, OAuthErrorMapping>> = {
  [ERR_CLIENT_ASSERTION_MISSING]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_TYPE]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_MALFORMED]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_TYP]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_ALG]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_ISSUER]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_CLIENT_ID]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_SIGNATURE]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_AUDIENCE]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_EXPIRED]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_LIFETIME]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_NOT_YET_VALID]: INVALID_CLIENT,
  [ERR_CLIENT_ASSERTION_REPLAY]: INVALID_CLIENT,
  [ERR_CLIENT_SECRET_REFUSED]: INVALID_CLIENT,
};

/** The OAuth error for a client authentication code, or undefined for any other code. */
export function clientAuthOAuthError(code: string): OAuthErrorMapping | undefined {
  return Object.hasOwn(CLIENT_AUTH_ERRORS, code)
    ? CLIENT_AUTH_ERRORS[code as ClientAuthErrorCode]
    : undefined;
}

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** The replay cache scope of client assertions. */
export const CLIENT_ASSERTION_SCOPE = "client_assertion";

/** The longest assertion read, in characters. */
const MAX_ASSERTION_LENGTH = 8192;
/** The longest `jti` accepted. */
const MAX_JTI_LENGTH = 256;

/**
 * A request body as parsed form parameters: `URLSearchParams`, or a record whose repeated
 * parameters are arrays (as Hono's `parseBody({ all: true })` gives).
 */
export type FormParameters = URLSearchParams | Readonly<Record<string, unknown>>;

export interface ClientAuthOptions {
  /** The agents and their registered keys. */
  readonly config: Pick<WritConfig, "agents">;
  /**
   * What `aud` may name: this environment's issuer and its token endpoint URL (RFC 7523 §3 and
   * draft-ietf-oauth-rfc7523bis, which makes the issuer the preferred value). Exact string match.
   */
  readonly audiences: readonly string[];
  readonly replay: ReplayCache;
  /** The server clock; default `new Date()`. */
  readonly clock?: (() => Date) | undefined;
  /** The longest lifetime left on an assertion, `exp` − now (default 300). */
  readonly maxLifetimeSeconds?: number | undefined;
  /** Allowed disagreement between the agent's clock and the server's (default 30). */
  readonly clockSkewSeconds?: number | undefined;
  /** The request's `Authorization` header, so that HTTP Basic client secrets are refused. */
  readonly authorization?: string | null | undefined;
}

export interface AuthenticatedClient {
  readonly kind: "authenticated-client";
  readonly method: "private_key_jwt";
  readonly agent: Agent;
  /** The `kid` of the registered key that verified the assertion, when it has one. */
  readonly kid?: string | undefined;
  /** RFC 7638 SHA-256 thumbprint of that key (for the audit log; not a DPoP `jkt`). */
  readonly keyThumbprint: string;
  readonly jti: string;
  readonly expiresAt: Date;
}

/**
 * An assertion that does not authenticate its agent: its `ERR_CLIENT_*` code and what to say.
 * Returned by each step beside its value, never thrown: a bad assertion is an expected answer, and
 * a good one comes back as it is, with nothing allocated around it.
 */
export class ClientRefused {
  readonly code: ClientAuthErrorCode;
  readonly message: string;

  constructor(code: ClientAuthErrorCode, message: string) {
    this.code = code;
    this.message = message;
  }
}

/** What a client assertion comes to: the authenticated agent, or why it is refused. */
export type ClientCheck = AuthenticatedClient | ClientRefused;

function refuse(code: ClientAuthErrorCode, message: string): ClientRefused {
  return new ClientRefused(code, message);
}

/** One parameter's value; undefined when absent; refused when repeated (RFC 6749 §3.2). */
function param(form: FormParameters, name: string): string | undefined | ClientRefused {
  let values: unknown[];
  if (form instanceof URLSearchParams) values = form.getAll(name);
  else {
    const v = Object.hasOwn(form, name) ? form[name] : undefined;
    values = v === undefined ? [] : Array.isArray(v) ? v : [v];
  }
  if (values.length === 0) return undefined;
  if (values.length > 1)
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, `parameter ${q(name)} is given more than once`);
  const value = values[0];
  if (typeof value !== "string")
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, `parameter ${q(name)} is not text`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback;
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`${what} must be a non-negative number`);
  return n;
}

function numericDate(
  payload: Readonly<Record<string, unknown>>,
  claim: string,
  required: boolean,
): number | undefined | ClientRefused {
  const v = payload[claim];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    return refuse(
      ERR_CLIENT_ASSERTION_MALFORMED,
      v === undefined ? `the assertion has no \`${claim}\`` : `\`${claim}\` is not a number of seconds`,
    );
  }
  return v;
}

const ACCEPTED_TYP = new Set(["jwt", "client-authentication+jwt"]);

function typOk(typ: unknown): boolean {
  if (typ === undefined) return true;
  if (typeof typ !== "string") return false;
  const t = typ.toLowerCase();
  return ACCEPTED_TYP.has(t.startsWith("application/") ? t.slice("application/".length) : t);
}

/** The agent's keys that could have signed with `alg` (and `kid`, when the header names one). */
function candidateKeys(agent: Agent, alg: AsymmetricAlgorithm, kid: string | undefined): readonly Jwk[] {
  return agent.keys.filter(
    (k) => (kid === undefined || k.kid === undefined || k.kid === kid) && keyMismatch(k, alg) === undefined,
  );
}

/** Step 1: shared secrets, in the body or as HTTP Basic, are refused whatever else the request holds. */
function refuseSecrets(
  form: FormParameters,
  authorization: string | null | undefined,
): ClientRefused | undefined {
  // RFC 6749 §2.3 allows one authentication method per request, and writ accepts only one.
  const secret = param(form, "client_secret");
  if (secret instanceof ClientRefused) return secret;
  if (secret !== undefined) {
    return refuse(
      ERR_CLIENT_SECRET_REFUSED,
      "client secrets are not accepted: writ takes private_key_jwt (RFC 7523) only",
    );
  }
  if (/^basic(\s|$)/i.test(authorization?.trim() ?? "")) {
    return refuse(
      ERR_CLIENT_SECRET_REFUSED,
      "HTTP Basic client authentication is not accepted: writ takes private_key_jwt (RFC 7523) only",
    );
  }
  return undefined;
}

/** Step 2: the jwt-bearer assertion the request carries. */
function assertionOf(form: FormParameters): string | ClientRefused {
  const type = param(form, "client_assertion_type");
  if (type instanceof ClientRefused) return type;
  const assertion = param(form, "client_assertion");
  if (assertion instanceof ClientRefused) return assertion;
  if (type === undefined && assertion === undefined) {
    return refuse(
      ERR_CLIENT_ASSERTION_MISSING,
      "no client authentication: send a `client_assertion` (private_key_jwt, RFC 7523)",
    );
  }
  if (type !== JWT_BEARER_ASSERTION_TYPE) {
    return refuse(
      ERR_CLIENT_ASSERTION_TYPE,
      type === undefined
        ? `no \`client_assertion_type\`: expected ${q(JWT_BEARER_ASSERTION_TYPE)}`
        : `unsupported \`client_assertion_type\` ${q(type)}: expected ${q(JWT_BEARER_ASSERTION_TYPE)}`,
    );
  }
  if (assertion === undefined || assertion === "") {
    return refuse(
      ERR_CLIENT_ASSERTION_MISSING,
      "`client_assertion_type` is given without a `client_assertion`",
    );
  }
  return assertion;
}

/** Step 3: the assertion's parts, under an accepted algorithm and type. */
function parseAssertion(
  assertion: string,
): { payload: Readonly<Record<string, unknown>>; alg: AsymmetricAlgorithm; kid: unknown } | ClientRefused {
  const parsed = parseCompactJws(assertion, MAX_ASSERTION_LENGTH);
  if (!parsed.ok)
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, `the client assertion is malformed: ${parsed.problem}`);
  const { header, payload } = parsed;
  const alg = header.alg;
  if (!isAsymmetricAlgorithm(alg)) {
    return refuse(
      ERR_CLIENT_ASSERTION_ALG,
      `algorithm ${q(alg ?? "(missing)")} is not accepted: use EdDSA (Ed25519), ES256, ES384, PS256 or RS256`,
    );
  }
  if (!typOk(header.typ)) {
    return refuse(ERR_CLIENT_ASSERTION_TYP, `a JWT of type ${q(header.typ)} is not a client assertion`);
  }
  return { payload, alg, kid: header.kid as unknown };
}

/** Step 4: the agent the assertion claims to be (`iss` = `sub` = `client_id` when given). */
function claimedAgent(
  payload: Readonly<Record<string, unknown>>,
  clientId: string | undefined,
  config: Pick<WritConfig, "agents">,
): Agent | ClientRefused {
  const iss = payload.iss;
  const sub = payload.sub;
  if (typeof iss !== "string" || iss === "")
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, "the assertion has no `iss`");
  if (typeof sub !== "string" || sub === "")
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, "the assertion has no `sub`");
  if (iss !== sub) {
    return refuse(
      ERR_CLIENT_ASSERTION_ISSUER,
      `\`iss\` ${q(iss)} and \`sub\` ${q(sub)} differ: both must be the agent id`,
    );
  }
  if (clientId !== undefined && clientId !== sub) {
    return refuse(
      ERR_CLIENT_ASSERTION_CLIENT_ID,
      `\`client_id\` ${q(clientId)} is not the assertion's \`sub\` ${q(sub)}`,
    );
  }
  const agent = config.agents.get(sub);
  if (agent === undefined) return refuse(ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT, `unknown agent ${q(sub)}`);
  return agent;
}

/** Step 5: the agent's registered key whose signature the assertion bears (by `kid`, when named). */
async function signingKeyOf(
  assertion: string,
  agent: Agent,
  alg: AsymmetricAlgorithm,
  kid: unknown,
): Promise<Jwk | ClientRefused> {
  if (kid !== undefined && (typeof kid !== "string" || kid === "")) {
    return refuse(ERR_CLIENT_ASSERTION_MALFORMED, "the `kid` header is not a non-empty string");
  }
  for (const key of candidateKeys(agent, alg, kid)) {
    if (await verifiesWithAsync(assertion, key, alg)) return key;
  }
  return refuse(
    ERR_CLIENT_ASSERTION_SIGNATURE,
    kid === undefined
      ? `no key registered for agent ${q(agent.id)} verifies the assertion (${alg})`
      : `no key registered for agent ${q(agent.id)} with kid ${q(kid)} verifies the assertion (${alg})`,
  );
}

/** Step 6 (claims, only once the signature holds): `aud` names this server. */
function checkAudience(
  payload: Readonly<Record<string, unknown>>,
  audiences: readonly string[],
): ClientRefused | undefined {
  const aud = payload.aud;
  const auds = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  if (!auds.some((a) => typeof a === "string" && audiences.includes(a))) {
    return refuse(
      ERR_CLIENT_ASSERTION_AUDIENCE,
      aud === undefined
        ? `the assertion has no \`aud\`: expected ${q(audiences[0])}`
        : `audience ${q(aud)} is not this server: expected ${q(audiences[0])}`,
    );
  }
}

/** Step 7: `exp` not passed and not too far, `iat`/`nbf` not in the future; answers `exp`. */
function checkTimes(
  payload: Readonly<Record<string, unknown>>,
  nowSeconds: number,
  maxLifetime: number,
  skew: number,
): number | ClientRefused {
  const exp = numericDate(payload, "exp", true) as number | ClientRefused;
  if (exp instanceof ClientRefused) return exp;
  if (exp <= nowSeconds - skew) {
    return refuse(
      ERR_CLIENT_ASSERTION_EXPIRED,
      `the assertion expired at ${new Date(exp * 1000).toISOString()}`,
    );
  }
  if (exp - nowSeconds > maxLifetime + skew) {
    return refuse(
      ERR_CLIENT_ASSERTION_LIFETIME,
      `the assertion is valid for ${Math.round(exp - nowSeconds)}s: at most ${maxLifetime}s is accepted`,
    );
  }
  for (const claim of ["iat", "nbf"]) {
    const t = numericDate(payload, claim, false);
    if (t instanceof ClientRefused) return t;
    if (t !== undefined && t > nowSeconds + skew) {
      return refuse(
        ERR_CLIENT_ASSERTION_NOT_YET_VALID,
        `\`${claim}\` ${new Date(t * 1000).toISOString()} is in the future: check the agent's clock`,
      );
    }
  }
  return exp;
}

/** Step 8: the `jti`, seen for the first time for this agent; remembered until `expiresAt`. */
async function firstUse(
  payload: Readonly<Record<string, unknown>>,
  agent: Agent,
  expiresAt: Date,
  replay: ReplayCache,
): Promise<string | ClientRefused> {
  const jti = payload.jti;
  if (typeof jti !== "string" || jti === "" || jti.length > MAX_JTI_LENGTH) {
    return refuse(
      ERR_CLIENT_ASSERTION_MALFORMED,
      jti === undefined
        ? "the assertion has no `jti`: writ refuses assertions it cannot tell apart"
        : `\`jti\` must be a string of 1 to ${MAX_JTI_LENGTH} characters`,
    );
  }
  // Keyed by agent, since a `jti` is unique per issuer (RFC 7519 §4.1.7); agent ids hold no colon.
  if (!(await replay.remember(CLIENT_ASSERTION_SCOPE, `${agent.id}:${jti}`, expiresAt))) {
    return refuse(
      ERR_CLIENT_ASSERTION_REPLAY,
      `assertion ${q(jti)} of agent ${q(agent.id)} was already used`,
    );
  }
  return jti;
}

/**
 * Authenticates the agent behind a token-endpoint request by its RFC 7523 client assertion:
 * `client_assertion_type` = jwt-bearer; a compact JWS under an allowed asymmetric algorithm,
 * signed by one of the agent's registered keys (picked by `kid` when the header has one); `iss` =
 * `sub` = the agent id (= `client_id` when the request has one); `aud` naming one of `audiences`;
 * `exp` required, not passed and at most `maxLifetimeSeconds` ahead; `iat`/`nbf` not in the future
 * beyond the skew; `jti` required and never seen before for this agent until `exp`.
 *
 * Resolves to the authenticated agent, or to the `ClientRefused` coded `ERR_CLIENT_*`; a failing
 * replay cache rejects with its store error.
 */
export async function checkClient(form: FormParameters, options: ClientAuthOptions): Promise<ClientCheck> {
  const audiences = options.audiences;
  if (!Array.isArray(audiences) || audiences.length === 0 || !audiences.every((a) => typeof a === "string")) {
    throw new TypeError("audiences must be a non-empty list of strings");
  }
  const maxLifetime = nonNegative(options.maxLifetimeSeconds, 300, "maxLifetimeSeconds");
  const skew = nonNegative(options.clockSkewSeconds, 30, "clockSkewSeconds");
  const clock = options.clock ?? (() => new Date());

  const secrets = refuseSecrets(form, options.authorization);
  if (secrets) return secrets;
  const assertion = assertionOf(form);
  if (assertion instanceof ClientRefused) return assertion;
  const parsed = parseAssertion(assertion);
  if (parsed instanceof ClientRefused) return parsed;
  const { payload, alg, kid } = parsed;
  const clientId = param(form, "client_id");
  if (clientId instanceof ClientRefused) return clientId;
  const agent = claimedAgent(payload, clientId, options.config);
  if (agent instanceof ClientRefused) return agent;
  const used = await signingKeyOf(assertion, agent, alg, kid);
  if (used instanceof ClientRefused) return used;
  const audience = checkAudience(payload, audiences);
  if (audience) return audience;
  const exp = checkTimes(payload, clock().getTime() / 1000, maxLifetime, skew);
  if (exp instanceof ClientRefused) return exp;
  // The assertion is acceptable until exp + skew: remember it at least that long.
  const jti = await firstUse(payload, agent, new Date(Math.ceil((exp + skew) * 1000)), options.replay);
  if (jti instanceof ClientRefused) return jti;
  return {
    kind: "authenticated-client",
    method: "private_key_jwt",
    agent,
    kid: typeof used.kid === "string" ? used.kid : undefined,
    keyThumbprint: jwkThumbprint(used),
    jti,
    expiresAt: new Date(exp * 1000),
  };
}

/**
 * `checkClient` for callers that want an exception: the authenticated agent, or a `WritError` with
 * the refusal's `ERR_CLIENT_*` code thrown.
 */
export async function authenticateClient(
  form: FormParameters,
  options: ClientAuthOptions,
): Promise<AuthenticatedClient> {
  const checked = await checkClient(form, options);
  if (checked instanceof ClientRefused) throw new WritError(checked.code, checked.message);
  return checked;
}
