import { generateKeyPairSync } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompactSign, calculateJwkThumbprint, compactVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { canonicalJson } from "../../src/audit/canonical.js";
import {
  CHECKPOINT_TYPE,
  dataDirPublicKey,
  ERR_AUDIT_KEY_INVALID,
  ERR_AUDIT_KEY_MISMATCH,
  ERR_AUDIT_KEY_PERMISSIONS,
  loadSigningKey,
  readTrustedKey,
  signCheckpoint,
  signingKeyPaths,
  trustKey,
} from "../../src/audit/index.js";

let root = "";
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "writ-keys-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return "no error";
}

describe("audit signing key", () => {
  it("is created on first use: private 0600, public beside it, kid = JWK thumbprint", async () => {
    const dir = join(root, "a");
    const signer = await loadSigningKey(dir);
    const paths = signingKeyPaths(dir);
    expect((await stat(paths.privateKey)).mode & 0o777).toBe(0o600);
    const priv = JSON.parse(await readFile(paths.privateKey, "utf8"));
    const pub = JSON.parse(await readFile(paths.publicKey, "utf8"));
    expect(priv).toMatchObject({ kty: "OKP", crv: "Ed25519", kid: signer.kid });
    expect(typeof priv.d).toBe("string");
    expect(pub.d).toBeUndefined();
    expect(pub).toEqual(signer.publicJwk);
    expect(signer.kid).toBe(await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: pub.x }));
    expect((await loadSigningKey(dir)).kid).toBe(signer.kid);
    expect((await dataDirPublicKey(dir))?.kid).toBe(signer.kid);
  });

  it("is created once when several processes start at the same time", async () => {
    const dir = join(root, "race");
    const signers = await Promise.all(Array.from({ length: 8 }, () => loadSigningKey(dir)));
    expect(new Set(signers.map((s) => s.kid)).size).toBe(1);
  });

  it("is not created when asked not to", async () => {
    expect(await codeOf(loadSigningKey(join(root, "none"), { create: false }))).toBe(ERR_AUDIT_KEY_INVALID);
    expect(await dataDirPublicKey(join(root, "none"))).toBeUndefined();
  });

  it("refuses a private key others can read", async () => {
    const dir = join(root, "open");
    await loadSigningKey(dir);
    await chmod(signingKeyPaths(dir).privateKey, 0o644);
    expect(await codeOf(loadSigningKey(dir))).toBe(ERR_AUDIT_KEY_PERMISSIONS);
  });

  it("refuses a public key file that belongs to another key", async () => {
    const dir = join(root, "swapped");
    await loadSigningKey(dir);
    const other = await loadSigningKey(join(root, "other"));
    await writeFile(signingKeyPaths(dir).publicKey, JSON.stringify(other.publicJwk));
    expect(await codeOf(loadSigningKey(dir))).toBe(ERR_AUDIT_KEY_MISMATCH);
  });
});

describe("trusted keys", () => {
  it("accepts an Ed25519 public JWK and computes its thumbprint", async () => {
    const signer = await loadSigningKey(join(root, "t"));
    const trusted = await readTrustedKey(signingKeyPaths(join(root, "t")).publicKey);
    expect(trusted.kid).toBe(signer.kid);
  });

  it.each([
    [
      "a private key",
      async () => JSON.parse(await readFile(signingKeyPaths(join(root, "a")).privateKey, "utf8")),
    ],
    ["an RSA key", async () => ({ kty: "RSA", n: "AQAB", e: "AQAB" })],
    [
      "a wrong kid",
      async () => ({ ...(await loadSigningKey(join(root, "a"))).publicJwk, kid: "not-the-thumbprint" }),
    ],
    ["not an object", async () => "key"],
  ])("refuses %s", async (_label, make) => {
    expect(await codeOf(trustKey(await make(), "test"))).toBe(ERR_AUDIT_KEY_INVALID);
  });

  it("names the file it cannot read", async () => {
    const err = await readTrustedKey(join(root, "missing.jwk")).catch((e: Error) => e);
    expect((err as { code?: string }).code).toBe(ERR_AUDIT_KEY_INVALID);
    expect((err as Error).message).toContain("missing.jwk");
  });
});

describe("checkpoint signatures", () => {
  const point = { seq: 300, hash: "ab".repeat(32), at: new Date("2030-01-01T10:00:00.123Z") };

  it("are the compact JWS jose makes, byte for byte, and verify with the public key", async () => {
    const signer = await loadSigningKey(join(root, "sig"));
    const row = await signCheckpoint(signer, point);
    const byJose = await new CompactSign(
      new TextEncoder().encode(
        canonicalJson({ at: point.at.toISOString(), hash: point.hash, seq: point.seq }),
      ),
    )
      .setProtectedHeader({ alg: "EdDSA", kid: signer.kid, typ: CHECKPOINT_TYPE })
      .sign(signer.key);
    expect(row).toEqual({ ...point, keyId: signer.kid, signature: byJose });
    const { payload, protectedHeader } = await compactVerify(row.signature, signer.trusted.key, {
      algorithms: ["EdDSA"],
    });
    expect(protectedHeader).toEqual({ alg: "EdDSA", kid: signer.kid, typ: CHECKPOINT_TYPE });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ ...point, at: point.at.toISOString() });
  });

  it("are made by node:crypto, not through WebCrypto", async () => {
    const signer = await loadSigningKey(join(root, "sig"));
    const webcrypto = vi.spyOn(globalThis.crypto.subtle, "sign");
    try {
      await signCheckpoint(signer, point);
      expect(webcrypto).not.toHaveBeenCalled();
    } finally {
      webcrypto.mockRestore();
    }
  });

  it("are refused with a key that is not Ed25519", async () => {
    const signer = await loadSigningKey(join(root, "sig-ec"));
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await expect(signCheckpoint({ ...signer, key: privateKey }, point)).rejects.toThrow(/Ed25519/);
  });
});
