/**
 * What keeps secrets out of the audit log. Every record's data passes through `redact` before it is
 * hashed and stored, so no token, password or private key is ever written — and the hash covers the
 * redacted form, so verification never needs the secret.
 *
 * Two rules:
 *
 * 1. By key. A value under a sensitive key is replaced whatever it is (null stays null). Keys are
 *    compared lowercased with `-`, `_`, `.` and spaces removed: `access_token`, `Access-Token` and
 *    `accessToken` are one key. Sensitive: names ending in `token` (access, refresh, id, subject,
 *    actor, session, csrf … tokens), names containing `secret` or `password`, `passwd`,
 *    `passphrase`, `authorization`, `proxy-authorization`, `assertion`, `client_assertion`,
 *    `cookie`, `set-cookie`, `api_key`, `private_key`, `code_verifier`; and in an object that has a
 *    `kty` member (a JWK), the private members `d`, `p`, `q`, `dp`, `dq`, `qi`, `k`, `oth`, `priv`.
 * 2. By shape, in every string (values and keys): a PEM private key block, a JOSE compact
 *    serialisation (JWT, JWS, JWE: base64url segments joined by dots whose first segment decodes
 *    to a JSON object header), the credential after `Bearer `, `DPoP ` or `Basic `, and GitHub and
 *    Slack token formats. The match is replaced in place.
 *
 * A replacement reads `[redacted:<kind> sha256:<12 hex>]` when the secret is high-entropy by nature
 * (tokens, JWTs, PEM and JWK key material): the fingerprint lets an operator tell which token was
 * used without revealing it. Passwords, secrets, cookies and Basic credentials may be guessable, so
 * a fingerprint would allow offline guessing: they read `[redacted:<kind>]`.
 */
import { createHash } from "node:crypto";
import { canonicalJson, type JsonObject, type JsonValue } from "./canonical.js";

export type RedactionKind =
  | "token"
  | "jwt"
  | "pem"
  | "private-key"
  | "password"
  | "secret"
  | "cookie"
  | "authorization";

const FINGERPRINTED: ReadonlySet<RedactionKind> = new Set(["token", "jwt", "pem", "private-key"]);

function fingerprint(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 12);
}

/** The marker that replaces a secret. */
export function redactionMarker(kind: RedactionKind, secret: string): string {
  return FINGERPRINTED.has(kind) ? `[redacted:${kind} sha256:${fingerprint(secret)}]` : `[redacted:${kind}]`;
}

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_. ]/g, "");
}

const EXACT_KEYS: ReadonlyMap<string, RedactionKind> = new Map([
  ["authorization", "authorization"],
  ["proxyauthorization", "authorization"],
  ["assertion", "token"],
  ["clientassertion", "token"],
  ["bearer", "token"],
  ["cookie", "cookie"],
  ["setcookie", "cookie"],
  ["passwd", "password"],
  ["passphrase", "password"],
  ["pwd", "password"],
  ["apikey", "secret"],
  ["xapikey", "secret"],
  ["codeverifier", "secret"],
  ["privatekey", "private-key"],
]);

const JWK_PRIVATE = new Set(["d", "p", "q", "dp", "dq", "qi", "k", "oth", "priv"]);

/** The kind of secret a key names, or undefined for an ordinary key. */
export function sensitiveKey(key: string): RedactionKind | undefined {
  // records repeat the same few keys: each is judged once (a bounded memo, emptied when full)
  if (key.length > MAX_KEY_LENGTH) return judgeKey(key);
  const known = keyKinds.get(key);
  if (known !== undefined) return known === "" ? undefined : known;
  const kind = judgeKey(key);
  if (keyKinds.size >= MAX_KEYS) keyKinds.clear();
  keyKinds.set(key, kind ?? "");
  return kind;
}

const MAX_KEYS = 4096;
const MAX_KEY_LENGTH = 64;
const keyKinds = new Map<string, RedactionKind | "">();

function judgeKey(key: string): RedactionKind | undefined {
  const k = normaliseKey(key);
  const exact = EXACT_KEYS.get(k);
  if (exact !== undefined) return exact;
  if (k.endsWith("token")) return "token";
  if (k.includes("password")) return "password";
  if (k.includes("secret")) return "secret";
  if (k.endsWith("apikey")) return "secret";
  if (k.endsWith("privatekey")) return "private-key";
  return undefined;
}

const PEM_PRIVATE =
  /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END \1PRIVATE KEY\2-----|$)/g;
