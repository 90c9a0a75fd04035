/**
 * `decide` with many writs: the reasons stay bounded (only the deciding writ is cited, at most one
 * inactive one), and the indexed `WritSet` decides exactly as a scan of the same writs in issuance
 * order would, on random writs and requests.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/index.js";
import { type ActiveWrit, compileRule, decide, type WritConfig, WritSet } from "../../src/core/index.js";
import { BASE, FILE } from "../pdp/fixture.js";

const NOW = new Date("2026-03-03T12:00:00Z");

async function config(): Promise<WritConfig> {
  const loaded = await loadConfigText(BASE, { file: FILE });
  if (!loaded.config) throw new Error(JSON.stringify(loaded.problems));
  return loaded.config;
}

function writ(
  id: string,
  grants: [string, string][],
  opts: { env?: string; issued?: number; expires?: number; usesLeft?: number; agent?: string } = {},
): ActiveWrit {
  return {
    kind: "writ",
    id,
    agent: opts.agent ?? "loader",
    playbook: "pb",
    environment: opts.env ?? "dev",
    grants: grants.map(([action, resource], i) => ({
      kind: "grant",
      rule: compileRule({ action, resource }),
      path: ["writs", id, "grants", i],
    })),
    issuedAt: new Date(NOW.getTime() + (opts.issued ?? -60_000)),
    expiresAt: new Date(NOW.getTime() + (opts.expires ?? 600_000)),
    usesLeft: opts.usesLeft,
  };
}

const request = (action: string, resource: string, environment = "dev") => ({
  agent: "loader",
  action,
  resource,
  environment,
  now: NOW,
});

describe("decide with many writs", () => {
  it("cites one writ grant, not one per matching writ", async () => {
    const cfg = await config();
    const many = Array.from({ length: 5000 }, (_, i) =>
      writ(`w${String(i).padStart(5, "0")}`, [["github:contents:write", "acme/*"]]),
    );
    for (const writs of [many, new WritSet("loader", many)]) {
      const d = decide(cfg, writs, request("github:contents:write", "acme/site"));
      expect(d.allowed).toBe(true);
      const fromWrits = d.reasons.filter((r) => r.kind === "grant" && r.source === "writ");
      expect(fromWrits).toEqual([
        {
          kind: "grant",
          source: "writ",
          writ: "w00000",
          playbook: "pb",
          rule: many[0]!.grants[0]!.rule.text,
          index: 0,
        },
      ]);
      expect(d.reasons.length).toBeLessThanOrEqual(4);
    }
  });

  it("names at most one inactive writ when nothing grants", async () => {
    const cfg = await config();
    const expired = Array.from({ length: 3000 }, (_, i) =>
      writ(
        `x${i}`,
        [
          ["aws:iam:GetUser", "*"],
          ["mcp:filesystem:delete_file", "/tmp/*"],
        ],
        { expires: -1 },
      ),
    );
    for (const writs of [expired, new WritSet("loader", expired)]) {
      const d = decide(cfg, writs, request("mcp:filesystem:delete_file", "/tmp/a"));
      expect(d.code).toBe("no_grant");
      expect(d.reasons).toHaveLength(1);
      expect(d.reasons[0]).toMatchObject({ kind: "writ-inactive", why: "expired" });
    }
  });
});

// random writs over a small vocabulary, so that prefixes, alternatives and wildcards collide
const ACTIONS = [
  "aws:s3:GetObject",
  "aws:s3:PutObject",
  "aws:s3:Get*",
  "aws:*:*",
  "*:*:*",
  "github:contents:read",
  "github:contents:write",
  "mcp:filesystem:read_text_file|write_file",
] as const;
const RESOURCES = [
  "*",
  "arn:aws:s3:::a/*",
  "arn:aws:s3:::a/b/*",
  "arn:aws:s3:::a/b/c",
  "arn:aws:s3:::b/*|arn:aws:s3:::a/b/*",
  "arn:aws:s3:::?/b/*",
  "ACME/*",
  "acme/site",
  "/srv/*",
] as const;
const REQUESTS = [
  ["aws:s3:GetObject", "arn:aws:s3:::a/b/c"],
  ["aws:s3:PutObject", "arn:aws:s3:::a/b/d"],
  ["aws:s3:GetObject", "arn:aws:s3:::b/x"],
  ["github:contents:read", "acme/site"],
  ["github:contents:write", "Acme/Site"],
  ["mcp:filesystem:write_file", "/srv/x"],
] as const;

const writArb = fc.record({
  grants: fc.array(
    fc
      .tuple(fc.constantFrom(...ACTIONS), fc.constantFrom(...RESOURCES))
      .map(([a, r]) => [a, r] as [string, string]),
    { minLength: 1, maxLength: 3 },
  ),
  env: fc.constantFrom("dev", "dev", "prod"),
  issued: fc.constantFrom(-120_000, -60_000, -60_000, 60_000),
  expires: fc.constantFrom(-1, 600_000, 600_000),
  usesLeft: fc.constantFrom(undefined, 1, 0),
});

describe("WritSet", () => {
  it("decides as the scan of the same writs in issuance order", async () => {
    const cfg = await config();
    fc.assert(
      fc.property(fc.array(writArb, { maxLength: 25 }), (specs) => {
        const writs = specs
          .map((s, i) => writ(`w${String(i).padStart(3, "0")}`, s.grants, s))
          .sort((a, b) => a.issuedAt.getTime() - b.issuedAt.getTime() || (a.id < b.id ? -1 : 1));
        // the set holds what the store would hand it: no spent writs
        const set = new WritSet("loader", writs);
        const held = writs.filter((w) => w.usesLeft !== 0);
        for (const [action, resource] of REQUESTS) {
          for (const env of ["dev", "prod"]) {
            const fromList = decide(cfg, held, request(action, resource, env));
            const fromSet = decide(cfg, set, request(action, resource, env));
            expect(fromSet.code).toBe(fromList.code);
            expect(fromSet.reasons.filter((r) => r.kind === "grant")).toEqual(
              fromList.reasons.filter((r) => r.kind === "grant"),
            );
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("forgets revoked and spent writs and prunes expired ones", () => {
    const a = writ("a", [["aws:s3:GetObject", "arn:aws:s3:::a/*"]], { usesLeft: 2 });
    const b = writ("b", [["aws:s3:GetObject", "arn:aws:s3:::a/*"]], { expires: 1000 });
    const set = new WritSet("loader", [a, b]);
    expect(set.size).toBe(2);
    set.setUsesLeft("a", 3); // a stale report: ignored
    expect(set.get("a")?.usesLeft).toBe(2);
    set.setUsesLeft("a", 0);
    expect(set.has("a")).toBe(false);
    set.prune(NOW.getTime());
    expect(set.size).toBe(1);
    set.prune(NOW.getTime() + 1000);
    expect(set.size).toBe(0);
    set.add({ ...a, id: "c", revoked: true });
    expect(set.size).toBe(0);
  });
});
