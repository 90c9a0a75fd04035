/**
 * Per-environment signing keys over both backends: lazy creation, one active key under racing
 * creators (one pool, and two pools as two processes would have), rotation and its publication
 * window, renewal, and environment isolation.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { environmentKeys, type SigningKey } from "../../src/broker/keys.js";
import { isWritError } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { forEachBackend } from "../store/backends.js";

const T0 = new Date("2026-11-18T10:00:00Z");
const DAY = 86_400;

/** A clock tests move by hand. */
function manualClock(start = T0) {
  let now = start.getTime();
  return {
    clock: () => new Date(now),
    set: (at: Date) => {
      now = at.getTime();
    },
    advance: (seconds: number) => {
      now += seconds * 1000;
    },
    at: (seconds: number) => new Date(start.getTime() + seconds * 1000),
  };
}

let envCounter = 0;
/** A fresh environment per test, so tests sharing a store do not see each other's keys. */
const freshEnv = () => `env-${++envCounter}`;

async function activeCount(store: Store, env: string): Promise<number> {
  const rows = await store.db
    .selectFrom("signing_keys")
    .select("kid")
    .where("environment", "=", env)
    .where("status", "=", "active")
    .execute();
  return rows.length;
}

forEachBackend("environment keys", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  it("keeps the ES256 family (AWS web identity) apart from the EdDSA one", async () => {
    const t = manualClock();
    const ed = environmentKeys(h.store, { clock: t.clock });
    const es = environmentKeys(h.store, { clock: t.clock, alg: "ES256" });
    const env = freshEnv();
    const edKey = await ed.activeKey(env);
    t.advance(1);
    const esKey = await es.activeKey(env);
    expect(esKey).toMatchObject({ env, alg: "ES256" });
    expect(esKey.privateKey.asymmetricKeyType).toBe("ec");
    expect(esKey.publicJwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", kid: esKey.kid });
    // one active key per family, each published and looked up in its own family only
    expect((await ed.activeKey(env)).kid).toBe(edKey.kid);
    expect((await ed.jwks(env)).keys.map((k) => k.kid)).toEqual([edKey.kid]);
    expect((await es.jwks(env)).keys.map((k) => k.kid)).toEqual([esKey.kid]);
    expect(JSON.stringify(await es.jwks(env))).not.toMatch(/"d"/);
    expect(await ed.verificationKey(env, esKey.kid)).toBeUndefined();
    expect(await es.verificationKey(env, edKey.kid)).toBeUndefined();
    expect(await es.verificationKey(env, esKey.kid)).toMatchObject({ kid: esKey.kid });
    // rotating one family leaves the other's key signing
    t.advance(60);
    const r = await es.rotate(env, { maxTokenTtlSeconds: 0 });
    expect(r.retired?.kid).toBe(esKey.kid);
    expect((await ed.activeKey(env)).kid).toBe(edKey.kid);
    expect((await es.jwks(env)).keys.map((k) => k.kid)).toEqual([r.created.kid]);
    expect((await ed.list(env)).map((k) => [k.alg, k.status])).toEqual([
      ["EdDSA", "active"],
      ["ES256", "retired"],
      ["ES256", "active"],
    ]);
  });

  it("creates the first key lazily, once, and publishes it", async () => {
    const t = manualClock();
    const keys = environmentKeys(h.store, { clock: t.clock });
    const env = freshEnv();
    expect((await keys.jwks(env)).keys).toEqual([]);
    expect(await keys.list(env)).toEqual([]);

    const key = await keys.activeKey(env);
    expect(key).toMatchObject({ kind: "signing-key", env, alg: "EdDSA" });
    expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key.signUntil).toEqual(t.at(30 * DAY));
    expect(key.privateKey.asymmetricKeyType).toBe("ed25519");
    expect((await keys.activeKey(env)).kid).toBe(key.kid);

    const jwks = await keys.jwks(env);
    expect(jwks.keys).toEqual([
      { kty: "OKP", crv: "Ed25519", x: key.publicJwk.x, kid: key.kid, alg: "EdDSA", use: "sig" },
    ]);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
    const [info] = await keys.list(env);
    expect(info).toMatchObject({ kid: key.kid, env, status: "active", createdAt: T0, retiredAt: undefined });
  });

  it("ends with exactly one active key when 10 callers race for the first one", async () => {
    const env = freshEnv();
    const keys = environmentKeys(h.store);
    const got = await Promise.all(Array.from({ length: 10 }, () => keys.activeKey(env)));
    expect(new Set(got.map((k) => k.kid)).size).toBe(1);
    expect(await activeCount(h.store, env)).toBe(1);
    expect(await keys.list(env)).toHaveLength(1);
  });

  // PGlite is one connection in one process (the data folder lock sees to it): no second store, so
  // the race is defined for PostgreSQL alone (not skipped on PGlite: it does not apply there)
  const onSeparateStores = h.name === "pglite" ? () => {} : it;
  onSeparateStores(
    "ends with one active key when callers on separate stores race (two pools, as two processes)",
    async () => {
      const env = freshEnv();
      const other = await h.second!();
      const a = environmentKeys(h.store);
      const b = environmentKeys(other);
      const got = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).activeKey(env)),
      );
      expect(new Set(got.map((k) => k.kid)).size).toBe(1);
      expect(await activeCount(h.store, env)).toBe(1);

      // And racing rotations leave one active key too.
      const rotations = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).rotate(env, { maxTokenTtlSeconds: 3600 })),
      );
      expect(new Set(rotations.map((r) => r.created.kid)).size).toBe(6);
      expect(await activeCount(h.store, env)).toBe(1);
      expect(await a.list(env)).toHaveLength(7);
    },
  );

  it("rotation retires the old key at once; it stays published until its last token expires", async () => {
    const t = manualClock();
    const keys = environmentKeys(h.store, { clock: t.clock });
    const env = freshEnv();
    const old = await keys.activeKey(env);
    t.advance(600);
    const { retired, created } = await keys.rotate(env, { maxTokenTtlSeconds: 3600 });
    expect(retired).toMatchObject({
      kid: old.kid,
      status: "retired",
      retiredAt: t.at(600),
      signUntil: t.at(600),
      publishUntil: t.at(600 + 3600),
    });
    expect(created.kid).not.toBe(old.kid);
    expect((await keys.activeKey(env)).kid).toBe(created.kid);
    expect(await activeCount(h.store, env)).toBe(1);

    // The retired private key is erased; its public half is kept.
    const row = await h.store.db
      .selectFrom("signing_keys")
      .select(["private_jwk", "public_jwk"])
      .where("kid", "=", old.kid)
      .executeTakeFirstOrThrow();
    expect(row.private_jwk).toEqual({});
    expect(row.public_jwk).toMatchObject({ x: old.publicJwk.x });

    const kids = async (at: Date) => (await keys.jwks(env, at)).keys.map((k) => k.kid);
    expect(await kids(t.at(601))).toEqual([created.kid, old.kid]);
    expect(await kids(t.at(600 + 3599))).toEqual([created.kid, old.kid]);
    expect(await keys.verificationKey(env, old.kid, t.at(600 + 3599))).toMatchObject({
      kid: old.kid,
      status: "retired",
    });
    // Publication ends when the last token it can have signed expires.
    expect(await kids(t.at(600 + 3600))).toEqual([created.kid]);
    expect(await keys.verificationKey(env, old.kid, t.at(600 + 3600))).toBeUndefined();
    // The history stays.
    expect((await keys.list(env)).map((k) => [k.kid, k.status])).toEqual([
      [old.kid, "retired"],
      [created.kid, "active"],
    ]);
  });

  it("rotation never publishes a retired key beyond its own life, and 0 withdraws it at once", async () => {
    const t = manualClock();
    const keys = environmentKeys(h.store, {
      clock: t.clock,
      keyLifetimeSeconds: 7200,
      renewBeforeSeconds: 0,
    });
    const env = freshEnv();
    const first = await keys.activeKey(env);
    t.advance(3600);
    const r1 = await keys.rotate(env, { maxTokenTtlSeconds: 10 * DAY });
    expect(r1.retired?.publishUntil).toEqual(first.signUntil);

    t.advance(1);
    const r2 = await keys.rotate(env, { maxTokenTtlSeconds: 0 });
    expect(r2.retired).toMatchObject({
      kid: r1.created.kid,
      signUntil: t.at(3601),
      publishUntil: t.at(3601),
    });
    expect((await keys.jwks(env)).keys.map((k) => k.kid)).toEqual([r2.created.kid, first.kid]);
  });

  it("rotation of an environment without a key creates its first", async () => {
    const keys = environmentKeys(h.store);
    const env = freshEnv();
    const { retired, created } = await keys.rotate(env, { maxTokenTtlSeconds: 60 });
    expect(retired).toBeUndefined();
    expect((await keys.activeKey(env)).kid).toBe(created.kid);
  });

  it("a key rotated in the millisecond it was made keeps the schema's invariants", async () => {
    const t = manualClock();
    const keys = environmentKeys(h.store, { clock: t.clock });
    const env = freshEnv();
    const first = await keys.activeKey(env);
    const { retired } = await keys.rotate(env, { maxTokenTtlSeconds: 0 });
    expect(retired?.kid).toBe(first.kid);
    expect(retired!.signUntil.getTime()).toBe(T0.getTime() + 1);
    expect(retired!.publishUntil.getTime()).toBe(T0.getTime() + 1);
  });

  it("replaces a key at the end of its life, and one inside its renewal margin", async () => {
    const t = manualClock();
    const keys = environmentKeys(h.store, {
      clock: t.clock,
      keyLifetimeSeconds: 1000,
      renewBeforeSeconds: 100,
    });
    const env = freshEnv();
    const first = await keys.activeKey(env);
    t.advance(899);
    expect((await keys.activeKey(env)).kid).toBe(first.kid);
    t.advance(1); // 100 s of life left: renewal
    const second = await keys.activeKey(env);
    expect(second.kid).not.toBe(first.kid);
    const [old] = (await keys.list(env)).filter((k) => k.kid === first.kid);
    // It stops signing now; its tokens expire by its sign_until, which is when publication ends.
    expect(old).toMatchObject({ status: "retired", signUntil: t.at(900), publishUntil: t.at(1000) });
    expect((await keys.jwks(env)).keys).toHaveLength(2);

    // Nobody asks for a key for a long time: the active one runs out and is replaced.
    t.set(new Date(second.signUntil.getTime() + 5000));
    expect((await keys.jwks(env)).keys).toEqual([]);
    const third = await keys.activeKey(env);
    expect(third.kid).not.toBe(second.kid);
    const [expired] = (await keys.list(env)).filter((k) => k.kid === second.kid);
    expect(expired).toMatchObject({
      status: "retired",
      signUntil: second.signUntil,
      publishUntil: second.signUntil,
    });
    expect(await activeCount(h.store, env)).toBe(1);
  });

  it("environments are separate trust roots", async () => {
    const keys = environmentKeys(h.store);
    const dev = freshEnv();
    const prod = freshEnv();
    const devKey = await keys.activeKey(dev);
    const prodKey = await keys.activeKey(prod);
    expect(devKey.kid).not.toBe(prodKey.kid);
    expect((await keys.jwks(dev)).keys.map((k) => k.kid)).toEqual([devKey.kid]);
    expect((await keys.jwks(prod)).keys.map((k) => k.kid)).toEqual([prodKey.kid]);
    expect(await keys.verificationKey(prod, devKey.kid)).toBeUndefined();
    expect(await keys.verificationKey(dev, devKey.kid)).toMatchObject({ env: dev, kid: devKey.kid });
    await keys.rotate(dev, { maxTokenTtlSeconds: 60 });
    expect((await keys.activeKey(prod)).kid).toBe(prodKey.kid);
  });

  it("refuses a row whose key is not its kid (written by hand)", async () => {
    const keys = environmentKeys(h.store);
    const env = freshEnv();
    const key = await keys.activeKey(env);
    const other = await keys.activeKey(freshEnv());
    await h.store.db
      .insertInto("signing_keys")
      .values({
        kid: "forged-kid",
        environment: env,
        public_jwk: JSON.stringify(other.publicJwk),
        private_jwk: "{}",
        created_at: T0,
        sign_until: new Date(T0.getTime() + 1000),
        publish_until: new Date("2100-01-01T00:00:00Z"),
        status: "retired",
        retired_at: T0,
      })
      .execute();
    const fresh = environmentKeys(h.store); // an empty key cache, as another process has
    await expect(fresh.verificationKey(env, "forged-kid")).rejects.toSatisfy((e) =>
      isWritError(e, "ERR_STORE_CORRUPT"),
    );
    await expect(fresh.jwks(env)).rejects.toSatisfy((e) => isWritError(e, "ERR_STORE_CORRUPT"));
    expect((await fresh.activeKey(env)).kid).toBe(key.kid);
  });

  it("refuses bad arguments as programmer errors", async () => {
    const keys = environmentKeys(h.store);
    await expect(keys.activeKey("Prod Env")).rejects.toBeInstanceOf(TypeError);
    await expect(keys.rotate("prod", { maxTokenTtlSeconds: -1 })).rejects.toBeInstanceOf(TypeError);
    expect(() => environmentKeys(h.store, { keyLifetimeSeconds: 60, renewBeforeSeconds: 60 })).toThrow(
      TypeError,
    );
    expect(await keys.verificationKey("prod", "")).toBeUndefined();
  });
});

describe("environment keys: store failures are coded", () => {
  it("a database without the schema gives ERR_STORE_NOT_MIGRATED", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-keys-"));
    const store = await openStore({ dataDir: dir });
    try {
      const keys = environmentKeys(store);
      let key: SigningKey | undefined;
      try {
        key = await keys.activeKey("prod");
      } catch (err) {
        expect(isWritError(err, "ERR_STORE_NOT_MIGRATED"), String(err)).toBe(true);
      }
      expect(key).toBeUndefined();
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
