import { createHash, generateKeyPairSync } from "node:crypto";
import { CompactEncrypt, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { type JsonValue, redact, redactString, sensitiveKey } from "../../src/audit/index.js";

const sha12 = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);
const secret = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const jwt = await new SignJWT({ sub: "agent", scope: "deploy" })
  .setProtectedHeader({ alg: "HS256" })
  .sign(secret);
const jwe = await new CompactEncrypt(new TextEncoder().encode("hi"))
  .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
  .encrypt(secret);
const ed = generateKeyPairSync("ed25519");
const pemPrivate = ed.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const pemPublic = ed.publicKey.export({ type: "spki", format: "pem" }).toString();
const jwkPrivate = ed.privateKey.export({ format: "jwk" });

function serialised(value: JsonValue): string {
  return JSON.stringify(value);
}

describe("redaction by key", () => {
  it.each([
    ["token", "token"],
    ["access_token", "token"],
    ["refresh_token", "token"],
    ["id_token", "token"],
    ["subject_token", "token"],
    ["X-Amz-Security-Token", "token"],
    ["accessToken", "token"],
    ["assertion", "token"],
    ["client_assertion", "token"],
    ["secret", "secret"],
    ["client_secret", "secret"],
    ["AWS_SECRET_ACCESS_KEY", "secret"],
    ["password", "password"],
    ["db_password", "password"],
    ["passphrase", "password"],
    ["Authorization", "authorization"],
    ["proxy-authorization", "authorization"],
    ["cookie", "cookie"],
    ["Set-Cookie", "cookie"],
    ["x-api-key", "secret"],
    ["private_key", "private-key"],
    ["code_verifier", "secret"],
  ])("treats `%s` as a %s", (key, kind) => {
    expect(sensitiveKey(key)).toBe(kind);
  });

  it.each([
    "token_type",
    "max_tokens",
    "expires_in",
    "token_endpoint",
    "agent",
    "d",
    "key",
    "secretary_general",
  ])("leaves `%s` alone unless it names a secret", (key) => {
    // "secretary_general" contains "secret": redacting it is the fail-closed side of the rule.
    expect(sensitiveKey(key) === undefined).toBe(key !== "secretary_general");
  });

  it("replaces values under sensitive keys at any depth, with a fingerprint only for high-entropy kinds", () => {
    const out = redact({
      request: { headers: { authorization: "Basic dXNlcjpwYXNz", "x-trace": "abc" } },
      grant: { access_token: "opaque-token-value", token_type: "DPoP", expires_in: 300 },
      login: { user: "ops", password: "hunter2" },
      list: [{ refresh_token: "r1" }, { cookie: "sid=1" }],
      none: { token: null },
      object: { client_secret: { nested: "value" } },
    }) as Record<string, Record<string, unknown>>;
    expect(out.request).toEqual({ headers: { authorization: "[redacted:authorization]", "x-trace": "abc" } });
    expect(out.grant).toEqual({
      access_token: `[redacted:token sha256:${sha12("opaque-token-value")}]`,
      token_type: "DPoP",
      expires_in: 300,
    });
    expect(out.login).toEqual({ user: "ops", password: "[redacted:password]" });
    expect(out.list).toEqual([
      { refresh_token: `[redacted:token sha256:${sha12("r1")}]` },
      { cookie: "[redacted:cookie]" },
    ]);
    expect(out.none).toEqual({ token: null });
    expect(out.object).toEqual({ client_secret: "[redacted:secret]" });
    expect(serialised(out as JsonValue)).not.toMatch(/hunter2|opaque-token-value|sid=1|dXNlcjpwYXNz|"value"/);
  });

  it("drops JWK private members, and only in a JWK", () => {
    const out = redact({
      key: { ...jwkPrivate, kid: "k1" },
      point: { d: 4, p: 2, k: "not a key" },
    }) as Record<string, Record<string, unknown>>;
    expect(out.key!.x).toBe(jwkPrivate.x);
    expect(out.key!.kid).toBe("k1");
    expect(out.key!.d).toBe(`[redacted:private-key sha256:${sha12(jwkPrivate.d!)}]`);
    expect(out.point).toEqual({ d: 4, p: 2, k: "not a key" });
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "jwk" });
    const redactedRsa = redact(rsa as JsonValue) as Record<string, string>;
    for (const member of ["d", "p", "q", "dp", "dq", "qi"])
      expect(redactedRsa[member]).toMatch(/^\[redacted:private-key/);
    expect(redactedRsa.n).toBe(rsa.n);
    expect(redact({ kty: "oct", k: "c2VjcmV0" })).toEqual({
      kty: "oct",
      k: `[redacted:private-key sha256:${sha12("c2VjcmV0")}]`,
    });
  });
});

