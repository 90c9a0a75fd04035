/**
 * AWS Signature Version 4 verification for the test fakes, written from the published algorithm
 * (AWS General Reference, "Create a signed AWS API request"): canonical request → string to sign →
 * HMAC-SHA256 key derivation from the secret, date, region and service → compare. The fake knows
 * the secret keys, so it recomputes the signature of every request and refuses a mismatch, exactly
 * as AWS answers it (`SignatureDoesNotMatch`, `IncompleteSignature`, `InvalidClientTokenId`).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export interface SigningKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Required on the request (`X-Amz-Security-Token`) when set: temporary credentials. */
  readonly sessionToken?: string | undefined;
}

export interface SignedRequest {
  readonly method: string;
  /** Path with its query, as received. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export type SigV4Result =
  | {
      readonly ok: true;
      readonly accessKeyId: string;
      readonly region: string;
      readonly service: string;
      readonly date: Date;
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 unreserved characters stay; everything else is %XX with upper-case hex. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalUri(path: string): string {
  if (path === "" || path === "/") return "/";
  // Non-S3 services: each segment normalised, then URI-encoded twice.
  return path
    .split("/")
    .map((seg) => uriEncode(uriEncode(decodeURIComponent(seg))))
    .join("/");
}

function canonicalQuery(search: string): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(search)) pairs.push([uriEncode(k), uriEncode(v)]);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function header(req: SignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

/** `20261206T221500Z` → the instant, or undefined. */
function amzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Checks the request's `Authorization` header against the keys the fake knows. */
export function verifySigV4(
  req: SignedRequest,
  keys: (accessKeyId: string) => SigningKey | undefined,
  now: Date,
  maxSkewMs = 15 * 60 * 1000,
): SigV4Result {
  const bad = (code: string, message: string): SigV4Result => ({ ok: false, code, message });
  const auth = header(req, "authorization");
  if (!auth) return bad("MissingAuthenticationToken", "Request is missing Authentication Token");
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
      auth.trim(),
    );
  if (!m)
    return bad(
      "IncompleteSignature",
      "Authorization header requires Credential, SignedHeaders and Signature",
    );
  const [, credential, signedHeaderList, signature] = m as unknown as [string, string, string, string];
  const scope = credential.split("/");
  if (scope.length !== 5 || scope[4] !== "aws4_request") {
    return bad("IncompleteSignature", `Credential should be scoped to a valid region, not ${credential}`);
  }
  const [accessKeyId, day, region, service] = scope as [string, string, string, string];
  const dateText = header(req, "x-amz-date");
  const date = dateText ? amzDate(dateText) : undefined;
  if (!dateText || !date) return bad("IncompleteSignature", "X-Amz-Date is missing or malformed");
  if (dateText.slice(0, 8) !== day) {
    return bad("SignatureDoesNotMatch", "Credential should be scoped to the date of X-Amz-Date");
  }
  if (Math.abs(date.getTime() - now.getTime()) > maxSkewMs) {
    return bad(
      "SignatureDoesNotMatch",
      `Signature expired: ${dateText} is now earlier or later than allowed`,
    );
  }
  const signed = signedHeaderList.split(";");
  if (!signed.includes("host") || signed.join(";") !== [...signed].sort().join(";")) {
    return bad("SignatureDoesNotMatch", "SignedHeaders must include host and be sorted");
  }
  const key = keys(accessKeyId);
  if (!key) return bad("InvalidClientTokenId", "The security token included in the request is invalid.");
  const token = header(req, "x-amz-security-token");
  if (key.sessionToken !== undefined || token !== undefined) {
    if (token === undefined || key.sessionToken === undefined || !sameText(token, key.sessionToken)) {
      return bad("InvalidClientTokenId", "The security token included in the request is invalid.");
    }
  }
  const url = new URL(req.url, "http://fake");
  const canonicalHeaders = signed
    .map((h) => {
      const v = header(req, h);
      return `${h}:${(v ?? "").trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(url.pathname),
    canonicalQuery(url.search),
    canonicalHeaders,
    signedHeaderList,
    sha256(req.body),
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    dateText,
    `${day}/${region}/${service}/aws4_request`,
    sha256(canonicalRequest),
  ].join("\n");
  const kDate = hmac(`AWS4${key.secretAccessKey}`, day);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const kSigning = hmac(kService, "aws4_request");
  const expected = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  if (!sameText(expected, signature)) {
    return bad(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.",
    );
  }
  return { ok: true, accessKeyId, region, service, date };
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
