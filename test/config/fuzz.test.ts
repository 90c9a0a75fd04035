/**
 * Issue 10, item 5: a configuration fuzzer. Mutations of examples/quickstart/writ.yaml — nodes
 * deleted, replaced, duplicated, renamed, nested deep, given wrong types, long or odd strings;
 * action and resource patterns edited with metacharacters and lengths; the guardrails edited; the
 * text itself damaged — each loaded with its
 * guardrails compiled (`loadPolicy`, what `writ check` runs). Every outcome must be a policy or a
 * list of coded problems: nothing thrown, no ERR_INTERNAL. A hang fails the test by its timeout.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { loadPolicy } from "../../src/app.js";
import type { ConfigProblem } from "../../src/config/index.js";
import { ROOT, runCli } from "../support/cli.js";

type Value = unknown;
type Key = string | number;

let dir: string;
let original: Value;
let guardrails: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-fuzz-"));
  await cp(join(ROOT, "examples", "quickstart"), dir, { recursive: true });
  original = parse(await readFile(join(dir, "writ.yaml"), "utf8"));
  // the policies without their comments, so that every edit lands in Cedar that is parsed
  guardrails = (await readFile(join(dir, "guardrails.cedar"), "utf8"))
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("//"))
    .join("\n");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---- what a mutation puts in ----------------------------------------------------------------

const odd = fc.constantFrom(
  "",
  " ",
  "\u0000",
  "\u0007",
  "\uFEFFdev",
  "\u202Eved",
  "ｄｅｖ",
  "dev\u0301",
  "🙂",
  "\uD800",
  "*",
  "?",
  "|",
  "\\",
  "\\d",
  "a||b",
  "${x}",
  "${service",
  "${}",
  "*:*:*",
  "aws:*:*",
  "k8s:core/secrets:*",
  "1e308",
  "-5m",
  "0s",
  "99999999999999999999d",
  "24:01-25:00",
  "Mars/Olympus",
  "^(a+)+$",
  "[",
  "~",
  "null",
);
const longString = fc.oneof(
  fc.nat({ max: 12_000 }).map((n) => "a".repeat(n)),
  fc.nat({ max: 6_000 }).map((n) => "*a".repeat(n)),
  fc.nat({ max: 4_000 }).map((n) => `${"a|".repeat(n)}b`),
  fc.nat({ max: 3_000 }).map((n) => `${"(".repeat(n)}true${")".repeat(n)}`),
);
const scalar: fc.Arbitrary<Value> = fc.oneof(
  odd,
  fc.string(),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(1e308, -1e308, -1, 0, 0.5, 2 ** 31, 2 ** 53, true, false, null),
  longString,
);
const { value } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), odd), tie("value"), { maxKeys: 3 }),
  ),
}));

/** Structure-aware edits; `at` picks the node among all nodes of the document as it is then. */
const mutation = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), with: value }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("duplicate" as const),
      at: fc.nat(),
      name: fc.oneof(odd, fc.string()),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("rename" as const),
      at: fc.nat(),
      name: fc.oneof(odd, fc.string()),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("nest" as const),
      at: fc.nat(),
      depth: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 3000 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("pattern" as const),
      at: fc.nat(),
      pos: fc.nat(),
      insert: fc.oneof(odd, fc.constantFrom("*", "?", "|", "\\", "\\*", "${service}", ":", "a".repeat(5000))),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("rule" as const),
      at: fc.nat(),
      pos: fc.nat(),
      replace: fc.boolean(),
      insert: fc.oneof(
        odd,
        fc.constantFrom("*", "?", "|", "\\", "\\*", "${service}", ":", "::", "aws:", "/*"),
        longString,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("guardrail" as const),
      pos: fc.nat(),
      cut: fc.nat({ max: 40 }),
      insert: fc.oneof(
        fc.string(),
        fc.constantFrom(
          "(",
          ")",
          "{",
          '"',
          "//",
          ";",
          "permit (principal, action, resource);",
          "forbid (principal, action, resource);",
          '@id("no-prod-changes-at-weekends")',
          "?principal",
          "context.arguments.x.y.z",
          " && context.tainted",
          'Writ::Action::"aws:s3:NoSuchAction"',
        ),
        longString,
      ),
    }),
  },
);

/** Damage to the serialised text: bytes the YAML writer would never produce. */
const textDamage = fc.option(
  fc.record({
    pos: fc.nat(),
    insert: fc.constantFrom(
      "\u0000",
      "\t",
      "\uFEFF",
      ": :",
      "&a",
      "*a",
      "!!binary ",
      "{",
      "- ",
      "\r",
      "\\",
      "'",
      '"',
    ),
  }),
  { freq: 4 },
);

// ---- applying them -------------------------------------------------------------------------

interface Slot {
  readonly parent: Record<string, Value> | Value[];
  readonly key: Key;
}

/** Every node with its parent, in document order, walked with an explicit stack. */
function slots(root: Value): Slot[] {
  const out: Slot[] = [];
  const todo: Value[] = [root];
  while (todo.length > 0) {
    const node = todo.pop();
    if (node === null || typeof node !== "object") continue;
    const parent = node as Record<string, Value> | Value[];
    for (const key of Object.keys(parent)) {
      const k: Key = Array.isArray(parent) ? Number(key) : key;
      out.push({ parent, key: k });
      todo.push((parent as Record<Key, Value>)[k]);
    }
  }
  return out;
}