describe("redaction by shape", () => {
  it("replaces a JWT anywhere in a string, keeping the text around it", () => {
    expect(redactString(jwt)).toBe(`[redacted:jwt sha256:${sha12(jwt)}]`);
    expect(redactString(`calling with Bearer ${jwt}.`)).toBe(
      `calling with Bearer [redacted:jwt sha256:${sha12(jwt)}].`,
    );
    expect(redact({ note: `token=${jwt}&x=1` })).toEqual({
      note: `token=[redacted:jwt sha256:${sha12(jwt)}]&x=1`,
    });
  });

  it("replaces a JWE (five segments) whole", () => {
    expect(redactString(jwe)).toBe(`[redacted:jwt sha256:${sha12(jwe)}]`);
  });

  it("replaces a JWT used as a key", () => {
    expect(Object.keys(redact({ [jwt]: 1 }) as object)).toEqual([`[redacted:jwt sha256:${sha12(jwt)}]`]);
  });

  it("leaves dotted text that is not JOSE alone", () => {
    for (const text of [
      "api.github.com",
      "arn:aws:s3:::reports/2024.01.02/file.tar.gz",
      "v1.2.3",
      "example.subdomain.service.internal",
      "aaaaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc",
    ]) {
      expect(redactString(text)).toBe(text);
    }
  });

  it("replaces PEM private keys but not public keys", () => {
    const out = redactString(`config:\n${pemPrivate}\n${pemPublic}`);
    expect(out).toContain(`[redacted:pem sha256:${sha12(pemPrivate.trimEnd())}]`);
    expect(out).not.toContain("PRIVATE KEY");
    expect(out).toContain("-----BEGIN PUBLIC KEY-----");
    const truncated = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA";
    expect(redactString(truncated)).toMatch(/^\[redacted:pem sha256:[0-9a-f]{12}\]$/);
  });

  it("replaces opaque bearer tokens and known token formats, not prose", () => {
    expect(redactString("Authorization: Bearer abcdefghijklmnop1234")).toBe(
      `Authorization: Bearer [redacted:token sha256:${sha12("abcdefghijklmnop1234")}]`,
    );
    expect(redactString("the bearer instrument")).toBe("the bearer instrument");
    expect(redactString("Basic information about it")).toBe("Basic information about it");
    const gh = `ghp_${"a1B2".repeat(9)}`;
    expect(redactString(`token is ${gh}`)).toBe(`token is [redacted:token sha256:${sha12(gh)}]`);
  });

  it("finds each shape whatever the case of its scheme, in a string with no dot", () => {
    const token = "abcdefghijklmnop1234";
    for (const scheme of ["BEARER", "bEaReR", "DPOP", "dpop"]) {
      expect(redactString(`auth ${scheme} ${token}`)).toBe(
        `auth ${scheme} [redacted:token sha256:${sha12(token)}]`,
      );
    }
    const basic = Buffer.from("user:pass").toString("base64");
    expect(redactString(`header BASIC ${basic}`)).toBe("header BASIC [redacted:authorization]");
    const slack = `xoxb-${"1234567890".repeat(2)}`;
    expect(redactString(`slack ${slack}`)).toBe(`slack [redacted:token sha256:${sha12(slack)}]`);
    const pat = `github_pat_${"A1b2C3".repeat(6)}`;
    expect(redactString(`pat ${pat}`)).toBe(`pat [redacted:token sha256:${sha12(pat)}]`);
  });

  it("judges a key the same the second time (its verdict is remembered)", () => {
    for (let round = 0; round < 2; round++) {
      expect(sensitiveKey("Access-Token")).toBe("token");
      expect(sensitiveKey("client_secret")).toBe("secret");
      expect(sensitiveKey("resource")).toBeUndefined();
      expect(sensitiveKey(`${"x".repeat(100)}_password`)).toBe("password");
    }
  });

  it("stays linear on long strings without dots", () => {
    // a quadratic scan would take ~10^12 steps on these: the answer coming at all is the check
    const long = "a".repeat(1_000_000);
    expect(redactString(long)).toBe(long);
    expect(redactString(`${"a.".repeat(200_000)}b`)).toHaveLength(400_001);
  });

  it("never lets a secret through: every secret in a realistic record is gone", () => {
    const record = {
      agent: "release-bot",
      tool: "http.request",
      arguments: { url: "https://api.example.com/v1", headers: { Authorization: `DPoP ${jwt}`, DPoP: jwt } },
      response: { access_token: "at-secret-123456", refresh_token: "rt-secret-123456" },
      env: { GITHUB_TOKEN: `ghs_${"x".repeat(36)}`, DB_PASSWORD: "pw-secret" },
      keyFile: pemPrivate,
    };
    const out = serialised(redact(record as unknown as JsonValue));
    for (const leaked of [jwt, "at-secret-123456", "rt-secret-123456", "ghs_", "pw-secret", "PRIVATE KEY"]) {
      expect(out).not.toContain(leaked);
    }
    expect(out).toContain("https://api.example.com/v1");
  });
});
