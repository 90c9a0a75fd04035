/**
 * Hand-made JOSE for broker tests that attack the server: JWTs and DPoP proofs with any header and
 * claims, signed with any key (or none), so each one fails exactly the check it is meant to.
 */
import { randomUUID } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { quickstartKey } from "./live.js";

export const nowS = (): number => Math.floor(Date.now() / 1000);

export interface AssertionOptions {
  /** Claims to set; an `undefined` value removes the claim. */
  readonly claims?: Record<string, unknown>;
  /** Header members to set; an `undefined` value removes the member. */
  readonly header?: Record<string, unknown>;
  /** Sign with this key instead of the principal's own. */
  readonly key?: CryptoKey | Uint8Array;
}

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
  return o;
}

/**
 * A JWT with `iss` = `sub` = `id` and `aud`, a fresh `jti`, living `lifetime` seconds, signed
 * EdDSA with `own` (its `kid` in the header) unless `opts` says otherwise.
 */
export async function signedAssertion(
  own: { key: CryptoKey; kid: string },
  id: string,
  aud: string,
  opts: AssertionOptions = {},
  lifetime = 60,
): Promise<string> {
  const payload = withoutUndefined({
    iss: id,
    sub: id,
    aud,
    iat: nowS(),
    exp: nowS() + lifetime,
    jti: randomUUID(),
    ...opts.claims,
  });
  const header = withoutUndefined({ alg: "EdDSA", kid: own.kid, ...opts.header });
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(opts.key ?? own.key);
}

/**
 * An approver's JWT for the approvals API at `base` (`who` with or without `@acme.example`), signed
 * with that approver's quickstart key and living two minutes; `opts` override as above.
 */
export async function approverJwt(base: string, who: string, opts: AssertionOptions = {}): Promise<string> {
  const name = who.split("@")[0]!;
  const id = who.includes("@") ? who : `${name}@acme.example`;
  return signedAssertion(await quickstartKey(`approver-${name}`), id, `${base}/approvals`, opts, 120);
}

/**
 * A DPoP proof for `POST htu` from a fresh ES256 key (its public JWK in the header), or `key` when
 * given; `header` and `claims` override (undefined removes), `signWith` signs instead of the key.
 */
export async function dpopProof(
  htu: string,
  opts: {
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
    signWith?: CryptoKey | Uint8Array;
    key?: { privateKey: CryptoKey; publicKey: CryptoKey };
  } = {},
): Promise<string> {
  const pair = opts.key ?? (await generateKeyPair("ES256", { extractable: true }));
  const payload = withoutUndefined({ jti: randomUUID(), htm: "POST", htu, iat: nowS(), ...opts.claims });
  const header = withoutUndefined({
    alg: "ES256",
    typ: "dpop+jwt",
    jwk: await exportJWK(pair.publicKey),
    ...opts.header,
  });
  return new SignJWT(payload)
    .setProtectedHeader(header as { alg: string })
    .sign(opts.signWith ?? pair.privateKey);
}

/** An unsecured JWS (`alg: none`, empty signature) of `header` and `payload`. */
export function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ ...header, alg: "none" })}.${b64(payload)}.`;
}

/** The decoded payload of a compact JWT (no verification). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString()) as Record<string, unknown>;
}

/** writ.yaml: the quickstart's four approvers, signing in with their development keys. */
export const APPROVERS_YAML = `approvers:
${["alice", "bob", "carol", "dan"].map((n) => `  ${n}@acme.example: { keys: { file: keys/approver-${n}.jwks.json } }`).join("\n")}
`;

/**
 * writ.yaml playbooks (under `playbooks:`) that run in prod under the `sre` group: `sponsored`
 * needs a sponsor who may approve it, `twice` needs two SREs.
 */
export const APPROVAL_PLAYBOOKS_YAML = ["sponsored", "twice"]
  .map(
    (id) => `  ${id}:
    description: ${id === "sponsored" ? "needs a sponsor who may approve it" : "needs two SREs"}
    risk: low
    environments: [prod]
    grants:
      - action: "k8s:apps/deployments:get"
        resource: "${id === "sponsored" ? "checkout/checkout" : "payments/payments"}"
    ttl: 5m
    approval:
      prod: ${id === "sponsored" ? "sre\n    sponsor: approver" : "{ group: sre, count: 2 }"}
`,
  )
  .join("");
