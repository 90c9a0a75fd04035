/**
 * Where a signature job runs (src/broker/asymmetric-jws.ts `pooled`): on the event loop when no
 * other is on libuv's thread pool, on the pool while others are — with the same answers either
 * way, for good and bad signatures and for a key that cannot verify, and the count of pooled jobs
 * back at zero after each, failures included (a count left above zero would send every later
 * signature to the pool; one below it, none).
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { onPool, signsInline, verifyOffThread } from "../../src/broker/asymmetric-jws.js";
import type { SigningKey, VerificationKey } from "../../src/broker/keys.js";
import { mintAccessToken, verifyAccessToken } from "../../src/broker/tokens.js";

const ed = generateKeyPairSync("ed25519");
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const DATA = Buffer.from("header.payload", "ascii");
const GOOD = sign(null, DATA, ed.privateKey);
const BAD = Buffer.from(GOOD);
BAD[0] = BAD[0]! ^ 1;

/** Holds one job on the "pool" until `release` is called: the state of a busy server. */
function busy(): { release: () => void; done: Promise<string> } {
  let finish!: (err: Error | null, value: string) => void;
  const done = onPool<string>((cb) => {
    finish = cb;
  });
  return { release: () => finish(null, "released"), done };
}

/**
 * Whether `p` settles within a few microtasks: an answer computed at once does; one from the
 * thread pool waits for the event loop to run its callback.
 */
async function settlesAtOnce(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return settled;
}

/** The three answers: a good signature, a bad one, and a key of the wrong type (throws inside). */
async function answers(): Promise<boolean[]> {
  return Promise.all([
    verifyOffThread(null, DATA, ed.publicKey, GOOD),
    verifyOffThread(null, DATA, ed.publicKey, BAD),
    verifyOffThread("sha256", DATA, ec.privateKey, GOOD),
  ]);
}

describe("signature jobs", () => {
  it("run on the event loop when the pool holds none, with the right answers", async () => {
    expect(signsInline()).toBe(true);
    expect(await settlesAtOnce(verifyOffThread(null, DATA, ed.publicKey, GOOD))).toBe(true);
    expect(await answers()).toEqual([true, false, false]);
    expect(signsInline()).toBe(true);
  });

  it("go to the pool while another job is there, with the same answers, and the count comes back", async () => {
    const held = busy();
    expect(signsInline()).toBe(false);
    const first = verifyOffThread(null, DATA, ed.publicKey, GOOD);
    expect(await settlesAtOnce(first)).toBe(false);
    const pending = answers();
    // three more on the pool, none answered yet
    expect(signsInline()).toBe(false);
    expect(await pending).toEqual([true, false, false]);
    // the pool's threads finish in any order: the first may still be there when the others are done
    expect(await first).toBe(true);
    expect(signsInline()).toBe(false);
    held.release();
    expect(await held.done).toBe("released");
    expect(signsInline()).toBe(true);
  });

  it("count a job that failed to start, or failed on the pool, as gone", async () => {
    await expect(
      onPool<string>(() => {
        throw new Error("could not start");
      }),
    ).rejects.toThrow("could not start");
    expect(signsInline()).toBe(true);
    await expect(
      onPool<string>((cb) => setImmediate(() => cb(new Error("failed there"), ""))),
    ).rejects.toThrow("failed there");
    expect(signsInline()).toBe(true);
  });

  it("mint the same token inline and on the pool (Ed25519 is deterministic)", async () => {
    const jwk = ed.publicKey.export({ format: "jwk" });
    const publicJwk = {
      kty: "OKP",
      crv: "Ed25519",
      x: jwk.x!,
      kid: "kid-1",
      alg: "EdDSA",
      use: "sig",
    } as const;
    const key: SigningKey = {
      kind: "signing-key",
      kid: "kid-1",
      env: "dev",
      alg: "EdDSA",
      createdAt: new Date("2026-12-01T00:00:00Z"),
      signUntil: new Date("2027-01-01T00:00:00Z"),
      publicJwk,
      privateKey: ed.privateKey,
    };
    const verification: VerificationKey = {
      kind: "verification-key",
      kid: "kid-1",
      env: "dev",
      status: "active",
      signUntil: key.signUntil,
      publishUntil: key.signUntil,
      publicJwk,
      publicKey: ed.publicKey,
    };
    const claims = {
      iss: "http://127.0.0.1:8080/env/dev",
      sub: "release-bot",
      aud: "https://gateway.example/mcp",
      exp: 1_797_000_600,
      iat: 1_797_000_000,
      jti: "fixed",
      client_id: "release-bot",
    };
    const inline = await mintAccessToken(key, claims);
    const held = busy();
    const pooled = await mintAccessToken(key, claims);
    held.release();
    await held.done;
    expect(pooled).toBe(inline);
    const verified = await verifyAccessToken(inline, {
      env: "dev",
      issuer: claims.iss,
      keys: { verificationKey: async () => verification },
      clock: () => new Date(1_797_000_100_000),
    });
    expect(verified.sub).toBe("release-bot");
  });
});
