/**
 * The GitHub issuer's start-up checks (`ERR_DOWNSTREAM_CONFIG`: the App key missing, unreadable, not
 * PEM, not RSA, too short; a bad installation id, API URL or app id), and its failure paths: a kill
 * thrown while a token is being minted, a ledger or audit that fails after minting — each ends with
 * no live token handed out.
 */
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isWritError } from "../../src/core/index.js";
import { githubIssuer } from "../../src/downstream/github.js";
import {
  ERR_DOWNSTREAM_CONFIG,
  ERR_DOWNSTREAM_REFUSED,
  type GithubDownstreamConfig,
} from "../../src/downstream/types.js";
import { memoryLedger } from "../fakes/ledger.js";
import { appKeyPair, INSTALLATION, KEY_FILE, KEYS, rig, writ } from "./github-fixture.js";
import { refusalOf } from "./outcome.js";

const base: GithubDownstreamConfig = {
  appId: "424242",
  installationId: INSTALLATION,
  privateKey: { file: KEY_FILE },
  apiUrl: "https://api.github.com",
};
const deps = (env: Record<string, string | undefined> = {}) => ({
  ledger: memoryLedger(),
  audit: async () => undefined,
  env,
});

async function configError(
  cfg: GithubDownstreamConfig,
  env: Record<string, string | undefined> = {},
): Promise<string> {
  try {
    await githubIssuer(cfg, deps(env));
  } catch (e) {
    expect(isWritError(e, ERR_DOWNSTREAM_CONFIG)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected ERR_DOWNSTREAM_CONFIG");
}

describe("github issuer configuration", () => {
  const dir = join(KEY_FILE, "..");

  it("starts with a PKCS#1 key file, a PKCS#8 key in an environment variable, or one with `\\n` escapes", async () => {
    await expect(githubIssuer(base, deps())).resolves.toMatchObject({ system: "github" });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await expect(
      githubIssuer({ ...base, privateKey: { env: "K" } }, deps({ K: pkcs8 })),
    ).resolves.toMatchObject({ system: "github" });
    await expect(
      githubIssuer({ ...base, privateKey: { env: "K" } }, deps({ K: KEYS.privatePem.replace(/\n/g, "\\n") })),
    ).resolves.toMatchObject({ system: "github" });
    await expect(
      githubIssuer({ ...base, apiUrl: "https://github.example.com/api/v3/" }, deps()),
    ).resolves.toMatchObject({ system: "github" });
  });

  it("refuses to start without a usable RSA key, naming where it looked and never printing the key", async () => {
    expect(await configError({ ...base, privateKey: { file: join(dir, "missing.pem") } })).toMatch(
      /cannot be read \(ENOENT\)/,
    );
    expect(await configError({ ...base, privateKey: { env: "GH_KEY" } })).toContain("`GH_KEY` is not set");
    expect(await configError({ ...base, privateKey: { env: "GH_KEY" } }, { GH_KEY: "  " })).toContain(
      "is not set",
    );
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n");
    expect(await configError({ ...base, privateKey: { file: garbage } })).toContain(
      "is not a PEM private key",
    );
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    const ecMessage = await configError({ ...base, privateKey: { env: "K" } }, { K: ec.toString() });
    expect(ecMessage).toContain("is a ec key: GitHub Apps sign with RSA");
    expect(ecMessage).not.toContain("PRIVATE KEY");
    const small = appKeyPair(1024).privatePem;
    expect(await configError({ ...base, privateKey: { env: "K" } }, { K: small })).toContain("1024 bits");
    // a public key is not the App's private key
    expect(await configError({ ...base, privateKey: { env: "K" } }, { K: KEYS.publicPem })).toContain(
      "is not a PEM private key",
    );
    expect(await configError({ ...base, privateKey: {} as never })).toContain(
      "must name a `file` or an `env`",
    );
  });

  it("refuses a bad installation id, API URL or app id", async () => {
    expect(await configError({ ...base, installationId: 0 })).toContain("installationId");
    expect(await configError({ ...base, installationId: 1.5 })).toContain("installationId");
    expect(await configError({ ...base, apiUrl: "http://api.github.com" })).toContain("must be https");
    expect(await configError({ ...base, apiUrl: "not a url" })).toContain("is not a URL");
    expect(await configError({ ...base, apiUrl: "https://user:pw@github.example.com" })).toContain(
      "must not carry credentials",
    );
    expect(await configError({ ...base, appId: "" })).toContain("appId");
    expect(await configError({ ...base, appId: "12 34" })).toContain("appId");
    // plain http only on the loopback interface
    await expect(githubIssuer({ ...base, apiUrl: "http://127.0.0.1:9/" }, deps())).resolves.toBeDefined();
  });
});

describe("github issuer failure paths", () => {
  it("a kill thrown while the token is being minted: the token is revoked and the issue refused", async () => {
    let release!: () => void;
    let entered!: () => void;
    const inMint = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const r = await rig({
      beforeMint: async () => {
        entered();
        await gate;
      },
    });
    try {
      const w = writ([{ action: "github:contents:write", resource: "acme/checkout" }]);
      const pending = r.issuer.issue(w, new Date());
      await inMint;
      await r.issuer.kill({ agent: w.agent }, new Date());
      release();
      expect(await refusalOf(pending)).toMatchObject({
        code: ERR_DOWNSTREAM_REFUSED,
        reason: "downstream_unavailable",
      });
      expect(r.fake.tokens.size).toBe(1);
      expect(r.fake.liveTokens()).toEqual([]);
      expect((await r.ledger.ofWrit(w.id)).map((x) => x.state)).toEqual(["removed"]);
    } finally {
      await r.close();
    }
  });

  it("no audit record, no credential: the minted token is revoked", async () => {
    const r = await rig();
    try {
      const { githubIssuer: make } = await import("../../src/downstream/github.js");
      const issuer = await make(r.cfg, {
        ledger: r.ledger,
        audit: async (type) => {
          if (type === "downstream.issued") throw new Error("audit store down");
        },
      });
      const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
      await expect(issuer.issue(w, new Date())).rejects.toThrow("audit store down");
      expect(r.fake.tokens.size).toBe(1);
      expect(r.fake.liveTokens()).toEqual([]);
      expect((await r.ledger.ofWrit(w.id)).map((x) => x.state)).toEqual(["removed"]);
    } finally {
      await r.close();
    }
  });

  it("a ledger that cannot record the creation: the minted token is revoked", async () => {
    const r = await rig();
    try {
      const ledger = memoryLedger();
      const issuer = await githubIssuer(r.cfg, {
        ledger: {
          ...ledger,
          created: async () => {
            throw new Error("store down");
          },
        },
        audit: async () => undefined,
      });
      await expect(
        issuer.issue(writ([{ action: "github:contents:read", resource: "acme/checkout" }]), new Date()),
      ).rejects.toThrow("store down");
      expect(r.fake.liveTokens()).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("a ledger that cannot record the intent: nothing is minted", async () => {
    const r = await rig();
    try {
      const issuer = await githubIssuer(r.cfg, {
        ledger: {
          ...memoryLedger(),
          intend: async () => {
            throw new Error("store down");
          },
        },
        audit: async () => undefined,
      });
      await expect(
        issuer.issue(writ([{ action: "github:contents:read", resource: "acme/checkout" }]), new Date()),
      ).rejects.toThrow("store down");
      expect(r.fake.tokens.size).toBe(0);
    } finally {
      await r.close();
    }
  });

  it("GitHub answering more than was asked: the token is revoked and the writ refused (downstream_scope_exceeds_writ)", async () => {
    const widenings: [string, (answer: Record<string, unknown>) => void][] = [
      [
        "a permission",
        (a) => {
          a.permissions = { ...(a.permissions as object), administration: "write" };
        },
      ],
      [
        "a level",
        (a) => {
          a.permissions = { contents: "write", metadata: "read" };
        },
      ],
      [
        "a repository",
        (a) => {
          a.repositories = [
            ...(a.repositories as object[]),
            { name: "payments", full_name: "acme/payments" },
          ];
        },
      ],
      [
        "all repositories",
        (a) => {
          delete a.repositories;
          a.repository_selection = "all";
        },
      ],
    ];
    for (const [what, widen] of widenings) {
      const r = await rig({
        tamper: (answer, token) => {
          widen(answer);
          return token;
        },
      });
      try {
        const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
        expect(await refusalOf(r.issuer.issue(w, new Date())), what).toMatchObject({
          code: ERR_DOWNSTREAM_REFUSED,
          reason: "downstream_scope_exceeds_writ",
        });
        expect(r.fake.tokens.size, what).toBe(1);
        expect(r.fake.liveTokens(), what).toEqual([]);
        expect(
          (await r.ledger.ofWrit(w.id)).map((x) => x.state),
          what,
        ).toEqual(["removed"]);
      } finally {
        await r.close();
      }
    }
  });

  it("a crash between the intent and GitHub's answer: after the restart the record stays until any token it may name has expired", async () => {
    const r = await rig();
    try {
      const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
      const rec = await r.ledger.intend({
        id: "crashed-1",
        system: "github",
        environment: w.environment,
        writ: w.id,
        agent: w.agent,
        kind: "installation-token",
        locator: {
          installation: INSTALLATION,
          repositories: ["checkout"],
          permissions: { contents: "read" },
        },
        expiresAt: w.expiresAt,
      });
      r.ledger.revokeWrit(w.id);
      const [due] = await r.ledger.due(new Date());
      expect(due?.id).toBe(rec.id);
      await r.issuer.revoke(due!, new Date(rec.createdAt.getTime() + 30 * 60_000));
      expect((await r.ledger.ofWrit(w.id))[0]!.state).toBe("intended");
      await r.issuer.revoke(due!, new Date(rec.createdAt.getTime() + 66 * 60_000));
      expect((await r.ledger.ofWrit(w.id))[0]!.state).toBe("removed");
      expect(r.audits.map((a) => a.type)).toEqual(["downstream.unrevocable", "downstream.expired"]);
    } finally {
      await r.close();
    }
  });
});