function get(s: Slot): Value {
  return (s.parent as Record<Key, Value>)[s.key];
}

function set(s: Slot, v: Value): void {
  (s.parent as Record<Key, Value>)[s.key] = v;
}

function apply(doc: Record<string, Value>, m: Mutation): void {
  if (m.kind === "guardrail") {
    const at = m.pos % (guardrails.length + 1);
    doc.guardrails = [{ inline: guardrails.slice(0, at) + m.insert + guardrails.slice(at + m.cut) }];
    return;
  }
  let all = slots(doc);
  if (m.kind === "rule") all = all.filter((x) => x.key === "action" || x.key === "resource");
  if (all.length === 0) return;
  const s = all[m.at % all.length]!;
  switch (m.kind) {
    case "delete":
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete s.parent[s.key];
      return;
    case "replace":
      set(s, m.with);
      return;
    case "duplicate":
      if (Array.isArray(s.parent)) s.parent.push(structuredClone(get(s)));
      else s.parent[m.name] = structuredClone(get(s));
      return;
    case "rename":
      if (!Array.isArray(s.parent)) {
        const v = get(s);
        delete s.parent[s.key];
        s.parent[m.name] = v;
      }
      return;
    case "nest": {
      // deeper than the YAML writer itself can recurse: spliced in as text by `render`
      let v = get(s);
      if (m.depth > 100) v = `__DEEP_${m.depth}__`;
      else for (let i = 0; i < m.depth; i++) v = i % 2 === 0 ? [v] : { v };
      set(s, v);
      return;
    }
    case "rule":
    case "pattern": {
      const v = get(s);
      if (m.kind === "rule" && m.replace) set(s, m.insert);
      else if (typeof v === "string") {
        const at = m.pos % (v.length + 1);
        set(s, v.slice(0, at) + m.insert + v.slice(at));
      } else set(s, m.insert);
      return;
    }
  }
}

type Mutation =
  | { kind: "delete"; at: number }
  | { kind: "replace"; at: number; with: Value }
  | { kind: "duplicate"; at: number; name: string }
  | { kind: "rename"; at: number; name: string }
  | { kind: "nest"; at: number; depth: number }
  | { kind: "pattern"; at: number; pos: number; insert: string }
  | { kind: "rule"; at: number; pos: number; replace: boolean; insert: string }
  | { kind: "guardrail"; pos: number; cut: number; insert: string };

const config = fc.record({
  mutations: fc.array(mutation as fc.Arbitrary<Mutation>, { minLength: 1, maxLength: 4 }),
  damage: textDamage,
});

type Case = typeof config extends fc.Arbitrary<infer T> ? T : never;

function render(c: Case): string {
  const doc = structuredClone(original) as Record<string, Value>;
  for (const m of c.mutations) apply(doc, m);
  let text = stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 }).replace(
    /__DEEP_(\d+)__/g,
    (_, d: string) => `${"[".repeat(Number(d))}1${"]".repeat(Number(d))}`,
  );
  if (c.damage) {
    const at = c.damage.pos % (text.length + 1);
    text = text.slice(0, at) + c.damage.insert + text.slice(at);
  }
  return text;
}

// ---- what every outcome must be ------------------------------------------------------------

const CODE = /^(ERR|WARN)_[A-Z0-9_]+$/;

function expectCoded(problems: readonly ConfigProblem[]): void {
  for (const p of problems) {
    expect(p.code, p.message).toMatch(CODE);
    expect(p.code).not.toBe("ERR_INTERNAL");
    expect(p.severity).toBe(p.code.startsWith("WARN_") ? "warning" : "error");
    expect(typeof p.message).toBe("string");
  }
}

let counter = 0;

async function writeCase(c: Case): Promise<string> {
  const file = join(dir, `case-${counter++}.yaml`);
  await writeFile(file, render(c));
  return file;
}

describe("configuration fuzzer", () => {
  it("every mutation of the quickstart loads into a policy or coded problems", {
    timeout: 240_000,
  }, async () => {
    let outcomes = { ok: 0, problems: 0 };
    await fc.assert(
      fc.asyncProperty(config, async (c) => {
        const file = await writeCase(c);
        const loaded = await loadPolicy(file);
        expectCoded(loaded.problems);
        const failed = loaded.problems.some((p) => p.severity === "error");
        expect(loaded.policy === undefined).toBe(failed);
        if (failed) outcomes = { ...outcomes, problems: outcomes.problems + 1 };
        else outcomes = { ...outcomes, ok: outcomes.ok + 1 };
        await rm(file);
      }),
      { numRuns: 300 },
    );
    // the mutations reach both sides
    expect(outcomes.problems).toBeGreaterThan(0);
    expect(outcomes.ok + outcomes.problems).toBe(300);
  });

  it("the CLI answers mutations with an exit code and coded JSON", { timeout: 120_000 }, async () => {
    const cases = fc.sample(config, { numRuns: 6, seed: 10 });
    for (const c of cases) {
      const file = await writeCase(c);
      const r = await runCli(["check", "--config", file, "--json"]);
      expect(r.stderr).not.toContain("ERR_INTERNAL");
      if (r.code === 2) {
        expect(JSON.parse(r.stderr).error.code).toMatch(CODE);
        continue;
      }
      expect([0, 1]).toContain(r.code);
      const out = JSON.parse(r.stdout) as { ok: boolean; problems: ConfigProblem[] };
      expect(out.ok).toBe(r.code === 0);
      expectCoded(out.problems);
    }
  });
});