// Maximal runs of base64url characters and dots: one class, so matching is linear (a pattern such as
// `[\w-]{8,}(\.[\w-]*){2}` backtracks quadratically on a long dotless string).
const DOTTED_RUN = /[A-Za-z0-9_.-]+/g;
const AUTH_SCHEME = /\b(Bearer|DPoP|Basic)([ \t]+)([A-Za-z0-9._~+/-]+=*)/gi;
const KNOWN_TOKENS =
  /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,})/g;

/** The JOSE header a base64url segment encodes, if it encodes a JSON object. */
function joseHeader(segment: string): Record<string, unknown> | undefined {
  // A JSON object starts with `{`, which base64 encodes with a leading `e`.
  if (segment.length < 8 || segment[0] !== "e") return undefined;
  try {
    const header = JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as unknown;
    return typeof header === "object" && header !== null && !Array.isArray(header)
      ? (header as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces JOSE compact serialisations (3 segments, or 5 for a JWE) inside a dotted run. */
function redactJoseRun(run: string): string {
  const segments = run.split(".");
  if (segments.length < 3) return run;
  const out: string[] = [];
  let i = 0;
  while (i < segments.length) {
    const header = joseHeader(segments[i]!);
    const span = header === undefined ? 0 : Object.hasOwn(header, "enc") ? 5 : 3;
    if (span > 0 && i + span <= segments.length) {
      out.push(redactionMarker("jwt", segments.slice(i, i + span).join(".")));
      i += span;
    } else {
      out.push(segments[i]!);
      i += 1;
    }
  }
  return out.join(".");
}

function isBasicCredential(credential: string): boolean {
  return (
    /^[A-Za-z0-9+/]+=*$/.test(credential) && Buffer.from(credential, "base64").toString("utf8").includes(":")
  );
}

// Every shape below needs one of these: two dots (a JOSE serialisation has three segments at
// least), a PEM header, an auth scheme, or a known token prefix. One scan for them spares the four
// replacements most strings (a time, a path, an ARN with one dot in it).
const MAY_HOLD_SECRET = /-----BEGIN|bearer|dpop|basic|gh[pousr]_|github_pat_|xox[abposr]-/i;

function twoDots(text: string): boolean {
  const first = text.indexOf(".");
  return first >= 0 && text.indexOf(".", first + 1) >= 0;
}

/** Replaces secrets found by their shape inside one string. */
export function redactString(text: string): string {
  if (text.length < 8 || !(twoDots(text) || MAY_HOLD_SECRET.test(text))) return text;
  return text
    .replace(PEM_PRIVATE, (block) => redactionMarker("pem", block))
    .replace(DOTTED_RUN, (run) => (run.length >= 20 && run.includes(".") ? redactJoseRun(run) : run))
    .replace(AUTH_SCHEME, (whole, scheme: string, space: string, credential: string) => {
      if (scheme.toLowerCase() === "basic") {
        return isBasicCredential(credential)
          ? `${scheme}${space}${redactionMarker("authorization", credential)}`
          : whole;
      }
      // An opaque token is long; a short word after "bearer" is prose.
      if (credential.length < 16) return whole;
      return `${scheme}${space}${redactionMarker("token", credential)}`;
    })
    .replace(KNOWN_TOKENS, (token) => redactionMarker("token", token));
}

function redactWhole(kind: RedactionKind, value: JsonValue): JsonValue {
  if (value === null) return null;
  return redactionMarker(kind, typeof value === "string" ? value : canonicalJson(value));
}

/** A copy of `value` with every secret replaced (see the module comment). */
export function redact(value: JsonValue): JsonValue {
  if (typeof value === "string") return redactString(value);
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    const out: JsonValue[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = redact(value[i]!);
    return out;
  }
  // plain loops, no entries arrays: every audit record passes through here
  const object = value as JsonObject;
  const isJwk = Object.hasOwn(object, "kty");
  const out: Record<string, JsonValue> = {};
  const keys = Object.keys(object);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const item = object[key]!;
    const kind = sensitiveKey(key) ?? (isJwk && JWK_PRIVATE.has(key) ? "private-key" : undefined);
    const name = redactString(key);
    const redacted = kind === undefined ? redact(item) : redactWhole(kind, item);
    if (name === "__proto__") {
      // an own member named `__proto__`, as Object.fromEntries makes it (not the prototype)
      Object.defineProperty(out, name, {
        value: redacted,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[name] = redacted;
    }
  }
  return out;
}
