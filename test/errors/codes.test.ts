/**
 * One error model: every code writ raises is in the typed union `WritErrorCode` (src/error-codes.ts,
 * assembled from each part's list) and documented in docs/; every code the docs name still exists.
 * The same for the reasons refusals carry on the wire, typed where they are made: the decision
 * point's codes, the broker's intent reasons, the gateway's and the downstream issuers' reasons.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { isWritErrorCode, WRIT_ERROR_CODES } from "../../src/error-codes.js";

const ROOT = join(import.meta.dirname, "../..");

function files(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** A code as a string; `startsWith("ERR_APPROVAL")` tests a family, it raises nothing. */
const CODE = /(?<!startsWith\()["'`]((?:ERR|WARN)_[A-Z0-9_]*[A-Z0-9])["'`]/g;
/** The lists themselves are not evidence that a code is raised. */
const LISTS = /(^|\/)(codes\.ts|error-codes\.ts)$/;

/** Every code written as a string in src/, with where. */
function raised(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files(join(ROOT, "src"), ".ts")) {
    if (LISTS.test(f) || f.endsWith(".test.ts")) continue;
    for (const m of readFileSync(f, "utf8").matchAll(CODE)) {
      if (!out.has(m[1]!)) out.set(m[1]!, relative(ROOT, f));
    }
  }
  return out;
}

const docs = files(join(ROOT, "docs"), ".md").map((f) => ({
  file: relative(ROOT, f),
  text: readFileSync(f, "utf8"),
}));

/**
 * Codes the docs name in backticks. A row written `PREFIX_*` stands for one code per suffix in
 * backticks on the same line (`ERR_CLIENT_ASSERTION_*` … (`MALFORMED`, `TYP` …)); a prefix row
 * without suffixes covers every code the source builds from that prefix.
 */
function documented(): { exact: Map<string, string>; prefixes: { prefix: string; suffixes: string[] }[] } {
  const exact = new Map<string, string>();
  const prefixes: { prefix: string; suffixes: string[] }[] = [];
  for (const { file, text } of docs) {
    for (const line of text.split("\n")) {
      for (const m of line.matchAll(/`((?:ERR|WARN)_[A-Z0-9_]*)(\*?)`/g)) {
        if (m[2] === "*") {
          const suffixes = [...line.matchAll(/`([A-Z0-9_]+)`/g)]
            .map((s) => s[1]!)
            .filter((s) => !/^(ERR|WARN)_/.test(s));
          prefixes.push({ prefix: m[1]!, suffixes });
        } else if (!exact.has(m[1]!)) exact.set(m[1]!, file);
      }
    }
  }
  return { exact, prefixes };
}

const typed = Object.values(WRIT_ERROR_CODES).flat();
const source = raised();
const doc = documented();

/** The members of a union of string literals: `export type NAME = | "a" | "b" …;`. */
function union(file: string, name: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const start = text.indexOf(`export type ${name} =`);
  if (start < 0) throw new Error(`${file}: no type ${name}`);
  const end = text.indexOf(";", start);
  return [...text.slice(start, end).matchAll(/\|\s*"([a-z_]+)"/g)].map((m) => m[1]!);
}

/** The first column of the markdown table under `## heading`. */
function tableColumn(file: string, heading: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const at = text.indexOf(`\n## ${heading}\n`);
  if (at < 0) throw new Error(`${file}: no section ${heading}`);
  const next = text.indexOf("\n## ", at + 1);
  const section = text.slice(at, next < 0 ? undefined : next);
  return section
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .flatMap((l) => [...l.split("|")[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
}

const reasonsDoc = readFileSync(join(ROOT, "docs", "reasons.md"), "utf8");

describe("error codes", () => {
  it("every code raised in src/ is in WritErrorCode, and the union holds no code nothing raises", () => {
    expect(source.size).toBeGreaterThan(150);
    const untyped = [...source].filter(([c]) => !isWritErrorCode(c)).map(([c, f]) => `${c} (${f})`);
    expect(untyped).toEqual([]);
    const stale = typed.filter((c) => !source.has(c));
    expect(stale).toEqual([]);
    expect(new Set(typed).size, "a code listed by two parts").toBe(typed.length);
  });

  it("every code is documented in docs/", () => {
    const missing = typed.filter(
      (c) =>
        !doc.exact.has(c) &&
        !doc.prefixes.some((p) => c.startsWith(p.prefix) && p.suffixes.includes(c.slice(p.prefix.length))),
    );
    expect(missing.map((c) => `${c} (${source.get(c)})`)).toEqual([]);
  });

  it("every code the docs name exists", () => {
    const gone = [...doc.exact].filter(([c]) => !isWritErrorCode(c)).map(([c, f]) => `${c} (${f})`);
    expect(gone).toEqual([]);
    for (const p of doc.prefixes) {
      const codes = typed.filter((c) => c.startsWith(p.prefix));
      // the gateway's stdio refusals are `ERR_GATEWAY_<REASON>`, built from the gateway's reasons
      if (p.prefix === "ERR_GATEWAY_" && p.suffixes.length === 0) continue;
      expect(codes.length, `${p.prefix}* names no code`).toBeGreaterThan(0);
      for (const s of p.suffixes) expect(typed, `${p.prefix}${s}`).toContain(`${p.prefix}${s}`);
    }
  });

  it("codes are passed typed: only WritError extends Error, no code is built from a string, no `code: string` parameter takes one", () => {
    const sources = files(join(ROOT, "src"), ".ts").map((f) => ({
      file: relative(ROOT, f),
      text: readFileSync(f, "utf8"),
    }));
    // an error class of its own would carry a code the union does not check
    const classes = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/class (\w+)(?:<[^>]*>)? extends Error\b/g)].map((m) => `${m[1]} (${file})`),
    );
    expect(classes).toEqual(["WritError (src/core/errors.ts)"]);
    // a code put together at run time escapes the list; the one family that is (the stdio
    // gateway's ERR_GATEWAY_<REASON>) is a template literal type over GatewayReason
    const built = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/`((?:ERR|WARN)_[A-Z0-9_]*)\$\{/g)].map((m) => `${m[1]} (${file})`),
    );
    expect(built).toEqual(["ERR_GATEWAY_ (src/cli/codes.ts)", "ERR_GATEWAY_ (src/cli/codes.ts)"]);
    // what raises takes the union: a code handed to WritError or CliFailure through a helper's
    // parameter is declared with the union's type (the nearest declaration of that name before it)
    const untypedRaisers = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/new (?:WritError|CliFailure)\(\s*(\w+)\s*,/g)]
        .filter((m) => {
          const before = text.slice(0, m.index);
          const decls = [
            ...before.matchAll(new RegExp(`\\b${m[1]}\\??:\\s*(\\w+)|\\b(?:const|let) ${m[1]}\\b`, "g")),
          ];
          return decls.at(-1)?.[1] === "string";
        })
        .map((m) => `${m[1]} (${file})`),
    );
    expect(untypedRaisers).toEqual([]);
  });

  it("the checks can fail: an unknown code is not typed, and a made-up one is not documented", () => {
    expect(isWritErrorCode("ERR_NO_SUCH_CODE")).toBe(false);
    expect(doc.exact.has("ERR_NO_SUCH_CODE")).toBe(false);
    expect(isWritErrorCode("ERR_CONFIG_UNKNOWN_KEY")).toBe(true);
  });
});

describe("wire reasons", () => {
  const decision = union("src/core/decide.ts", "DecisionCode");
  const gateway = union("src/gateway/errors.ts", "GatewayReason");
  const downstream = union("src/downstream/types.ts", "DownstreamReason");
  const intent = union("src/broker/intent.ts", "IntentReason");

  it("the decision codes table is exactly DecisionCode", () => {
    expect(decision.length).toBeGreaterThan(10);
    expect(new Set(tableColumn("docs/reasons.md", "Decision codes"))).toEqual(new Set(decision));
  });

  it("the gateway reasons table is exactly GatewayReason (besides the decision codes and downstream reasons)", () => {
    expect(gateway.length).toBeGreaterThan(15);
    const listed = new Set(tableColumn("docs/reasons.md", "Gateway reasons"));
    expect(listed).toEqual(new Set([...gateway, ...downstream]));
  });

  it("every downstream and intent reason is in docs/reasons.md", () => {
    for (const r of [...downstream, ...intent]) expect(reasonsDoc, r).toContain(`\`${r}\``);
    expect(new Set(downstream)).toEqual(
      new Set(
        tableColumn("docs/reasons.md", "Downstream reasons").filter((r) => r.startsWith("downstream_")),
      ),
    );
  });

  it("a gateway reason's stdio exit code is documented as ERR_GATEWAY_<REASON>", () => {
    const row = doc.prefixes.find((p) => p.prefix === "ERR_GATEWAY_" && p.suffixes.length === 0);
    expect(row, "a `ERR_GATEWAY_*` row in docs/").toBeDefined();
  });
});
